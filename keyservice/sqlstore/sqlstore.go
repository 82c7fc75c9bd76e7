package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/keyservice"
)

// sqliteTime is how times are spelled in SQLite: fixed width, so that text
// comparison is time comparison.
const sqliteTime = "2006-01-02 15:04:05.000000"

// Store is the SQL implementation of keyservice.Store. It reaches the
// database only through conn (conn.go), which classifies every database
// error where it happens: an outage comes back as keyservice.ErrUnavailable
// (HTTP 503), wrapped around the driver's error; other errors pass
// unchanged.
type Store struct {
	db      conn
	mysql   bool
	likeEsc string // the LIKE ... ESCAPE clause, spelled for the dialect

	hot sync.Map // query string -> *sql.Stmt (prepared.go)
}

var (
	_ keyservice.Store         = (*Store)(nil)
	_ keyservice.QuotaInserter = (*Store)(nil)
)

// New returns a Store over db, which must have been opened by package
// dbconn and migrated by package migrations.
func New(db *sql.DB, dialect dbconn.Dialect) (*Store, error) {
	switch dialect {
	case dbconn.MySQL:
		// MySQL string literals treat the backslash as an escape itself.
		return &Store{db: conn{db}, mysql: true, likeEsc: ` ESCAPE '\\'`}, nil
	case dbconn.SQLite:
		return &Store{db: conn{db}, likeEsc: ` ESCAPE '\'`}, nil
	}
	return nil, fmt.Errorf("sqlstore: %w", dialect.Check())
}

// now is the clock for defaults; it matches what the store keeps.
func now() time.Time { return norm(time.Now()) }

// norm is a time as the store keeps it.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tv converts a time to the argument the dialect stores.
func (s *Store) tv(t time.Time) any {
	t = norm(t)
	if s.mysql {
		return t
	}
	return t.Format(sqliteTime)
}

// tvp is tv for an optional time.
func (s *Store) tvp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.tv(*t)
}

// nullString stores "" as NULL, which Barbican shows as null.
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

// dbTime scans a time column of either dialect: time.Time from MySQL
// (parseTime), text from SQLite.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (d *dbTime) Scan(v any) error {
	var err error
	switch x := v.(type) {
	case nil:
		d.T, d.Valid = time.Time{}, false
		return nil
	case time.Time:
		d.T = x
	case string:
		d.T, err = time.ParseInLocation(sqliteTime, x, time.UTC)
	case []byte:
		d.T, err = time.ParseInLocation(sqliteTime, string(x), time.UTC)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: bad stored time: %w", err)
	}
	d.T, d.Valid = norm(d.T), true
	return nil
}

func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database ping: %w", err)
	}
	return nil
}

// exists reports whether a row matches; table and cond are constants.
func (s *Store) exists(ctx context.Context, table, cond string, args ...any) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE "+cond+" LIMIT 1", args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
