package sqlstore

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	"opendev.org/x/arca/keyservice"
)

// SQLite extended result codes (stable parts of SQLite's C API).
const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// MySQL server error numbers.
const (
	mysqlDuplicateKey      = 1062
	mysqlDataTooLong       = 1406
	mysqlNoReferencedRow   = 1452
	mysqlDeadlock          = 1213
	mysqlNoReferencedRowV1 = 1216
)

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlDuplicateKey
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintPrimaryKey || se.Code() == sqliteConstraintUnique
	}
	return false
}

func isMissingParent(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlNoReferencedRow || me.Number == mysqlNoReferencedRowV1
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintForeignKey
	}
	return false
}

// isDeadlock reports a Galera certification failure or InnoDB deadlock:
// another transaction touching the same keys won.
func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDeadlock
}

// classify wraps err with context, turning the database's "too long" into
// ErrInvalid (SQLite does not enforce lengths; the service validates them,
// this is the backstop).
func classify(err error, format string, args ...any) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == mysqlDataTooLong {
		err = fmt.Errorf("%w: %w", keyservice.ErrInvalid, err)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
