package diskfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestMkdirsCountsCreatedDirectories(t *testing.T) {
	base := t.TempDir()
	n, err := mkdirs(filepath.Join(base, "a", "b", "c"), 0o750)
	if err != nil || n != 3 {
		t.Fatalf("mkdirs = %d, %v; want 3 created", n, err)
	}
	n, err = mkdirs(filepath.Join(base, "a", "b", "d"), 0o750)
	if err != nil || n != 1 {
		t.Fatalf("mkdirs = %d, %v; want 1 created", n, err)
	}
	n, err = mkdirs(filepath.Join(base, "a", "b", "d"), 0o750)
	if err != nil || n != 0 {
		t.Fatalf("mkdirs of an existing dir = %d, %v; want 0", n, err)
	}
	if err := os.WriteFile(filepath.Join(base, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mkdirs(filepath.Join(base, "f"), 0o750); err == nil {
		t.Fatal("mkdirs over a file succeeded")
	}
}

// Concurrent writers in one partition all land in hashes.invalid: the
// in-process lock hands the partition lock over without losing updates,
// and without the flock's poll-and-sleep.
func TestConcurrentCommitsInvalidateEverySuffix(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%v", fsync), func(t *testing.T) {
			m := newManager(t)
			m.NoFsync = !fsync
			const n = 40
			want := map[string]bool{}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			var part string
			for i := range n {
				d, err := m.Object("d1", "7", 0, "a", "c", fmt.Sprintf("o%d", i))
				if err != nil {
					t.Fatal(err)
				}
				part = d.partPath()
				want[d.Hash[len(d.Hash)-3:]] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					w, err := d.Create()
					if err != nil {
						errs <- err
						return
					}
					if _, err := w.File().WriteString("body"); err != nil {
						errs <- err
						return
					}
					errs <- w.Commit(context.Background(), "1700000000.00000.data", map[string]string{"X-Timestamp": "1700000000.00000"})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(filepath.Join(part, invalidsFile))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, s := range strings.Fields(string(data)) {
				got[s] = true
			}
			for s := range want {
				if !got[s] {
					t.Errorf("suffix %s missing from hashes.invalid", s)
				}
			}
			if len(partLocks.m) != 0 {
				t.Errorf("%d partition lock entries left", len(partLocks.m))
			}
			// every object readable
			for i := range n {
				d, _ := m.Object("d1", "7", 0, "a", "c", fmt.Sprintf("o%d", i))
				obj, err := d.Open()
				if err != nil {
					t.Fatalf("o%d: %v", i, err)
				}
				obj.Close()
			}
			// temp files all renamed away
			tmp, _ := os.ReadDir(filepath.Join(m.Devices, "d1", "tmp"))
			var left []string
			for _, e := range tmp {
				left = append(left, e.Name())
			}
			sort.Strings(left)
			if len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}
