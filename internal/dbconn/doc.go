// Package dbconn turns the oslo-style "[database] connection" URL that
// OpenStack operators already know (mysql+pymysql://user:pass@host/db,
// sqlite:///path) into a database/sql handle for Arca's two dialects:
// MySQL/MariaDB through github.com/go-sql-driver/mysql and SQLite through
// the pure-Go modernc.org/sqlite.
//
// It owns the connection settings every Arca process must agree on (UTC
// times parsed as time.Time, utf8mb4, SQLite in WAL mode with foreign keys
// and a busy timeout) so that no caller can open the database differently.
// It does not migrate the schema (package migrations) and knows nothing of
// Arca's tables (package sqlstore).
//
// Errors never contain the password: the URL is echoed only in its
// redacted form.
package dbconn
