package manage_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/migrations"
)

// TestInterruptedUpgrade leaves the schema dirty, as a migration killed
// half-way does, and recovers with the documented commands.
func TestInterruptedUpgrade(t *testing.T) {
	dbPath, run := sqliteManage(t)
	latest := migrations.Latest("sqlite")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE schema_migrations SET dirty = 1"); err != nil {
		t.Fatal(err)
	}
	out, err := run("db", "version")
	if err != nil || !strings.Contains(out, "dirty") || !strings.Contains(out, "db force") {
		t.Fatalf("db version on a dirty schema: %v %s", err, out)
	}
	if out, err := run("db", "upgrade"); err == nil {
		t.Fatalf("db upgrade ran over a dirty schema: %s", out)
	}
	if out, err := run("db", "force"); err == nil {
		t.Fatalf("db force without a version: %s", out)
	}
	if out, err := run("db", "force", "--version", fmt.Sprint(latest)); err != nil {
		t.Fatalf("db force: %v %s", err, out)
	}
	out, err = run("db", "upgrade")
	if err != nil || !strings.Contains(out, fmt.Sprintf("version %d", latest)) {
		t.Fatalf("db upgrade after force: %v %s", err, out)
	}
	if out, err := run("db", "upgrade"); err != nil {
		t.Fatalf("db upgrade is not idempotent: %v %s", err, out)
	}
}

// sqliteManage writes a no-auth arca.conf on a SQLite database in a fresh
// folder, brings the schema up to date with arca-manage db upgrade, and
// returns the database's path and a runner of arca-manage commands on it.
func sqliteManage(t *testing.T) (dbPath string, run func(args ...string) (string, error)) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "arca.sqlite")
	conf := filepath.Join(dir, "arca.conf")
	content := fmt.Sprintf("[DEFAULT]\nauth_strategy = noauth\n[database]\nconnection = sqlite:///%s\n[crypto]\nmaster_key_file = %s/master.key\n", dbPath, dir)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	run = func(args ...string) (string, error) { return testenv.Manage(t, conf, args...) }
	if out, err := run("db", "upgrade"); err != nil {
		t.Fatalf("db upgrade: %v %s", err, out)
	}
	return dbPath, run
}
