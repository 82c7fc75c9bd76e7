package dbconn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSQLiteFilesPrivate: the database Open creates (make run's, or any
// sqlite:// connection) and its -wal and -shm companions are readable by
// their owner only, whatever the umask lets through; SQLite alone makes
// them 0644. An existing database, -wal or -shm file that group or others
// can read or write is refused (nothing is opened, its mode is left
// alone); an owner-only one is used as it is.
func TestSQLiteFilesPrivate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		relative bool
		existing os.FileMode // 0: no file before Open
		suffix   string      // the existing file's suffix: "", "-wal", "-shm"
		want     os.FileMode // 0: Open refuses
	}{
		{name: "absolute path, new file", want: 0o600},
		{name: "relative path, new file", relative: true, want: 0o600},
		{name: "existing owner-only file", existing: 0o600, want: 0o600},
		{name: "existing group-readable file", existing: 0o640},
		{name: "existing world-readable file", existing: 0o644},
		{name: "existing group-writable file", existing: 0o620},
		{name: "existing world-readable WAL", existing: 0o644, suffix: "-wal"},
		{name: "existing group-readable shared-memory file", existing: 0o640, suffix: "-shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "arca.sqlite")
			url := "sqlite:///" + path
			if tc.relative {
				t.Chdir(dir)
				url = "sqlite:///arca.sqlite"
			}
			if tc.existing != 0 {
				if tc.suffix != "" {
					if err := os.WriteFile(path, nil, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(path+tc.suffix, nil, tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path+tc.suffix, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			db, _, err := Open(ctx, url, Options{})
			if tc.want == 0 {
				if err == nil {
					db.Close()
					t.Fatalf("Open of a database whose %s has mode %04o succeeded", "arca.sqlite"+tc.suffix, tc.existing)
				}
				for _, part := range []string{fmt.Sprintf("mode %04o", tc.existing), "chmod 600", "arca.sqlite" + tc.suffix} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not say %q", err, part)
					}
				}
				if st, err := os.Stat(path + tc.suffix); err != nil || st.Mode().Perm() != tc.existing {
					t.Errorf("the refused file's mode changed: %v %v", st.Mode(), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// A write while the handle is open leaves the WAL and the
			// shared-memory index on disk next to the database.
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')"); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode().Perm(); got != tc.want {
					t.Errorf("%s: mode %04o, want %04o", filepath.Base(p), got, tc.want)
				}
			}
		})
	}
}
