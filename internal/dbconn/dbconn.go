package dbconn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names one of the SQL dialects Arca runs on, as ParseURL and Open
// return it and the migrations and sqlstore packages take it. Its value is
// also the name of the dialect's directory of migration files.
type Dialect string

// The dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// Check returns an error for a value that is not one of the dialects: a
// caller converting a string gets an error, not a panic, for a typo.
func (d Dialect) Check() error {
	switch d {
	case MySQL, SQLite:
		return nil
	}
	return fmt.Errorf("unknown database dialect %q (want %q or %q)", string(d), MySQL, SQLite)
}

// Driver names registered with database/sql.
const (
	mysqlDriver  = "mysql"
	sqliteDriver = "sqlite"
)

// Connection pool defaults for MySQL. ConnMaxLifetime stays well below
// MariaDB's default wait_timeout (8h) and the idle timeouts of the load
// balancers Galera clusters usually sit behind. DefaultMaxOpenConns stays
// 32 on purpose: with MariaDB on the same two cores, pools of 4 and 8 were
// measured against 16 and 32 (issue 21, docs/benchmarks.md) and lost on
// every count for secret stores (a third to a half of the throughput, more
// CPU per request in arca-api and in MariaDB, likely because its group
// commit then gathers fewer transactions per log flush) and gained nothing
// for reads.
const (
	DefaultMaxOpenConns    = 32
	DefaultConnMaxLifetime = time.Hour
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// SQLiteMaxConns caps the pool of a file-backed SQLite database. SQLite
// serializes writers whatever the pool size, and in WAL mode a handful of
// connections is enough to let readers run beside the one writer; more only
// adds lock contention.
const SQLiteMaxConns = 4

// MySQL network timeouts. The read timeout bounds one query's wait for the
// server; the key service's queries are small, and migrations' DDL on an
// empty Arca schema is quick.
const (
	mysqlDialTimeout  = 10 * time.Second
	mysqlReadTimeout  = 60 * time.Second
	mysqlWriteTimeout = 60 * time.Second
)

// Options tunes the connection pool. Zero values take the defaults above.
// For SQLite the pool is capped at SQLiteMaxConns (1 for an in-memory
// database, which exists only as long as its single connection).
type Options struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

// ErrInvalidURL is wrapped by every error about a malformed or unsupported
// connection URL.
var ErrInvalidURL = errors.New("invalid database connection URL")

// mysqlSchemes are the SQLAlchemy dialect+driver spellings oslo.db accepts
// for MySQL; they all mean the same server to us.
var mysqlSchemes = map[string]bool{
	"mysql": true, "mysql+pymysql": true, "mysql+mysqldb": true, "mysql+mysqlconnector": true,
}

// ignoredMySQLParams are query parameters that make sense only to Python
// drivers or oslo.db plugins (DevStack adds plugin=dbcounter) and do not
// change how we talk to the server.
var ignoredMySQLParams = map[string]bool{"plugin": true}

// ParseURL translates an oslo-style connection URL into a database/sql
// driver name and DSN. dialect is MySQL or SQLite.
//
// MySQL URLs (mysql://, mysql+pymysql://, mysql+mysqldb://) accept the
// query parameters charset (utf8 or utf8mb4: the connection always uses
// utf8mb4), unix_socket, connect_timeout, read_timeout and write_timeout
// (seconds); plugin is ignored; anything else is an error rather than a
// silently dropped setting.
//
// SQLite URLs follow SQLAlchemy: sqlite:///rel/path.db is relative to the
// working directory, sqlite:////abs/path.db absolute, sqlite:// (or
// sqlite:///:memory:) an in-memory database. Query parameters are ignored.
func ParseURL(raw string) (dialect Dialect, driverName, dsn string, err error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", "", fmt.Errorf("%w %s: expected dialect://..., e.g. mysql+pymysql://user:password@host/arca or sqlite:////var/lib/arca/arca.db", ErrInvalidURL, Redact(raw))
	}
	scheme = strings.ToLower(scheme)
	switch {
	case mysqlSchemes[scheme]:
		dsn, err = mysqlDSN(raw)
		return MySQL, mysqlDriver, dsn, err
	case scheme == "sqlite" || scheme == "sqlite+pysqlite":
		dsn, err = sqliteDSN(raw)
		return SQLite, sqliteDriver, dsn, err
	default:
		return "", "", "", fmt.Errorf("%w %s: unsupported dialect %q (use mysql+pymysql:// or sqlite://)", ErrInvalidURL, Redact(raw), scheme)
	}
}

// parse wraps url.Parse so that its error, which quotes the whole URL
// (password included), never escapes.
func parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not a valid URL (percent-encode special characters of the user name and password)", ErrInvalidURL, Redact(raw))
	}
	return u, nil
}

