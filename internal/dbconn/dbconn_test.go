package dbconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"
)

func TestParseURLMySQL(t *testing.T) {
	tests := []struct {
		url                  string
		user, pass, net      string
		addr, db             string
		timeout, readTimeout time.Duration
	}{
		{url: "mysql+pymysql://arca:s3cret@db.example.org:3307/arca?charset=utf8",
			user: "arca", pass: "s3cret", net: "tcp", addr: "db.example.org:3307", db: "arca"},
		{url: "mysql://root@127.0.0.1/barbican",
			user: "root", net: "tcp", addr: "127.0.0.1:3306", db: "barbican"},
		{url: "mysql+mysqldb://u:p@[::1]:3306/d?charset=utf8mb4&plugin=dbcounter",
			user: "u", pass: "p", net: "tcp", addr: "[::1]:3306", db: "d"},
		{url: "MySQL+PyMySQL://u:p%40ss%2Fw%3Ard@h/d",
			user: "u", pass: "p@ss/w:rd", net: "tcp", addr: "h:3306", db: "d"},
		{url: "mysql+pymysql://u:p@/arca?unix_socket=/run/mysqld/mysqld.sock",
			user: "u", pass: "p", net: "unix", addr: "/run/mysqld/mysqld.sock", db: "arca"},
		{url: "mysql+pymysql://u@/arca",
			user: "u", net: "tcp", addr: "localhost:3306", db: "arca"},
		{url: "mysql://u:p@h/d?connect_timeout=3&read_timeout=7",
			user: "u", pass: "p", net: "tcp", addr: "h:3306", db: "d", timeout: 3 * time.Second, readTimeout: 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			dialect, driver, dsn, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if dialect != MySQL || driver != "mysql" {
				t.Fatalf("dialect %q driver %q", dialect, driver)
			}
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatalf("DSN %q does not parse back: %v", dsn, err)
			}
			if cfg.User != tt.user || cfg.Passwd != tt.pass || cfg.Net != tt.net || cfg.Addr != tt.addr || cfg.DBName != tt.db {
				t.Errorf("got user=%q pass=%q net=%q addr=%q db=%q", cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName)
			}
			if !cfg.ParseTime || cfg.Loc != time.UTC || !cfg.InterpolateParams {
				t.Errorf("parseTime=%v loc=%v interpolate=%v", cfg.ParseTime, cfg.Loc, cfg.InterpolateParams)
			}
			if !strings.HasPrefix(cfg.Collation, "utf8mb4") || !strings.Contains(dsn, "charset=utf8mb4") {
				t.Errorf("collation %q, dsn %q", cfg.Collation, dsn)
			}
			if cfg.Params["time_zone"] != "'+00:00'" {
				t.Errorf("time_zone %q", cfg.Params["time_zone"])
			}
			wantTimeout, wantRead := tt.timeout, tt.readTimeout
			if wantTimeout == 0 {
				wantTimeout = mysqlDialTimeout
			}
			if wantRead == 0 {
				wantRead = mysqlReadTimeout
			}
			if cfg.Timeout != wantTimeout || cfg.ReadTimeout != wantRead {
				t.Errorf("timeouts %v %v", cfg.Timeout, cfg.ReadTimeout)
			}
		})
	}
}

