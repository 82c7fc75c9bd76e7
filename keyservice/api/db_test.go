package api_test

import (
	"crypto/rand"
	"database/sql"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/sqlstore"
)

// openStore opens a fresh, migrated database of the dialect (SQLite in a
// temporary file, or a database of its own on the stack's MariaDB) and the
// store over it.
func openStore(t testing.TB, dialect dbconn.Dialect) (*sql.DB, *sqlstore.Store) {
	t.Helper()
	var db *sql.DB
	switch dialect {
	case dbconn.SQLite:
		db = testenv.SQLite(t)
	case dbconn.MySQL:
		db, _ = testenv.MySQL(t)
	}
	store, err := sqlstore.New(db, dialect)
	if err != nil {
		t.Fatal(err)
	}
	return db, store
}

// testKeyring is a keyring with one random master key, "test".
func testKeyring(t testing.TB) *envelope.Keyring {
	t.Helper()
	master := make([]byte, envelope.KeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "test", Key: master}})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