// mysqlDSN translates a mysql:// URL into go-sql-driver's DSN: the address
// and credentials from the URL, the settings every Arca process shares, then
// the query parameters, and a check that the DSN reads back as meant.
func mysqlDSN(raw string) (string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidURL, Redact(raw), fmt.Sprintf(format, args...))
	}
	u, err := parse(raw)
	if err != nil {
		return "", err
	}
	cfg, err := mysqlBaseConfig(u, bad)
	if err != nil {
		return "", err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", bad("malformed query string")
	}
	for key, vals := range q {
		if err := applyMySQLParam(cfg, key, vals[len(vals)-1], bad); err != nil {
			return "", err
		}
	}
	// The driver's DSN syntax has no escaping for the address or the
	// database name: a socket path or name holding '@', say,
	// would be read back as something else. Refuse what does not survive
	// the round trip instead of connecting somewhere unintended.
	dsn := cfg.FormatDSN()
	back, err := mysql.ParseDSN(dsn)
	if err != nil || back.Net != cfg.Net || back.Addr != cfg.Addr || back.DBName != cfg.DBName ||
		back.User != cfg.User || back.Passwd != cfg.Passwd {
		return "", bad("the host, unix_socket or database name holds characters the MySQL driver cannot express in its DSN (such as '@' in a socket path)")
	}
	return dsn, nil
}

// badURL builds the error for a malformed URL; the URL in it is redacted.
type badURL func(format string, args ...any) error

// mysqlBaseConfig reads the user, password, database and address of u and
// sets the connection settings every Arca process shares.
func mysqlBaseConfig(u *url.URL, bad badURL) (*mysql.Config, error) {
	if u.Opaque != "" {
		return nil, bad("expected mysql+pymysql://user:password@host[:port]/database")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, bad("the path must name one database, e.g. /arca")
	}
	cfg.Net, cfg.Addr = "tcp", "localhost:3306"
	if host := u.Hostname(); host != "" {
		port := u.Port()
		if port == "" {
			port = "3306"
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, bad("invalid port %s", quote(port))
		}
		cfg.Addr = net.JoinHostPort(host, port)
	} else if u.Port() != "" {
		return nil, bad("a port without a host")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = mysqlDialTimeout, mysqlReadTimeout, mysqlWriteTimeout
	// Placeholders are interpolated client-side: one round trip per query
	// instead of prepare/execute/close. The driver does it safely for
	// utf8mb4 (it refuses for charsets where escaping is ambiguous).
	cfg.InterpolateParams = true
	// An UPDATE reports the rows it matched, not only those it changed, as
	// SQLite does: conditional updates that rewrite a value with itself
	// must not look like misses.
	cfg.ClientFoundRows = true
	if err := cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_unicode_ci")); err != nil {
		return nil, bad("%v", err)
	}
	// Sessions compute in UTC and reject what would be silently truncated
	// or zeroed (an over-long name, an invalid date).
	cfg.Params = map[string]string{
		"time_zone": "'+00:00'",
		"sql_mode":  "'TRADITIONAL'",
	}
	return cfg, nil
}

// applyMySQLParam applies one query parameter of the URL (its last value).
func applyMySQLParam(cfg *mysql.Config, key, val string, bad badURL) error {
	switch {
	case key == "charset":
		if v := strings.ToLower(val); v != "utf8" && v != "utf8mb4" && v != "utf8mb3" {
			return bad("charset %s: only utf8/utf8mb4 are supported (Arca always uses utf8mb4)", quote(val))
		}
	case key == "unix_socket":
		if val == "" {
			return bad("empty unix_socket")
		}
		cfg.Net, cfg.Addr = "unix", val
	case key == "connect_timeout" || key == "read_timeout" || key == "write_timeout":
		secs, err := strconv.Atoi(val)
		if err != nil || secs <= 0 || secs > 86400 {
			return bad("%s must be a number of seconds, got %s", key, quote(val))
		}
		d := time.Duration(secs) * time.Second
		switch key {
		case "connect_timeout":
			cfg.Timeout = d
		case "read_timeout":
			cfg.ReadTimeout = d
		default:
			cfg.WriteTimeout = d
		}
	case ignoredMySQLParams[key]:
	default:
		return bad("unsupported query parameter %s", quote(key))
	}
	return nil
}

// sqlitePragmas apply to every connection of the pool: WAL lets readers run
// beside a writer, busy_timeout makes a writer wait for the lock instead of
// failing, foreign keys are off by default in SQLite, and NORMAL
// synchronisation is durable in WAL mode except against power loss of the
// last transactions. _txlock=immediate takes the write lock at BEGIN, so
// two read-then-write transactions cannot deadlock on lock upgrade (which
// busy_timeout cannot resolve).
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// sqliteMemory is the DSN path of an in-memory database.
const sqliteMemory = ":memory:"

func sqliteDSN(raw string) (string, error) {
	u, err := parse(raw)
	if err != nil {
		return "", err
	}
	if u.Opaque != "" || u.User != nil || u.Host != "" {
		return "", fmt.Errorf("%w %s: expected sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite:// (in memory)", ErrInvalidURL, Redact(raw))
	}
	path, err := sqlitePath(u, raw)
	if err != nil {
		return "", err
	}
	return path + "?" + sqlitePragmas, nil
}