func TestParseURLSQLite(t *testing.T) {
	tests := []struct{ url, path string }{
		{"sqlite:///arca.db", "arca.db"},
		{"sqlite:///state/arca.db", "state/arca.db"},
		{"sqlite:////var/lib/arca/arca.db", "/var/lib/arca/arca.db"},
		{"sqlite://", ":memory:"},
		{"sqlite:///", ":memory:"},
		{"sqlite:///:memory:", ":memory:"},
		{"sqlite:////tmp/with%20space.db", "/tmp/with space.db"},
		{"sqlite:///x.db?check_same_thread=false", "x.db"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			dialect, driver, dsn, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if dialect != SQLite || driver != "sqlite" {
				t.Fatalf("dialect %q driver %q", dialect, driver)
			}
			path, query, _ := strings.Cut(dsn, "?")
			if path != tt.path {
				t.Errorf("path %q, want %q", path, tt.path)
			}
			for _, want := range []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "_txlock=immediate"} {
				if !strings.Contains(query, want) {
					t.Errorf("DSN %q lacks %s", dsn, want)
				}
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	const pw = "Hunter2Secret"
	tests := []struct{ name, url, want string }{
		{"no scheme", "arca.db", "expected dialect://"},
		{"postgres", "postgresql://u:" + pw + "@h/d", "unsupported dialect"},
		{"no database", "mysql+pymysql://u:" + pw + "@h", "one database"},
		{"nested path", "mysql+pymysql://u:" + pw + "@h/a/b", "one database"},
		{"bad port", "mysql+pymysql://u:" + pw + "@h:99999/d", "invalid port"},
		{"bad escape", "mysql+pymysql://u:" + pw + "%zz@h/d", "not a valid URL"},
		{"space in host", "mysql+pymysql://u:" + pw + "@h st/d", "not a valid URL"},
		{"unknown param", "mysql+pymysql://u:" + pw + "@h/d?ssl_ca=/x", `"ssl_ca"`},
		{"latin1", "mysql+pymysql://u:" + pw + "@h/d?charset=latin1", "charset"},
		{"bad timeout", "mysql+pymysql://u:" + pw + "@h/d?read_timeout=soon", "read_timeout"},
		{"socket with @", "mysql+pymysql://u:" + pw + "@/d?unix_socket=@", "cannot express"},
		{"socket path with @", "mysql+pymysql://u:" + pw + "@/d?unix_socket=/run/a@b.sock", "cannot express"},
		{"sqlite with host", "sqlite://u:" + pw + "@host/x.db", "expected sqlite:///"},
		{"sqlite question mark", "sqlite:///a%3Fb.db", "must not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := ParseURL(tt.url)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("%v does not wrap ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error reveals the password: %q", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, raw := range []string{
		"mysql+pymysql://u:topsecret@h/d",
		"mysql+pymysql://u:top secret%zz@h/d",
		"top:secret@h/d",
	} {
		if got := Redact(raw); strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q", raw, got)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, dialect, err := Open(ctx, "sqlite:///"+filepath.Join(dir, "a.db"), Options{MaxOpenConns: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if dialect != SQLite {
		t.Fatalf("dialect %q", dialect)
	}
	if got := db.Stats().MaxOpenConnections; got != SQLiteMaxConns {
		t.Errorf("max open conns %d, want %d", got, SQLiteMaxConns)
	}
	var mode string
	var fk, busy int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || busy != 5000 {
		t.Errorf("journal_mode=%s foreign_keys=%d busy_timeout=%d", mode, fk, busy)
	}

	mem, _, err := Open(ctx, "sqlite://", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if got := mem.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("in-memory max open conns %d, want 1", got)
	}

	_, _, err = Open(ctx, "sqlite:///"+filepath.Join(dir, "missing", "a.db"), Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v", err)
	}
}

func TestOpenMySQLUnreachableHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on localhost refuses at once.
	_, _, err := Open(ctx, "mysql+pymysql://arca:VerySecretPw@127.0.0.1:1/arca", Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "VerySecretPw") {
		t.Errorf("error reveals the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error does not say where: %v", err)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"mysql+pymysql://arca:pw@localhost:3306/arca?charset=utf8",
		"mysql://u:p@/d?unix_socket=/run/mysqld/mysqld.sock",
		"mysql+mysqldb://u:p%25x@[::1]/d?connect_timeout=5",
		"sqlite:////var/lib/arca/arca.db",
		"sqlite:///rel.db",
		"sqlite://",
		"mysql://:@:/",
		"sqlite://%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		dialect, driver, dsn, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error %v does not wrap ErrInvalidURL", err)
			}
			// A password long enough to be recognisable must not leak,
			// unless it also appears elsewhere in the URL.
			if i := strings.Index(raw, "://"); i >= 0 {
				rest := raw[i+3:]
				if at := strings.LastIndex(rest, "@"); at >= 0 {
					if _, pw, ok := strings.Cut(rest[:at], ":"); ok && len(pw) >= 8 &&
						strings.Count(raw, pw) == 1 && strings.Contains(err.Error(), pw) {
						t.Fatalf("error %q reveals password %q", err, pw)
					}
				}
			}
			return
		}
		switch dialect {
		case MySQL:
			if driver != "mysql" {
				t.Fatalf("driver %q", driver)
			}
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatalf("DSN %q of %q does not parse: %v", dsn, raw, err)
			}
			if cfg.DBName == "" || !cfg.ParseTime {
				t.Fatalf("DSN %q of %q: %+v", dsn, raw, cfg)
			}
		case SQLite:
			path, _, ok := strings.Cut(dsn, "?")
			if driver != "sqlite" || !ok || path == "" {
				t.Fatalf("DSN %q of %q", dsn, raw)
			}
		default:
			t.Fatalf("dialect %q", dialect)
		}
	})
}

