package rewrap

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// multiArchiveDir puts obj's hash directory of the EC node m in the state
// of TestRewrapEveryECArchive on project p1's current key: the archives by
// fragment index, the directory, the .data names wanted.
func multiArchiveDir(t *testing.T, m *diskfile.Manager, keys *rewraptest.Keys, obj, oldKey string) (map[int][]byte, string, map[string]int) {
	t.Helper()
	df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_p1", "c", obj)
	if err != nil {
		t.Fatal(err)
	}
	dir := df.Dir()
	aside := filepath.Join(m.Devices, "d1", "aside")
	if err := os.MkdirAll(aside, 0o750); err != nil {
		t.Fatal(err)
	}
	// each archive is put alone (a put's cleanup would remove the others),
	// moved aside, then all are moved back under the names wanted
	archives := map[int][]byte{}
	put := func(idx int) string {
		archives[idx] = rewraptest.FragmentArchive(uint32(idx), 3, 1024, 100)
		if err := rewraptest.PutOldECArchive(m, keys, "p1", obj, archives[idx], idx, nil); err != nil {
			t.Fatal(err)
		}
		names, _ := filepath.Glob(filepath.Join(dir, "*.data"))
		if len(names) != 1 {
			t.Fatalf("data files %v", names)
		}
		to := filepath.Join(aside, filepath.Base(names[0]))
		if err := os.Rename(names[0], to); err != nil {
			t.Fatal(err)
		}
		return to
	}
	first, second, newer := put(1), put(3), put(2)
	ts := strings.SplitN(filepath.Base(first), "#", 2)[0]
	// the second durable archive: the first's timestamp, as a handoff holds it
	_, _, v := fileValues(t, second)
	v["X-Timestamp"] = ts
	writeValues(t, second, v)
	newerTS := strings.SplitN(filepath.Base(newer), "#", 2)[0]
	want := map[string]int{
		ts + "#1#d.data":    1,
		ts + "#3#d.data":    3,
		newerTS + "#2.data": 2, // not durable
	}
	for from, to := range map[string]string{first: ts + "#1#d.data", second: ts + "#3#d.data", newer: newerTS + "#2.data"} {
		if err := os.Rename(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	if err := postUnder(m, keys, "p1", obj, oldKey, map[string]string{"X-Object-Meta-Colour": "blue"}); err != nil {
		t.Fatal(err)
	}
	if got := listData(dir); len(got) != 3 {
		t.Fatalf("set-up: data files %v, want %v", got, want)
	}
	return archives, dir, want
}

// listData lists the .data files of dir by name.
func listData(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "*.data"))
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	sort.Strings(names)
	return names
}

// TestRewrapEveryECArchive (issue 19): an EC hash directory holding two
// durable fragment archives of one timestamp (a handoff's two indexes)
// and a newer non-durable one, all on the old key, with a .meta on the old
// key too: status counts the three archives (and the .meta), the rewrap
// moves each onto the active key (each readable with the old key
// destroyed), counts each once although the job asks for the keys with the
// lock released and examines the directory again, reseals the .meta once;
// status then counts none.
func TestRewrapEveryECArchive(t *testing.T) {
	m := ecNode(t)
	keys := rewraptest.NewKeys()
	oldKey := keys.Rotate("p1")
	const obj = "multi"
	archives, dir, want := multiArchiveDir(t, m, keys, obj, oldKey)
	active := keys.Rotate("p1")

	s := run(t, m, keys, func(o *Options) { o.DryRun = true })
	if n := s.Keys[KeyRef{"p1", oldKey}]; n != 3 || s.Objects(true) != 3 || s.Rewrapped != 3 || s.Metas(true) != 1 {
		t.Fatalf("status before: %d archives on the old key (%d inactive), %d to rewrap, %d .meta; want 3, 3, 3, 1", n, s.Objects(true), s.Rewrapped, s.Metas(true))
	}

	s = run(t, m, keys, nil)
	if s.Scanned != 3 || s.Rewrapped != 3 || s.Failed != 0 || s.Changed != 0 || s.Keys[KeyRef{"p1", active}] != 3 || s.MetaKeys[KeyRef{"p1", active}] != 1 {
		t.Fatalf("rewrap: scanned %d, rewrapped %d, failed %d (%v), changed %d, keys %v, meta keys %v; want 3 archives counted once each, 1 .meta",
			s.Scanned, s.Rewrapped, s.Failed, s.Examples, s.Changed, s.Keys, s.MetaKeys)
	}
	keys.Destroy("p1", oldKey)
	got := listData(dir)
	if len(got) != 3 {
		t.Fatalf("after rewrap: data files %v", got)
	}
	for _, name := range got {
		idx, ok := want[name]
		if !ok {
			t.Fatalf("unexpected data file %s", name)
		}
		body, values := readArchive(t, keys, filepath.Join(dir, name))
		if id := values[sysmeta.Prefix+sysmeta.KeyID]; id != active {
			t.Errorf("%s: key %s, want %s", name, id, active)
		}
		if !bytes.Equal(body, archives[idx]) {
			t.Errorf("%s: read back other bytes", name)
		}
	}
	// as the object server reads it: the durable archive, the .meta's
	// user metadata opening on the active key
	if body, o := readObject(t, m, keys, "p1", obj); o.Metadata["X-Object-Meta-Colour"] != "blue" || (!bytes.Equal(body, archives[1]) && !bytes.Equal(body, archives[3])) {
		t.Errorf("object read: user metadata %q", o.Metadata["X-Object-Meta-Colour"])
	}

	s = run(t, m, keys, func(o *Options) { o.DryRun = true })
	if s.Objects(true) != 0 || s.Metas(true) != 0 || s.Already != 3 || s.Keys[KeyRef{"p1", active}] != 3 {
		t.Fatalf("status after: %d archives and %d .meta on inactive keys, %d already; want 0, 0, 3", s.Objects(true), s.Metas(true), s.Already)
	}
}

