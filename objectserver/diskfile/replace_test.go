package diskfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"opendev.org/x/arca/objectserver/pickle"
)

// TestReplaceData: the new file takes the old one's name, with its new
// metadata (checksummed), the old file's mode and times, and the old file
// is gone; a path removed meanwhile is not created again, and a path that
// names another file meanwhile keeps it.
func TestReplaceData(t *testing.T) {
	dir := t.TempDir()
	tmpDir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpDir, 0o750); err != nil {
		t.Fatal(err)
	}
	mkOld := func(name string) (*os.File, string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("old bytes"), 0o640); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := writeMetadata(f, map[string]string{"name": "/a/c/o", "X-Timestamp": "1.00000"}); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1_600_000_000, 123)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		return f, p
	}
	mkTmp := func() *os.File {
		f, err := os.CreateTemp(tmpDir, "tmp")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("new bytes!"); err != nil {
			t.Fatal(err)
		}
		return f
	}
	newPickle, err := pickle.Encode(map[string]string{"name": "/a/c/o", "X-Timestamp": "1.00000", "New": "yes"})
	if err != nil {
		t.Fatal(err)
	}

	old, p := mkOld("1.00000#2#d.data")
	tmp := mkTmp()
	if err := ReplaceData(tmp, old, p, newPickle, false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ReadRawMetadata(f)
	f.Close()
	st, _ := os.Stat(p)
	if string(b) != "new bytes!" || err != nil || raw.Values["New"] != "yes" || raw.Checksum == nil {
		t.Fatalf("replaced file: %q, %v, %v", b, raw, err)
	}
	if st.Mode().Perm() != 0o640 || !st.ModTime().Equal(time.Unix(1_600_000_000, 123)) {
		t.Fatalf("mode %v, mtime %v: not the old file's", st.Mode(), st.ModTime())
	}
	if left, _ := os.ReadDir(tmpDir); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want the file and tmp", len(ents))
	}

	// removed meanwhile (a DELETE's cleanup): not created again
	old, p = mkOld("2.00000#2#d.data")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceData(mkTmp(), old, p, newPickle, false); !errors.Is(err, ErrMetadataChanged) {
		t.Fatalf("path removed meanwhile: %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("a removed path came back: %v", err)
	}

	// another file under the name meanwhile: it stays
	old, p = mkOld("3.00000#2#d.data")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceData(mkTmp(), old, p, newPickle, false); !errors.Is(err, ErrMetadataChanged) {
		t.Fatalf("path replaced meanwhile: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "someone else's" {
		t.Fatalf("the other file was replaced: %q", b)
	}
	if left, _ := os.ReadDir(tmpDir); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}
}
