package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"

	"opendev.org/x/arca/keyservice"
)

// Database outages. A database that cannot be reached, drops connections,
// is overloaded or times out is a condition the client should retry, not a
// bug: the store reports it as keyservice.ErrUnavailable (HTTP 503), wrapped
// around the driver's error so that logs keep the cause. Errors the store
// already classified (not found, conflict, invalid, ...) are left alone.

// MySQL/MariaDB error numbers that mean "the database is not available to
// us right now". 2002-2013 are client-side numbers that drivers and proxies
// (ProxySQL, MaxScale) also send.
var mysqlUnavailable = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN: shutdown in progress
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK (where the store did not turn it into a conflict)
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	2002: true, // CR_CONNECTION_ERROR
	2003: true, // CR_CONN_HOST_ERROR
	2006: true, // CR_SERVER_GONE_ERROR
	2013: true, // CR_SERVER_LOST
}

// SQLite primary result codes for a database that is locked or cannot be
// opened right now.
const (
	sqliteLocked   = 6
	sqliteCantOpen = 14
)

// Unavailable reports whether err means that the database could not be
// reached or did not answer in time (as opposed to a refused or broken
// statement): a connection refused, reset or timed out, a connection the
// driver found dead, too many connections, a lock wait timeout or deadlock,
// a busy SQLite database, or the request's deadline passing while waiting.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return mysqlUnavailable[me.Number]
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteCantOpen:
			return true
		}
	}
	return false
}

// unavailable wraps an outage in keyservice.ErrUnavailable and returns
// every other error unchanged. conn (conn.go) passes every error the
// database produces through it. A statement that failed after ctx's
// deadline passed is an outage too, whatever the driver made of the
// interruption; sql.ErrNoRows is an answer, never an outage.
func unavailable(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if !Unavailable(err) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", keyservice.ErrUnavailable, err)
}