// sqlitePath returns the file path of a parsed sqlite URL: the URL path
// minus the one slash that separates it from the (empty) host.
func sqlitePath(u *url.URL, raw string) (string, error) {
	path := strings.TrimPrefix(u.Path, "/")
	if path == "" || path == sqliteMemory {
		return sqliteMemory, nil
	}
	// modernc.org/sqlite splits its DSN at the first '?', and a "file:"
	// prefix would turn the path into a URI with its own rules.
	if strings.ContainsAny(path, "?\x00") || strings.HasPrefix(path, "file:") {
		return "", fmt.Errorf(`%w %s: the file name must not start with "file:" nor contain '?' or NUL`, ErrInvalidURL, Redact(raw))
	}
	return path, nil
}

// Redact returns the URL with its password replaced by "xxxxx", for logs
// and errors. It does not rely on URL parsing: an unencoded '#', '/' or '@'
// in a password would make a parser see a fragment or a host where the
// operator meant a password, so everything between the user name and the
// last '@' is hidden.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(URL without dialect://)"
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if hasPassword {
		user += ":xxxxx"
	}
	return scheme + "://" + user + "@" + rest[at+1:]
}

// HasPassword reports whether a connection URL holds a non-empty password
// (mysql+pymysql://user:PASSWORD@host/db), with Redact's reading of where
// it is: everything between the user name and the last '@'.
func HasPassword(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return false
	}
	_, password, _ := strings.Cut(rest[:at], ":")
	return password != ""
}

// quote quotes a value from the URL for an error message if it cannot
// hold a piece of the password (which needs ':' before and '@' after it).
func quote(s string) string {
	if len(s) > 64 || strings.ContainsAny(s, ":@") {
		return "(value not shown)"
	}
	return strconv.Quote(s)
}

// Open parses the URL, opens the database with the pool configured from
// opts and checks that it answers within ctx. It returns the dialect.
func Open(ctx context.Context, raw string, opts Options) (*sql.DB, Dialect, error) {
	dialect, driver, dsn, err := ParseURL(raw)
	if err != nil {
		return nil, "", err
	}
	memory := false
	if dialect == SQLite {
		path, _, _ := strings.Cut(dsn, "?")
		memory = path == sqliteMemory
		if !memory {
			if err := checkDir(path); err != nil {
				return nil, "", fmt.Errorf("sqlite database %s: %w", path, err)
			}
			if err := createPrivate(path); err != nil {
				return nil, "", fmt.Errorf("sqlite database %s: %w", path, err)
			}
			if err := checkPrivate(path); err != nil {
				return nil, "", fmt.Errorf("sqlite database: %w", err)
			}
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("opening %s database %s: %w", dialect, Redact(raw), err)
	}
	configurePool(db, dialect, memory, opts)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, "", fmt.Errorf("connecting to %s database %s: %w", dialect, Redact(raw), err)
	}
	return db, dialect, nil
}

func configurePool(db *sql.DB, dialect Dialect, memory bool, opts Options) {
	maxOpen := opts.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenConns
	}
	lifetime, idleTime := opts.ConnMaxLifetime, opts.ConnMaxIdleTime
	if lifetime <= 0 {
		lifetime = DefaultConnMaxLifetime
	}
	if idleTime <= 0 {
		idleTime = DefaultConnMaxIdleTime
	}
	if dialect == SQLite {
		maxOpen = min(maxOpen, SQLiteMaxConns)
		if memory {
			// Every connection to ":memory:" is a database of its own: keep
			// exactly one, forever.
			maxOpen, lifetime, idleTime = 1, 0, 0
		}
	}
	maxIdle := opts.MaxIdleConns
	if maxIdle <= 0 || maxIdle > maxOpen {
		maxIdle = maxOpen
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxLifetime(lifetime)
	db.SetConnMaxIdleTime(idleTime)
}

// createPrivate creates the SQLite database file with mode 0600 when it
// does not exist yet. SQLite itself would create it 0644 (less the umask),
// readable by every local user, and it creates the -wal and -shm files
// with the mode of the database file, so they follow. An empty file is an
// empty database to SQLite. An existing file keeps the mode it has, and is
// refused by checkPrivate if that lets group or others in.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, os.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("creating it with mode 0600: %w", err)
	}
	return f.Close()
}

// checkPrivate refuses an existing SQLite database, or its -wal or -shm
// file, that group or others can read or write. Refused rather than
// warned about: the secrets in it are sealed, but not their names,
// projects and ACLs, nor the audit trail of who read which key, and write
// access lets a local account grant itself a secret through an ACL row or
// erase its traces. The fix is one chmod.
func checkPrivate(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking the mode of %s: %w", p, err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			return fmt.Errorf("%s has mode %04o: group and others must have no access to it "+
				"(it holds secret metadata and the key audit trail); run \"chmod 600 %s*\" as the user arca-api runs as", p, perm, path)
		}
	}
	return nil
}

// checkDir turns SQLite's bare "unable to open database file" into a
// message that says what is missing.
func checkDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it or fix [database] connection", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
