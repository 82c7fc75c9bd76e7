package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"opendev.org/x/arca/internal/dbconn"
)

// versionTable is golang-migrate's default; keeping it lets an operator use
// the migrate CLI on Arca's schema in an emergency.
const versionTable = "schema_migrations"

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// Errors Check wraps, for callers that branch on the kind of mismatch.
var (
	ErrOutOfDate = errors.New("database schema is out of date")
	ErrDirty     = errors.New("database schema is dirty")
	ErrTooNew    = errors.New("database schema is newer than this arca")
)

// FS returns the migration files of a dialect, for tests and tools.
func FS(dialect dbconn.Dialect) (fs.FS, error) {
	if err := dialect.Check(); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return fs.Sub(files, string(dialect))
}

// Latest returns the highest version the embedded files of the dialect
// define, 0 for an unknown dialect.
func Latest(dialect dbconn.Dialect) uint {
	vs, err := versions(dialect)
	if err != nil || len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// versions lists the versions that have an up file, ascending (fs.ReadDir
// sorts by name and the names are zero-padded).
func versions(dialect dbconn.Dialect) ([]uint, error) {
	sub, err := FS(dialect)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(sub, ".")
	if err != nil {
		return nil, err
	}
	var vs []uint
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		v, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("migrations: bad file name %s/%s", dialect, e.Name())
		}
		vs = append(vs, uint(v))
	}
	return vs, nil
}

// Up applies every migration not yet applied.
func Up(ctx context.Context, db *sql.DB, dialect dbconn.Dialect) error {
	return run(ctx, db, dialect, "up", (*migrate.Migrate).Up)
}

// Down reverts every migration: it drops all of Arca's tables and data.
func Down(ctx context.Context, db *sql.DB, dialect dbconn.Dialect) error {
	return run(ctx, db, dialect, "down", (*migrate.Migrate).Down)
}

// Steps applies n migrations forward (n > 0) or reverts -n (n < 0).
func Steps(ctx context.Context, db *sql.DB, dialect dbconn.Dialect, n int) error {
	return run(ctx, db, dialect, fmt.Sprintf("steps %d", n), func(m *migrate.Migrate) error { return m.Steps(n) })
}

// Force records version as the current, clean schema version without
// running anything: the way out of a dirty state once an operator has
// checked by hand what the failed migration did (version 0 means "no
// schema").
func Force(ctx context.Context, db *sql.DB, dialect dbconn.Dialect, version uint) error {
	v := int(version)
	if version == 0 {
		v = database.NilVersion
	}
	return run(ctx, db, dialect, fmt.Sprintf("force %d", version), func(m *migrate.Migrate) error { return m.Force(v) })
}

// run wires golang-migrate to db without letting it close db: its SQLite
// driver's Close closes the *sql.DB it was given, so it is never called,
// and the MySQL driver gets a dedicated connection (its advisory lock
// must be released on the connection that took it) which we close.
func run(ctx context.Context, db *sql.DB, dialect dbconn.Dialect, what string, op func(*migrate.Migrate) error) error {
	sub, err := FS(dialect)
	if err != nil {
		return err
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return fmt.Errorf("migrations: reading embedded %s files: %w", dialect, err)
	}
	defer src.Close()
	var drv database.Driver
	switch dialect {
	case dbconn.MySQL:
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		defer conn.Close()
		drv, err = migratemysql.WithConnection(ctx, conn, &migratemysql.Config{MigrationsTable: versionTable})
		if err != nil {
			return fmt.Errorf("migrations: preparing mysql: %w", err)
		}
	case dbconn.SQLite:
		drv, err = migratesqlite.WithInstance(db, &migratesqlite.Config{MigrationsTable: versionTable})
		if err != nil {
			return fmt.Errorf("migrations: preparing sqlite: %w", err)
		}
	}
	m, err := migrate.NewWithInstance("iofs", src, string(dialect), drv)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// golang-migrate takes no context, and its GracefulStop channel races
	// with its own shutdown (the race detector flags it in v4.20.1), so a
	// cancelled context is honoured before starting; once started, the
	// migrations run to the end (each is a single statement on MySQL).
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("migrations %s (%s): %w", what, dialect, err)
	}
	err = op(m)
	var dirty migrate.ErrDirty
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		return ctx.Err()
	case errors.As(err, &dirty):
		return dirtyError(uint(max(dirty.Version, 0)))
	case errors.Is(err, os.ErrNotExist):
		v, _, verr := Version(db, dialect)
		if verr == nil && v > Latest(dialect) {
			return tooNewError(v, Latest(dialect))
		}
	}
	return fmt.Errorf("migrations %s (%s): %w", what, dialect, err)
}

// Version returns the schema version recorded in the database (0 when
// there is no schema) and whether the last migration failed part-way. It
// only reads.
func Version(db *sql.DB, dialect dbconn.Dialect) (version uint, dirty bool, err error) {
	ctx := context.Background()
	var exists int
	var q string
	switch dialect {
	case dbconn.MySQL:
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	case dbconn.SQLite:
		q = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	default:
		return 0, false, fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
	if err := db.QueryRowContext(ctx, q, versionTable).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("reading the schema version: %w", err)
	}
	if exists == 0 {
		return 0, false, nil
	}
	var v int64
	err = db.QueryRowContext(ctx, "SELECT version, dirty FROM "+versionTable+" LIMIT 1").Scan(&v, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reading the schema version: %w", err)
	}
	// golang-migrate records -1 (dirty) when reverting the first
	// migration failed.
	return uint(max(v, 0)), dirty, nil
}

// Check returns nil if the database schema is exactly what this build
// needs, and otherwise an error that tells the operator what to do.
func Check(db *sql.DB, dialect dbconn.Dialect) error {
	v, dirty, err := Version(db, dialect)
	if err != nil {
		return err
	}
	latest := Latest(dialect)
	switch {
	case dirty:
		return dirtyError(v)
	case v < latest:
		return fmt.Errorf("%w: database schema is at version %d, this arca needs %d: run \"arca-manage db upgrade\"", ErrOutOfDate, v, latest)
	case v > latest:
		return tooNewError(v, latest)
	}
	return nil
}

func dirtyError(v uint) error {
	return fmt.Errorf("%w: migration %d failed part-way, so the schema may be between versions %d and %d: "+
		"compare the database with migrations/<dialect>/%06d_*.up.sql, repair it by hand, record the version it is at "+
		"(\"arca-manage db force --version N\"), then run \"arca-manage db upgrade\"",
		ErrDirty, v, max(v, 1)-1, v, v)
}

func tooNewError(v, latest uint) error {
	return fmt.Errorf("%w: database schema is at version %d, this arca knows only up to %d: run a newer arca (or downgrade the schema with the newer arca-manage)", ErrTooNew, v, latest)
}
