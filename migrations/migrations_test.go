package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/migrations"
)

type dialectDB struct {
	dialect dbconn.Dialect
	open    func(t *testing.T) *sql.DB
}

var dialects = []dialectDB{
	{dbconn.SQLite, func(t *testing.T) *sql.DB { return testenv.RawSQLite(t) }},
	{dbconn.MySQL, func(t *testing.T) *sql.DB { db, _ := testenv.RawMySQL(t); return db }},
}

// Tables a full upgrade must create (later versions add more).
var tables = []string{"orders", "project_keks", "secret_user_metadata", "secrets"}

func listTables(t *testing.T, db *sql.DB, dialect dbconn.Dialect) []string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name"
	if dialect == dbconn.MySQL {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name <> 'schema_migrations' ORDER BY table_name"
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkVersion(t *testing.T, db *sql.DB, dialect dbconn.Dialect, want uint) {
	t.Helper()
	v, dirty, err := migrations.Version(db, dialect)
	if err != nil {
		t.Fatal(err)
	}
	if v != want || dirty {
		t.Fatalf("version %d dirty %v, want %d clean", v, dirty, want)
	}
}

func TestUpDownUp(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			latest := migrations.Latest(d.dialect)
			checkVersion(t, db, d.dialect, 0)
			if err := migrations.Check(db, d.dialect); !errors.Is(err, migrations.ErrOutOfDate) {
				t.Fatalf("Check on an empty database: %v", err)
			}
			for round := range 2 {
				if err := migrations.Up(ctx, db, d.dialect); err != nil {
					t.Fatalf("round %d: up: %v", round, err)
				}
				checkVersion(t, db, d.dialect, latest)
				if err := migrations.Check(db, d.dialect); err != nil {
					t.Fatalf("Check after up: %v", err)
				}
				got := listTables(t, db, d.dialect)
				for _, want := range tables {
					if !slices.Contains(got, want) {
						t.Fatalf("tables after up: %v, no %s", got, want)
					}
				}
				// Up again changes nothing and is not an error.
				if err := migrations.Up(ctx, db, d.dialect); err != nil {
					t.Fatalf("second up: %v", err)
				}
				if err := migrations.Down(ctx, db, d.dialect); err != nil {
					t.Fatalf("round %d: down: %v", round, err)
				}
				checkVersion(t, db, d.dialect, 0)
				if got := listTables(t, db, d.dialect); len(got) != 0 {
					t.Fatalf("tables left after down: %v", got)
				}
			}
		})
	}
}

func TestStepsAndCheckMessages(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			latest := migrations.Latest(d.dialect)
			if err := migrations.Steps(ctx, db, d.dialect, int(latest)-1); err != nil {
				t.Fatal(err)
			}
			checkVersion(t, db, d.dialect, latest-1)
			err := migrations.Check(db, d.dialect)
			if !errors.Is(err, migrations.ErrOutOfDate) {
				t.Fatalf("Check one version behind: %v", err)
			}
			want := fmt.Sprintf(`database schema is at version %d, this arca needs %d: run "arca-manage db upgrade"`, latest-1, latest)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}

			// A migration that failed half-way leaves the version dirty.
			if _, err := db.Exec("UPDATE schema_migrations SET version = ?, dirty = ?", latest, true); err != nil {
				t.Fatal(err)
			}
			v, dirty, err := migrations.Version(db, d.dialect)
			if err != nil || v != latest || !dirty {
				t.Fatalf("Version = %d, %v, %v", v, dirty, err)
			}
			err = migrations.Check(db, d.dialect)
			if !errors.Is(err, migrations.ErrDirty) || errors.Is(err, migrations.ErrOutOfDate) {
				t.Fatalf("Check on a dirty schema: %v", err)
			}
			if !regexp.MustCompile(`dirty: migration \d+ failed part-way`).MatchString(err.Error()) {
				t.Errorf("dirty message: %v", err)
			}
			if err := migrations.Up(ctx, db, d.dialect); !errors.Is(err, migrations.ErrDirty) {
				t.Fatalf("Up on a dirty schema: %v", err)
			}
			// The operator checks by hand, records the true version, upgrades.
			if err := migrations.Force(ctx, db, d.dialect, latest-1); err != nil {
				t.Fatal(err)
			}
			if err := migrations.Up(ctx, db, d.dialect); err != nil {
				t.Fatal(err)
			}
			checkVersion(t, db, d.dialect, latest)

			// A schema newer than the build.
			if _, err := db.Exec("UPDATE schema_migrations SET version = ?", latest+1); err != nil {
				t.Fatal(err)
			}
			if err := migrations.Check(db, d.dialect); !errors.Is(err, migrations.ErrTooNew) {
				t.Fatalf("Check on a newer schema: %v", err)
			}
			if err := migrations.Up(ctx, db, d.dialect); !errors.Is(err, migrations.ErrTooNew) {
				t.Fatalf("Up on a newer schema: %v", err)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	db := testenv.RawSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := migrations.Up(ctx, db, dbconn.SQLite); err == nil {
		t.Fatal("Up with a cancelled context succeeded")
	}
}

var fileName = regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)

