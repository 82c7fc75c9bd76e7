package diskfile

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/testenv"
)

// dirNames lists dir, sorted; a missing dir lists nothing.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// writerModes are the two ways a Writer writes: an unnamed O_TMPFILE file
// in the object's directory, and Swift's fallback, a named file in the
// device's tmp directory.
var writerModes = []struct {
	name      string
	namedTemp bool
}{{"O_TMPFILE", false}, {"named temp file", true}}

// TestWriterLayout: either way of writing leaves exactly Swift's layout
// (the hash directory holds the new file under its timestamp name, mode
// 0600, the body, the metadata and its checksum in user.swift.*), replaces
// the older .data, a write over a file of the same name replaces it whole,
// and nothing is left in tmp/.
func TestWriterLayout(t *testing.T) {
	for _, mode := range writerModes {
		t.Run(mode.name, func(t *testing.T) {
			m := newManager(t)
			m.NamedTemp = mode.namedTemp
			d, err := m.Object("d1", "7", 0, "a", "c", "o")
			if err != nil {
				t.Fatal(err)
			}
			tmpDir := filepath.Join(m.Devices, "d1", "tmp")
			for i, c := range []struct{ file, body string }{
				{"1700000000.00000.data", "first body"},
				{"1700000001.00000.data", "second body"},
				{"1700000001.00000.data", "same name, replaced"}, // linkat(2) refuses the name: replaced, not refused
			} {
				w, err := d.Create()
				if err != nil {
					t.Fatal(err)
				}
				if named := w.tmpPath != ""; named != mode.namedTemp {
					t.Fatalf("write %d: named temp file %v, want %v", i, named, mode.namedTemp)
				}
				if _, err := w.File().WriteString(c.body); err != nil {
					t.Fatal(err)
				}
				if !mode.namedTemp {
					// the unnamed file is in no directory until Commit
					if got := dirNames(t, tmpDir); len(got) != 0 {
						t.Fatalf("write %d: tmp holds %v before Commit", i, got)
					}
				}
				meta := map[string]string{"X-Timestamp": c.file[:16], "Content-Length": "x", "X-Object-Meta-K": "v"}
				if err := w.Commit(context.Background(), c.file, meta); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				if got, want := dirNames(t, d.Dir()), []string{c.file}; !reflect.DeepEqual(got, want) {
					t.Errorf("write %d: hash dir %v, want %v", i, got, want)
				}
				if got := dirNames(t, tmpDir); len(got) != 0 {
					t.Errorf("write %d: tmp holds %v", i, got)
				}
				p := filepath.Join(d.Dir(), c.file)
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode() != 0o600 {
					t.Errorf("write %d: mode %v, want -rw-------", i, st.Mode())
				}
				if b, err := os.ReadFile(p); err != nil || string(b) != c.body {
					t.Errorf("write %d: body %q, %v; want %q", i, b, err, c.body)
				}
				fd, err := openRaw(p, unix.O_RDONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readMetadata(fd)
				_ = unix.Close(fd)
				meta["name"] = "/a/c/o"
				if err != nil || !reflect.DeepEqual(got, meta) {
					t.Errorf("write %d: metadata %v, %v; want %v", i, got, err, meta)
				}
			}
			if got := testenv.XattrNames(t, filepath.Join(d.Dir(), "1700000001.00000.data")); !reflect.DeepEqual(got, []string{"user.swift.metadata", "user.swift.metadata_checksum"}) {
				t.Errorf("xattrs %v, want Swift's two", got)
			}
			// the suffix was invalidated, as Swift's invalidate_hash
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(d.Dir())), invalidsFile)); err != nil || !bytes.Contains(b, []byte(d.Hash[29:]+"\n")) {
				t.Errorf("hashes.invalid %q, %v", b, err)
			}
		})
	}
}

