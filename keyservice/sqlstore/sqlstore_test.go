package sqlstore_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/sqlstore"
	"opendev.org/x/arca/keyservice/storetest"
)

// newStore returns the store over db, failing the test if New refuses.
func newStore(tb testing.TB, db *sql.DB, dialect dbconn.Dialect) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.New(db, dialect)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyservice.Store {
		return newStore(t, testenv.SQLite(t), dbconn.SQLite)
	})
}

func TestMySQL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyservice.Store {
		db, _ := testenv.MySQL(t)
		return newStore(t, db, dbconn.MySQL)
	})
}

// TestNewUnknownDialect: a dialect New does not know is an error, not a
// panic and not a store that fails later.
func TestNewUnknownDialect(t *testing.T) {
	s, err := sqlstore.New(testenv.SQLite(t), dbconn.Dialect("postgres"))
	if err == nil || s != nil || !strings.Contains(err.Error(), `unknown database dialect "postgres"`) {
		t.Fatalf("New with dialect postgres: %v, %v; want an error naming the dialect", s, err)
	}
}

// TestStoredTimeFormat pins how times sit in the database, which other
// tools (and later migrations) rely on: UTC, microseconds, and on SQLite a
// fixed-width text that sorts as time.
func TestStoredTimeFormat(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			var db *sql.DB
			if dialect == "sqlite" {
				db = testenv.SQLite(t)
			} else {
				db, _ = testenv.MySQL(t)
			}
			s := newStore(t, db, dialect)
			created := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.FixedZone("X", -5*3600))
			sec := &keyservice.Secret{ID: uuid.NewString(), ProjectID: "p", SecretType: "opaque", Status: "ACTIVE", Created: created, Updated: created}
			if err := s.CreateSecret(ctx, sec); err != nil {
				t.Fatal(err)
			}
			var text string
			q := "SELECT created FROM secrets WHERE id = ?"
			if dialect == "mysql" {
				q = "SELECT DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f') FROM secrets WHERE id = ?"
			}
			if err := db.QueryRowContext(ctx, q, sec.ID).Scan(&text); err != nil {
				t.Fatal(err)
			}
			if want := "2030-01-02 08:04:05.000006"; text != want {
				t.Errorf("stored %q, want %q", text, want)
			}
		})
	}
}

func BenchmarkCreateSecret(b *testing.B) {
	forEachDB(b, func(b *testing.B, s keyservice.Store) {
		ctx := context.Background()
		payload := make([]byte, 64)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			sec := &keyservice.Secret{ID: uuid.NewString(), ProjectID: "bench", CreatorID: "u", Name: "bench",
				SecretType: "opaque", Status: "ACTIVE", PayloadContentType: "application/octet-stream", Payload: payload}
			if err := s.CreateSecret(ctx, sec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGetSecret(b *testing.B) {
	forEachDB(b, func(b *testing.B, s keyservice.Store) {
		ctx := context.Background()
		sec := &keyservice.Secret{ID: uuid.NewString(), ProjectID: "bench", CreatorID: "u", Name: "bench",
			SecretType: "opaque", Status: "ACTIVE", PayloadContentType: "application/octet-stream", Payload: make([]byte, 64)}
		if err := s.CreateSecret(ctx, sec); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.GetSecret(ctx, sec.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func forEachDB(b *testing.B, f func(b *testing.B, s keyservice.Store)) {
	b.Run("sqlite", func(b *testing.B) { f(b, newStore(b, testenv.SQLite(b), dbconn.SQLite)) })
	b.Run("mysql", func(b *testing.B) {
		db, _ := testenv.MySQL(b)
		f(b, newStore(b, db, dbconn.MySQL))
	})
}