func TestRouteDriverLog(t *testing.T) {
	// A "server" that sends half a packet header and hangs up: the driver
	// logs the unexpected EOF before it reports ErrInvalidConn.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte{0x4a, 0x00})
			_ = c.Close()
		}
	}()

	var buf syncBuffer
	RouteDriverLog(zerolog.New(&buf))
	t.Cleanup(func() { _ = mysql.SetLogger(log.New(os.Stderr, "[mysql] ", log.Ldate|log.Ltime)) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := Open(ctx, "mysql+pymysql://arca:Hunter2Secret@"+ln.Addr().String()+"/arca", Options{}); err == nil {
		t.Fatal("a server that hangs up mid-handshake was accepted")
	}

	first, _, _ := strings.Cut(buf.String(), "\n")
	var line struct{ Level, Component, Message string }
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("the driver's message is not a structured log line: %q: %v", buf.String(), err)
	}
	if line.Level != "warn" || line.Component != "mysql-driver" || !strings.Contains(line.Message, "EOF") {
		t.Errorf("driver log line %+v", line)
	}
	if strings.Contains(buf.String(), "Hunter2Secret") {
		t.Errorf("driver log reveals the password: %s", buf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHasPassword: which connection URLs hold a password (arca-api and
// arca-manage refuse such a URL in a file others can read).
func TestHasPassword(t *testing.T) {
	for raw, want := range map[string]bool{
		"mysql+pymysql://arca:s3cret@127.0.0.1/arca":  true,
		"mysql+pymysql://arca:p@ss:w/rd@db:3306/arca": true,
		"mysql+pymysql://arca@127.0.0.1/arca":         false,
		"mysql+pymysql://arca:@127.0.0.1/arca":        false,
		"mysql+pymysql://127.0.0.1/arca":              false,
		"sqlite:////var/lib/arca/arca.sqlite":         false,
		"sqlite:///rel/at@sign.db":                    false,
		"":                                            false,
		"mysql+pymysql://arca:s3cret@/arca?unix_socket=/run/mysqld/mysqld.sock": true,
	} {
		if got := HasPassword(raw); got != want {
			t.Errorf("HasPassword(%q) = %v, want %v", Redact(raw), got, want)
		}
	}
}

func TestDialectCheck(t *testing.T) {
	for _, d := range []Dialect{MySQL, SQLite} {
		if err := d.Check(); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	if err := Dialect("postgres").Check(); err == nil || !strings.Contains(err.Error(), `"postgres"`) {
		t.Errorf("postgres: %v, want an error naming it", err)
	}
}
