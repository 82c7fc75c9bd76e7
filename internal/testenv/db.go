package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/migrations"
)

// DefaultMySQLDSN is the server tests use when ARCA_TEST_MYSQL_DSN is unset:
// the MariaDB of the development stack.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// poolSize leaves room for tests that race many goroutines on one database.
const poolSize = 24

// SQLite returns a migrated SQLite database in a file under t.TempDir().
func SQLite(t testing.TB) *sql.DB {
	t.Helper()
	db := RawSQLite(t)
	migrate(t, db, dbconn.SQLite)
	return db
}

// RawSQLite returns an empty SQLite database in a file under t.TempDir().
func RawSQLite(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "arca.db")
	u := &url.URL{Scheme: "sqlite", Path: "/" + path}
	db, _, err := dbconn.Open(context.Background(), u.String(), dbconn.Options{MaxOpenConns: poolSize})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// MySQL returns a migrated, freshly created database on the test server and
// its go-sql-driver DSN (with DBName set), for tests that start processes.
func MySQL(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db, dsn := RawMySQL(t)
	migrate(t, db, dbconn.MySQL)
	return db, dsn
}

// RawMySQL returns an empty, freshly created database on the test server.
func RawMySQL(t testing.TB) (*sql.DB, string) {
	t.Helper()
	admin, cfg := server(t)
	name := "arca_test_" + RandomHex(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The name is ours (hex), never user input.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testenv: dropping database %s: %v", name, err)
		}
	})
	db, _, err := dbconn.Open(ctx, osloURL(cfg, name), dbconn.Options{MaxOpenConns: poolSize})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() }) // runs before the drop (LIFO)
	_, _, dsn, err := dbconn.ParseURL(osloURL(cfg, name))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return db, dsn
}

// RawMySQLURL is a RawMySQL database as the [database] connection
// operators write, for tests that configure arca processes.
func RawMySQLURL(t testing.TB) string {
	t.Helper()
	_, dsn := RawMySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return osloURL(cfg, cfg.DBName)
}

// osloURL spells the server config as the [database] connection operators
// write, so tests go through the production parser.
func osloURL(cfg *mysql.Config, dbName string) string {
	u := url.URL{Scheme: "mysql+pymysql", Path: "/" + dbName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	if cfg.Net == "unix" {
		u.RawQuery = url.Values{"unix_socket": {cfg.Addr}}.Encode()
	} else {
		u.Host = cfg.Addr
	}
	return u.String()
}

var (
	serverOnce sync.Once
	serverDB   *sql.DB
	serverCfg  *mysql.Config
	serverErr  error
)

// server connects once per test binary to the server (no database
// selected) and remembers a failure, so that an absent server costs one
// timeout, not one per test.
func server(t testing.TB) (*sql.DB, *mysql.Config) {
	t.Helper()
	serverOnce.Do(func() {
		dsn := os.Getenv("ARCA_TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = DefaultMySQLDSN
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			serverErr = fmt.Errorf("ARCA_TEST_MYSQL_DSN is not a go-sql-driver DSN: %w", err)
			return
		}
		admin := cfg.Clone()
		admin.DBName = ""
		admin.Timeout = 5 * time.Second
		connector, err := mysql.NewConnector(admin)
		if err != nil {
			serverErr = err
			return
		}
		db := sql.OpenDB(connector)
		db.SetMaxOpenConns(4)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			serverErr = fmt.Errorf("MariaDB/MySQL at %s (%s) is not reachable: %w", cfg.Addr, cfg.Net, err)
			return
		}
		serverDB, serverCfg = db, cfg
	})
	if serverErr != nil {
		StackMissing(t, fmt.Sprintf("%v (or point ARCA_TEST_MYSQL_DSN at a server)", serverErr))
	}
	return serverDB, serverCfg
}

func migrate(t testing.TB, db *sql.DB, dialect dbconn.Dialect) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db, dialect); err != nil {
		t.Fatalf("testenv: migrating %s: %v", dialect, err)
	}
}
