package diskfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRemoveStaleTemp(t *testing.T) {
	m := newManager(t)
	d, err := m.Object("d1", "1", 0, "a", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, FromTime(time.Now()).Internal()+".data", "kept", nil)

	// an unfinished write through O_TMPFILE leaves nothing to sweep
	u, err := m.Object("d1", "1", 0, "a", "c", "unnamed")
	if err != nil {
		t.Fatal(err)
	}
	uw, err := u.Create()
	if err != nil || uw.tmpPath != "" {
		t.Fatalf("Create = %v, named %q; want an O_TMPFILE file", err, uw.tmpPath)
	}
	uw.f.Close()

	// unfinished writes of a dead process through named temp files (a
	// file system without O_TMPFILE), in policy 0 and policy 1
	m.NamedTemp = true
	dead := []*Writer{}
	for _, policy := range []int{0, 1} {
		o, err := m.Object("d1", "1", policy, "a", "c", "dead")
		if err != nil {
			t.Fatal(err)
		}
		w, err := o.Create()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.File().WriteString("partial"); err != nil {
			t.Fatal(err)
		}
		dead = append(dead, w)
	}
	old := time.Now().Add(-time.Minute)
	for _, w := range dead {
		w.f.Close()
		if err := os.Chtimes(w.tmpPath, old, old); err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(m.Devices, "d1")
	// not temp directories: left alone
	for _, p := range []string{"tmpfoo/x", "tmp-x/x", "objects/x"} {
		full := filepath.Join(dev, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, old, old); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	// written after start (a concurrent writer): stays
	fresh := filepath.Join(dev, "tmp", "fresh")
	if err := os.WriteFile(fresh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fresh, start.Add(time.Second), start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	n, err := m.RemoveStaleTemp(start)
	if err != nil || n != 2 {
		t.Fatalf("RemoveStaleTemp = %d, %v; want 2", n, err)
	}
	for _, w := range dead {
		if _, err := os.Stat(w.tmpPath); !os.IsNotExist(err) {
			t.Errorf("%s survived: %v", w.tmpPath, err)
		}
	}
	for _, p := range []string{"tmp/fresh", "tmpfoo/x", "tmp-x/x", "objects/x"} {
		if _, err := os.Stat(filepath.Join(dev, p)); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	obj, err := d.Open()
	if err != nil {
		t.Fatalf("committed object: %v", err)
	}
	obj.Close()
	// a committed writer has nothing left in tmp; a second pass finds nothing
	if n, err := m.RemoveStaleTemp(start); err != nil || n != 0 {
		t.Fatalf("second pass = %d, %v", n, err)
	}
}

func TestIsTmpDir(t *testing.T) {
	for name, want := range map[string]bool{
		"tmp": true, "tmp-1": true, "tmp-12": true, "tmp-": false, "tmp-a": false, "tmpx": false, "objects": false, "tmp-1-2": false,
	} {
		if got := isTmpDir(name); got != want {
			t.Errorf("isTmpDir(%q) = %v", name, got)
		}
	}
}
