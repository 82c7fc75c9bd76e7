package dbconn

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSQLiteFilesPrivate: the database Open creates (make run's, or any
// sqlite:// connection) and its -wal and -shm companions are readable by
// their owner only, whatever the umask lets through; SQLite alone makes
// them 0644. A file that already exists keeps the mode its operator gave.
func TestSQLiteFilesPrivate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		relative bool
		existing os.FileMode // 0: no file before Open
		want     os.FileMode
	}{
		{name: "absolute path, new file", want: 0o600},
		{name: "relative path, new file", relative: true, want: 0o600},
		{name: "existing file keeps its mode", existing: 0o640, want: 0o640},
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
				if err := os.WriteFile(path, nil, tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			db, _, err := Open(ctx, url, Options{})
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