// TestFiles keeps the folders in step: the same versions in both dialects,
// an up and a down for each, one statement per MySQL file.
func TestFiles(t *testing.T) {
	names := map[dbconn.Dialect]map[string]bool{}
	for _, dialect := range []dbconn.Dialect{dbconn.MySQL, dbconn.SQLite} {
		sub, err := migrations.FS(dialect)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := fs.ReadDir(sub, ".")
		if err != nil {
			t.Fatal(err)
		}
		names[dialect] = map[string]bool{}
		for _, e := range entries {
			if !fileName.MatchString(e.Name()) {
				t.Errorf("%s/%s: name must be NNNNNN_what.(up|down).sql", dialect, e.Name())
				continue
			}
			names[dialect][e.Name()] = true
			if dialect == dbconn.MySQL {
				b, err := fs.ReadFile(sub, e.Name())
				if err != nil {
					t.Fatal(err)
				}
				body := strings.TrimSpace(string(b))
				if strings.Count(body, ";") != 1 || !strings.HasSuffix(body, ";") {
					t.Errorf("mysql/%s: exactly one statement per file (DDL is not transactional on MySQL)", e.Name())
				}
			}
		}
		for n := range names[dialect] {
			var other string
			if strings.HasSuffix(n, ".up.sql") {
				other = strings.TrimSuffix(n, ".up.sql") + ".down.sql"
			} else {
				other = strings.TrimSuffix(n, ".down.sql") + ".up.sql"
			}
			if !names[dialect][other] {
				t.Errorf("%s/%s has no %s", dialect, n, other)
			}
		}
	}
	for n := range names[dbconn.MySQL] {
		if !names[dbconn.SQLite][n] {
			t.Errorf("mysql/%s has no sqlite counterpart", n)
		}
	}
	for n := range names[dbconn.SQLite] {
		if !names[dbconn.MySQL][n] {
			t.Errorf("sqlite/%s has no mysql counterpart", n)
		}
	}
	if migrations.Latest(dbconn.MySQL) != migrations.Latest(dbconn.SQLite) || migrations.Latest(dbconn.MySQL) == 0 {
		t.Errorf("Latest: mysql %d, sqlite %d", migrations.Latest(dbconn.MySQL), migrations.Latest(dbconn.SQLite))
	}
	if migrations.Latest("postgres") != 0 {
		t.Error("Latest of an unknown dialect")
	}
}

// TestSecretStoresMigration: KEKs and secrets written before secret stores
// existed land in the ” store, a project may then hold one KEK per store,
// and going down refuses while a project has KEKs in two stores (it would
// drop the KEK a store's secrets are sealed with).
func TestSecretStoresMigration(t *testing.T) {
	const before = 16
	ts := "2031-05-06 07:08:09.123456"
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			if err := migrations.Steps(ctx, db, d.dialect, before); err != nil {
				t.Fatal(err)
			}
			exec := func(q string, args ...any) error { _, err := db.Exec(q, args...); return err }
			if err := exec("INSERT INTO project_keks (project_id, master_key_id, wrapped_kek, created, updated) VALUES ('p', 'm', ?, ?, ?)", []byte("w"), ts, ts); err != nil {
				t.Fatal(err)
			}
			if err := exec("INSERT INTO secrets (id, project_id, creator_id, secret_type, status, created, updated) VALUES ('s', 'p', 'u', 'opaque', 'ACTIVE', ?, ?)", ts, ts); err != nil {
				t.Fatal(err)
			}
			if err := migrations.Up(ctx, db, d.dialect); err != nil {
				t.Fatal(err)
			}
			var kekStore, secretStore, master string
			if err := db.QueryRow("SELECT secret_store, master_key_id FROM project_keks WHERE project_id = 'p'").Scan(&kekStore, &master); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow("SELECT secret_store FROM secrets WHERE id = 's'").Scan(&secretStore); err != nil {
				t.Fatal(err)
			}
			if kekStore != "" || secretStore != "" || master != "m" {
				t.Fatalf("after up: KEK store %q (master %q), secret store %q; want '', m, ''", kekStore, master, secretStore)
			}
			if err := exec("INSERT INTO project_keks (project_id, secret_store, master_key_id, wrapped_kek, created, updated) VALUES ('p', 'pkcs11', 'h', ?, ?, ?)", []byte("w"), ts, ts); err != nil {
				t.Fatalf("a second store's KEK: %v", err)
			}
			if err := exec("INSERT INTO project_keks (project_id, secret_store, master_key_id, wrapped_kek, created, updated) VALUES ('p', 'pkcs11', 'h2', ?, ?, ?)", []byte("w"), ts, ts); err == nil {
				t.Fatal("two KEKs of one project in one store")
			}
			if err := migrations.Steps(ctx, db, d.dialect, -3); err == nil {
				t.Fatal("down with a project's KEKs in two stores succeeded")
			}
			// 19 and 18 went down; 17 failed whole (one statement on MySQL,
			// a transaction on SQLite): the schema is 17's. Once the second
			// store's KEK is gone (rewrapped away), down works.
			if err := migrations.Force(ctx, db, d.dialect, before+1); err != nil {
				t.Fatal(err)
			}
			if err := exec("DELETE FROM project_keks WHERE secret_store = 'pkcs11'"); err != nil {
				t.Fatal(err)
			}
			if err := migrations.Steps(ctx, db, d.dialect, -1); err != nil {
				t.Fatal(err)
			}
			checkVersion(t, db, d.dialect, before)
			if err := db.QueryRow("SELECT master_key_id FROM project_keks WHERE project_id = 'p'").Scan(&master); err != nil || master != "m" {
				t.Fatalf("KEK after down: %q, %v", master, err)
			}
		})
	}
}