// fileValues reads a file's metadata.
func fileValues(t *testing.T, path string) (*os.File, int64, map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size(), raw.Values
}

// readArchive decrypts one old-layout archive (an objcrypt stream) with
// the key its metadata names.
func readArchive(t *testing.T, keys *rewraptest.Keys, path string) ([]byte, map[string]string) {
	t.Helper()
	f, size, v := fileValues(t, path)
	cm, err := sysmeta.Parse(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pk, err := keys.KeyMaterial(context.Background(), "p1", cm.KeyID)
	if err != nil {
		t.Fatalf("%s: key %s: %v", path, cm.KeyID, err)
	}
	r, err := objcrypt.NewReader(f, size, objcrypt.ProjectKey{ID: cm.KeyID, Key: pk}, v["name"],
		&objcrypt.ReaderOptions{KeyID: cm.KeyID, WrappedKey: cm.WrappedKey, Parallelism: 1})
	if err != nil {
		t.Fatalf("%s: reader: %v", path, err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		t.Fatalf("%s: read: %v", path, err)
	}
	return buf.Bytes(), v
}

// TestRewrapEveryECArchiveRotation: the active key rotates as the second
// archive of the directory is about to be committed. The first stays
// committed (and counted) on the key active at its commit; the directory
// is examined again with no lock held for the keys, and the two others go
// onto the key active now, each archive counted once, the .meta resealed
// once. A job that examined every archive again counted the first twice.
func TestRewrapEveryECArchiveRotation(t *testing.T) {
	m := ecNode(t)
	keys := rewraptest.NewKeys()
	oldKey := keys.Rotate("p1")
	const obj = "multi"
	_, dir, _ := multiArchiveDir(t, m, keys, obj, oldKey)
	first := keys.Rotate("p1")
	var now string
	replaced := 0
	beforeReplace = func(string) {
		if replaced++; replaced == 2 {
			now = keys.Rotate("p1")
		}
	}
	t.Cleanup(func() { beforeReplace = nil })
	s := run(t, m, keys, func(o *Options) { o.Workers = 1 })
	if now == "" {
		t.Fatal("no rotation")
	}
	if s.Scanned != 3 || s.Rewrapped != 3 || s.Failed != 0 || s.Changed != 0 ||
		s.Keys[KeyRef{"p1", first}] != 1 || s.Keys[KeyRef{"p1", now}] != 2 || len(s.Keys) != 2 ||
		s.MetaKeys[KeyRef{"p1", now}] != 1 || len(s.MetaKeys) != 1 {
		t.Fatalf("scanned %d, rewrapped %d, failed %d (%v), changed %d, keys %v, meta keys %v; want 3, 3, 0, 0, 1 on %s and 2 on %s, 1 .meta on %s",
			s.Scanned, s.Rewrapped, s.Failed, s.Examples, s.Changed, s.Keys, s.MetaKeys, first, now, now)
	}
	onKey := map[string]int{}
	for _, name := range listData(dir) {
		_, v := readArchive(t, keys, filepath.Join(dir, name))
		onKey[v[sysmeta.Prefix+sysmeta.KeyID]]++
	}
	if onKey[first] != 1 || onKey[now] != 2 {
		t.Fatalf("archives by key %v", onKey)
	}
}
