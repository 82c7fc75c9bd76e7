package rewrap

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// ecNode is a node whose policy 0 is erasure-coded (4+2).
func ecNode(t *testing.T) *diskfile.Manager {
	m := newNode(t)
	m.ECFragments = map[int]int{0: 6}
	return m
}

// archiveFile is the one .data file of obj, its bytes and metadata.
func archiveFile(t *testing.T, m *diskfile.Manager, obj string) (string, []byte, map[string]string) {
	t.Helper()
	df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_p1", "c", obj)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(df.Dir(), "*.data"))
	if len(names) != 1 {
		t.Fatalf("%s: data files %v", obj, names)
	}
	b, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(names[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil || raw.Checksum == nil {
		t.Fatalf("%s: metadata %v, checksum %q", obj, err, raw.Checksum)
	}
	return names[0], b, raw.Values
}

// TestUpgradeECLayout: old-layout archives (one objcrypt stream each; on
// the old key, on the active key, with sealed user metadata and EC ETag,
// empty) are counted by status, left alone (but rewrapped) without the
// option, and rewritten into the EC layout with it: under the same name,
// the archive byte for byte through the EC reader on the active key, the
// sealed ETag, EC ETag and user metadata opening, Swift's ETag and length
// those of the new bytes, every other value as it was; status then counts
// none, and a second run changes nothing.
func TestUpgradeECLayout(t *testing.T) {
	m := ecNode(t)
	keys := rewraptest.NewKeys()
	oldKey := keys.Rotate("p1")
	archives := map[string][]byte{
		"several": rewraptest.FragmentArchive(2, 5, 2048, 100),
		"one":     rewraptest.FragmentArchive(2, 1, 2, 2),
		"empty":   {},
	}
	put := func(name string) {
		err := rewraptest.PutOldECArchive(m, keys, "p1", name, archives[name], 2, map[string]string{
			"X-Object-Meta-Colour": "blue " + name, "X-Object-Sysmeta-Ec-Etag": md5hex([]byte(name)),
			"X-Object-Sysmeta-Ec-Content-Length": "1234",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("several")
	put("empty")
	active := keys.Rotate("p1")
	put("one") // on the active key already
	before := map[string]map[string]string{}
	beforeBytes, beforePath := map[string][]byte{}, map[string]string{}
	for name := range archives {
		p, b, v := archiveFile(t, m, name)
		before[name], beforeBytes[name], beforePath[name] = v, b, p
	}

	s := run(t, m, keys, func(o *Options) { o.DryRun = true })
	if s.ECOldLayout != 3 || s.ECUpgraded != 0 || s.Rewrapped != 2 {
		t.Fatalf("status: %d old-layout archives, %d to upgrade, %d to rewrap; want 3, 0, 2", s.ECOldLayout, s.ECUpgraded, s.Rewrapped)
	}
	var out bytes.Buffer
	Report(&out, s, true)
	if !strings.Contains(out.String(), "EC archives in the old layout: 3") {
		t.Fatalf("status report:\n%s", out.String())
	}

	// without the option: rewrapped, still streams
	s = run(t, m, keys, nil)
	if s.ECOldLayout != 3 || s.ECUpgraded != 0 || s.Failed != 0 {
		t.Fatalf("rewrap: %+v", s)
	}
	for name := range archives {
		if _, b, _ := archiveFile(t, m, name); !bytes.Equal(b, beforeBytes[name]) {
			t.Fatalf("%s: rewritten without --upgrade-ec-layout", name)
		}
	}
	s = run(t, m, keys, func(o *Options) { o.DryRun, o.UpgradeECLayout = true, true })
	if s.ECOldLayout != 3 || s.ECUpgraded != 3 {
		t.Fatalf("dry run with the option: %d old-layout, %d to upgrade", s.ECOldLayout, s.ECUpgraded)
	}

	s = run(t, m, keys, func(o *Options) { o.UpgradeECLayout = true })
	if s.ECOldLayout != 0 || s.ECUpgraded != 3 || s.Failed != 0 {
		t.Fatalf("upgrade: %d old-layout left, %d upgraded, %d failed: %v", s.ECOldLayout, s.ECUpgraded, s.Failed, s.Examples)
	}
	out.Reset()
	Report(&out, s, false)
	if !strings.Contains(out.String(), "EC archives: upgraded 3 to the EC layout") || !strings.Contains(out.String(), "EC archives in the old layout: 0") {
		t.Fatalf("report:\n%s", out.String())
	}
	for name, archive := range archives {
		path, stored, v := archiveFile(t, m, name)
		old := before[name]
		if path != beforePath[name] {
			t.Fatalf("%s: renamed", name)
		}
		rec, err := sysmeta.Parse(v)
		if err != nil || rec.EC == nil || rec.KeyID != active {
			t.Fatalf("%s: record %+v, %v; want the EC layout on %s", name, rec, err, active)
		}
		if len(stored) != len(archive) || v["ETag"] != md5hex(stored) || v["Content-Length"] != strconv.Itoa(len(archive)) {
			t.Fatalf("%s: %d bytes, ETag %s, length %s", name, len(stored), v["ETag"], v["Content-Length"])
		}
		if len(archive) > 80 && bytes.Equal(stored[80:], archive[80:]) {
			t.Fatalf("%s: payload in clear", name)
		}
		pk, _ := keys.KeyMaterial(context.Background(), "p1", active)
		key := objcrypt.ProjectKey{ID: active, Key: pk}
		er, err := objcrypt.NewECReader(bytes.NewReader(stored), int64(len(stored)), key, v["name"], *rec.ECMetadata())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = er.Range(0, int64(len(stored)))
		var got bytes.Buffer
		if _, err := er.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), archive) {
			t.Fatalf("%s: read back %v", name, err)
		}
		ek := er.ETagKeys()
		if e, err := ek.OpenETag(rec.SealedEtag, v["name"]); err != nil || e != md5hex(archive) || !ek.MatchETagMAC(rec.EtagMAC, e) {
			t.Fatalf("%s: sealed ETag %q %v", name, e, err)
		}
		if e, err := ek.OpenETag(v[sysmeta.Prefix+sysmeta.EcEtag], v["name"]+rewraptest.ECEtagDomain); err != nil || e != md5hex([]byte(name)) {
			t.Fatalf("%s: sealed EC ETag %q %v", name, e, err)
		}
		_, o := readObjectMeta(t, m, keys, name)
		if o["X-Object-Meta-Colour"] != "blue "+name {
			t.Fatalf("%s: user metadata %q", name, o["X-Object-Meta-Colour"])
		}
		for k, ov := range old {
			switch {
			case sysmeta.IsArca(k) || k == "ETag" || k == "Content-Length" || strings.HasPrefix(k, "X-Object-Meta-"):
			case v[k] != ov:
				t.Errorf("%s: %s changed from %q to %q", name, k, ov, v[k])
			}
		}
		if oldKey == active {
			t.Fatal("no rotation")
		}
	}
	if left, _ := os.ReadDir(filepath.Join(m.Devices, "d1", "tmp")); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}
	s = run(t, m, keys, func(o *Options) { o.UpgradeECLayout = true })
	if s.ECOldLayout != 0 || s.ECUpgraded != 0 || s.Already != 3 {
		t.Fatalf("second run: %+v", s)
	}
}

// readObjectMeta opens obj's user metadata as the object server shows it.
func readObjectMeta(t *testing.T, m *diskfile.Manager, keys *rewraptest.Keys, obj string) (*diskfile.Object, map[string]string) {
	t.Helper()
	df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_p1", "c", obj)
	if err != nil {
		t.Fatal(err)
	}
	o, err := df.Open()
	if err != nil {
		t.Fatalf("open %s: %v", obj, err)
	}
	defer o.Close()
	um, _, err := sysmeta.OpenUserMeta(o.DataMetadata, o.Metadata["name"], sysmeta.DataSet, func(id string) (*objcrypt.MetaKey, error) {
		k, err := keys.KeyMaterial(context.Background(), "p1", id)
		if err != nil {
			return nil, err
		}
		return objcrypt.NewMetaKey(objcrypt.ProjectKey{ID: id, Key: k})
	})
	if err != nil {
		t.Fatalf("%s: user metadata: %v", obj, err)
	}
	return o, um
}

// TestUpgradeECLayoutRefuses: an old-layout archive that does not verify
// whole (a flipped byte in its last segment, a sealed ETag of other bytes,
// fragment headers of another index than its metadata's) or whose
// plaintext is not fragments is counted as failed and left byte for
// byte, metadata included, with nothing left in tmp; the others are
// upgraded.
func TestUpgradeECLayoutRefuses(t *testing.T) {
	m := ecNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	good := rewraptest.FragmentArchive(1, 4, 4096, 300)
	for name, body := range map[string][]byte{
		"good": good, "flipped": good, "other-etag": good, "other-index": good,
		"not-fragments": bytes.Repeat([]byte("not a fragment "), 600),
	} {
		if err := rewraptest.PutOldECArchive(m, keys, "p1", name, body, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	tamper := func(name string, f func(path string, values map[string]string)) {
		path, _, v := archiveFile(t, m, name)
		f(path, v)
	}
	tamper("flipped", func(path string, _ map[string]string) {
		b, _ := os.ReadFile(path)
		b[len(b)-40] ^= 1
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	tamper("other-etag", func(path string, v map[string]string) {
		// a recorded ETag of other bytes (a legacy object's plaintext ETag:
		// the job cannot seal one of other bytes without the data key)
		delete(v, sysmeta.Prefix+sysmeta.Etag)
		delete(v, sysmeta.Prefix+sysmeta.EtagMac)
		v[sysmeta.Prefix+sysmeta.PlaintextEtag] = md5hex([]byte("other"))
		writeValues(t, path, v)
	})
	tamper("other-index", func(path string, v map[string]string) {
		np := strings.Replace(path, "#1#d.data", "#3#d.data", 1)
		v["X-Object-Sysmeta-Ec-Frag-Index"] = "3"
		writeValues(t, path, v)
		if err := os.Rename(path, np); err != nil {
			t.Fatal(err)
		}
	})
	before := map[string][]byte{}
	beforeMeta := map[string]map[string]string{}
	for _, name := range []string{"flipped", "other-etag", "other-index", "not-fragments"} {
		_, b, v := archiveFile(t, m, name)
		before[name], beforeMeta[name] = b, v
	}
	s := run(t, m, keys, func(o *Options) { o.UpgradeECLayout = true })
	if s.ECUpgraded != 1 || s.ECOldLayout != 4 || s.Failed != 4 {
		t.Fatalf("upgraded %d, left %d, failed %d (%v), want 1, 4, 4", s.ECUpgraded, s.ECOldLayout, s.Failed, s.Examples)
	}
	if s.Reasons["old-layout EC archive is not a fragment archive (stays a stream)"] != 1 || s.Reasons["old-layout EC archive does not verify"] != 3 {
		t.Fatalf("reasons %v", s.Reasons)
	}
	for name, b := range before {
		_, got, v := archiveFile(t, m, name)
		if !bytes.Equal(got, b) || len(v) != len(beforeMeta[name]) || v[sysmeta.Prefix+sysmeta.WrappedKey] != beforeMeta[name][sysmeta.Prefix+sysmeta.WrappedKey] {
			t.Errorf("%s: changed although it failed", name)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(m.Devices, "d1", "tmp")); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}
}

// writeValues replaces a file's metadata (a disk-level forgery).
func writeValues(t *testing.T, path string, v map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	np, err := pickle.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := diskfile.ReplacePickle(f, raw, np); err != nil {
		t.Fatal(err)
	}
	if _, _, err := diskfile.SetChecksum(f, np); err != nil {
		t.Fatal(err)
	}
}
