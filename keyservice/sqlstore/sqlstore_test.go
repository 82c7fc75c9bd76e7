package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/sqlstore"
	"opendev.org/x/arca/keyservice/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyservice.Store {
		return sqlstore.New(testenv.SQLite(t), "sqlite")
	})
}

func TestMySQL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyservice.Store {
		db, _ := testenv.MySQL(t)
		return sqlstore.New(db, "mysql")
	})
}

// TestStoredTimeFormat pins how times sit in the database, which other
// tools (and later migrations) rely on: UTC, microseconds, and on SQLite a
// fixed-width text that sorts as time.
func TestStoredTimeFormat(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			var db *sql.DB
			if dialect == "sqlite" {
				db = testenv.SQLite(t)
			} else {
				db, _ = testenv.MySQL(t)
			}
			s := sqlstore.New(db, dialect)
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
	b.Run("sqlite", func(b *testing.B) { f(b, sqlstore.New(testenv.SQLite(b), "sqlite")) })
	b.Run("mysql", func(b *testing.B) {
		db, _ := testenv.MySQL(b)
		f(b, sqlstore.New(db, "mysql"))
	})
}