// TestWriterCrashBeforeCommit: a writer whose process dies before Commit
// (its descriptors closed, no Abort) leaves nothing anyone can see with
// O_TMPFILE: no new file in the hash directory, nothing in tmp/, the
// object as it was. With a named temp file the file stays in tmp/, out of
// the object's directory, until the start-up sweep (TestRemoveStaleTemp).
func TestWriterCrashBeforeCommit(t *testing.T) {
	for _, mode := range writerModes {
		t.Run(mode.name, func(t *testing.T) {
			m := newManager(t)
			m.NamedTemp = mode.namedTemp
			for _, obj := range []string{"existing", "new"} {
				d, err := m.Object("d1", "7", 0, "a", "c", obj)
				if err != nil {
					t.Fatal(err)
				}
				var before []string
				if obj == "existing" {
					put(t, d, "1700000000.00000.data", "old", map[string]string{"Content-Length": "3"})
					before = []string{"1700000000.00000.data"}
				}
				w, err := d.Create()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.File().WriteString("never committed"); err != nil {
					t.Fatal(err)
				}
				if err := w.File().Sync(); err != nil {
					t.Fatal(err)
				}
				w.f.Close() // the process died: its descriptors close, nothing else runs
				if got := dirNames(t, d.Dir()); !reflect.DeepEqual(got, before) {
					t.Errorf("%s: hash dir %v after the crash, want %v", obj, got, before)
				}
				tmp := dirNames(t, filepath.Join(m.Devices, "d1", "tmp"))
				if mode.namedTemp {
					if len(tmp) != 1 || filepath.Join(m.Devices, "d1", "tmp", tmp[0]) != w.tmpPath {
						t.Errorf("%s: tmp holds %v, want the one named temp file %s", obj, tmp, w.tmpPath)
					}
					_ = os.Remove(w.tmpPath)
				} else if len(tmp) != 0 {
					t.Errorf("%s: tmp holds %v", obj, tmp)
				}
				o, err := d.Open()
				switch {
				case obj == "existing" && err == nil:
					o.Close()
				case obj == "new" && errors.Is(err, ErrNotFound):
				default:
					t.Errorf("%s: Open after the crash: %v", obj, err)
				}
			}
		})
	}
}

// TestWriterTmpfileRefused: where the file system refuses O_TMPFILE
// (EOPNOTSUPP, EISDIR or EINVAL), the write goes through a named temp
// file and the Manager remembers, as Swift's use_linkat; any other error
// is the write's.
func TestWriterTmpfileRefused(t *testing.T) {
	orig := openTmpfile
	t.Cleanup(func() { openTmpfile = orig })
	for _, c := range []struct {
		errno    unix.Errno
		fallback bool
	}{
		{unix.EOPNOTSUPP, true}, {unix.EISDIR, true}, {unix.EINVAL, true},
		{unix.EACCES, false}, {unix.ENOSPC, false},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			calls := 0
			openTmpfile = func(dir string) (int, error) {
				calls++
				return -1, &fs.PathError{Op: "open", Path: dir, Err: c.errno}
			}
			m := newManager(t)
			d, err := m.Object("d1", "7", 0, "a", "c", "o")
			if err != nil {
				t.Fatal(err)
			}
			w, err := d.Create()
			if !c.fallback {
				if !errors.Is(err, c.errno) || m.noTmpfile.Load() {
					t.Fatalf("Create = %v (fallback remembered %v), want %v", err, m.noTmpfile.Load(), c.errno)
				}
				if c.errno == unix.ENOSPC && !errors.Is(err, ErrNoSpace) {
					t.Errorf("ENOSPC is not ErrNoSpace: %v", err)
				}
				return
			}
			if err != nil || w.tmpPath == "" || !m.noTmpfile.Load() {
				t.Fatalf("Create = %v, named %q, remembered %v", err, w.tmpPath, m.noTmpfile.Load())
			}
			if _, err := w.File().WriteString("body"); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(context.Background(), "1700000000.00000.data", nil); err != nil {
				t.Fatal(err)
			}
			if got := dirNames(t, d.Dir()); !reflect.DeepEqual(got, []string{"1700000000.00000.data"}) {
				t.Errorf("hash dir %v", got)
			}
			put(t, d, "1700000001.00000.data", "again", nil)
			if calls != 1 {
				t.Errorf("O_TMPFILE tried %d times, want once", calls)
			}
		})
	}
}

// TestWriterAbort: Abort leaves nothing either way, and the hash directory
// a new object's unnamed file needed stays empty, as Swift's.
func TestWriterAbort(t *testing.T) {
	for _, mode := range writerModes {
		t.Run(mode.name, func(t *testing.T) {
			m := newManager(t)
			m.NamedTemp = mode.namedTemp
			d, err := m.Object("d1", "7", 0, "a", "c", "o")
			if err != nil {
				t.Fatal(err)
			}
			w, err := d.Create()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.File().WriteString("aborted"); err != nil {
				t.Fatal(err)
			}
			w.Abort()
			if got := dirNames(t, filepath.Join(m.Devices, "d1", "tmp")); len(got) != 0 {
				t.Errorf("tmp holds %v", got)
			}
			if got := dirNames(t, d.Dir()); len(got) != 0 {
				t.Errorf("hash dir holds %v", got)
			}
			if _, err := d.Open(); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open: %v", err)
			}
		})
	}
}
