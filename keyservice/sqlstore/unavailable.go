package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

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
// every other error unchanged. A statement that failed after ctx's deadline
// passed is an outage too, whatever the driver made of the interruption.
func unavailable(ctx context.Context, err error) error {
	if err == nil || keyservice.StatusOf(err) != 500 {
		return err
	}
	if !Unavailable(err) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", keyservice.ErrUnavailable, err)
}

// outageStore is what New returns: the Store with its outages classified.
// Every method of keyservice.Store is listed here; a method added to *Store
// later is promoted unchanged until it is listed too.
type outageStore struct{ *Store }

func (o outageStore) Ping(ctx context.Context) error { return unavailable(ctx, o.Store.Ping(ctx)) }

func (o outageStore) GetProjectKEK(ctx context.Context, projectID string) (keyservice.ProjectKEK, error) {
	k, err := o.Store.GetProjectKEK(ctx, projectID)
	return k, unavailable(ctx, err)
}

func (o outageStore) CreateProjectKEK(ctx context.Context, kek keyservice.ProjectKEK) error {
	return unavailable(ctx, o.Store.CreateProjectKEK(ctx, kek))
}

func (o outageStore) ReplaceProjectKEK(ctx context.Context, kek keyservice.ProjectKEK, oldMasterKeyID string) error {
	return unavailable(ctx, o.Store.ReplaceProjectKEK(ctx, kek, oldMasterKeyID))
}

func (o outageStore) ListProjectKEKs(ctx context.Context, after string, limit int) ([]keyservice.ProjectKEK, error) {
	l, err := o.Store.ListProjectKEKs(ctx, after, limit)
	return l, unavailable(ctx, err)
}

func (o outageStore) CreateSecret(ctx context.Context, s *keyservice.Secret) error {
	return unavailable(ctx, o.Store.CreateSecret(ctx, s))
}

func (o outageStore) GetSecret(ctx context.Context, id string) (*keyservice.Secret, error) {
	s, err := o.Store.GetSecret(ctx, id)
	return s, unavailable(ctx, err)
}

func (o outageStore) SetSecretPayload(ctx context.Context, id, contentType string, sealed []byte, updated time.Time) error {
	return unavailable(ctx, o.Store.SetSecretPayload(ctx, id, contentType, sealed, updated))
}

func (o outageStore) DeleteSecret(ctx context.Context, id string) error {
	return unavailable(ctx, o.Store.DeleteSecret(ctx, id))
}

func (o outageStore) ListSecrets(ctx context.Context, f keyservice.SecretFilter) ([]*keyservice.Secret, int, error) {
	l, n, err := o.Store.ListSecrets(ctx, f)
	return l, n, unavailable(ctx, err)
}

func (o outageStore) GetSecretMetadata(ctx context.Context, secretID string) (map[string]string, error) {
	md, err := o.Store.GetSecretMetadata(ctx, secretID)
	return md, unavailable(ctx, err)
}

func (o outageStore) ReplaceSecretMetadata(ctx context.Context, secretID string, md map[string]string) error {
	return unavailable(ctx, o.Store.ReplaceSecretMetadata(ctx, secretID, md))
}

func (o outageStore) AddSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	return unavailable(ctx, o.Store.AddSecretMetadatum(ctx, secretID, key, value))
}

func (o outageStore) UpdateSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	return unavailable(ctx, o.Store.UpdateSecretMetadatum(ctx, secretID, key, value))
}

func (o outageStore) DeleteSecretMetadatum(ctx context.Context, secretID, key string) error {
	return unavailable(ctx, o.Store.DeleteSecretMetadatum(ctx, secretID, key))
}

func (o outageStore) CreateOrder(ctx context.Context, ord *keyservice.Order) error {
	return unavailable(ctx, o.Store.CreateOrder(ctx, ord))
}

func (o outageStore) UpdateOrder(ctx context.Context, ord *keyservice.Order) error {
	return unavailable(ctx, o.Store.UpdateOrder(ctx, ord))
}

func (o outageStore) GetOrder(ctx context.Context, id string) (*keyservice.Order, error) {
	ord, err := o.Store.GetOrder(ctx, id)
	return ord, unavailable(ctx, err)
}

func (o outageStore) ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.Order, int, error) {
	l, n, err := o.Store.ListOrders(ctx, projectID, limit, offset)
	return l, n, unavailable(ctx, err)
}

func (o outageStore) DeleteOrder(ctx context.Context, id string) error {
	return unavailable(ctx, o.Store.DeleteOrder(ctx, id))
}

func (o outageStore) CreateProjectKey(ctx context.Context, k *keyservice.ProjectKey) error {
	return unavailable(ctx, o.Store.CreateProjectKey(ctx, k))
}

func (o outageStore) GetActiveProjectKey(ctx context.Context, projectID string) (*keyservice.ProjectKey, error) {
	k, err := o.Store.GetActiveProjectKey(ctx, projectID)
	return k, unavailable(ctx, err)
}

func (o outageStore) GetProjectKey(ctx context.Context, id string) (*keyservice.ProjectKey, error) {
	k, err := o.Store.GetProjectKey(ctx, id)
	return k, unavailable(ctx, err)
}

func (o outageStore) ListProjectKeys(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.ProjectKey, int, error) {
	l, n, err := o.Store.ListProjectKeys(ctx, projectID, limit, offset)
	return l, n, unavailable(ctx, err)
}

func (o outageStore) RotateProjectKey(ctx context.Context, oldID string, next *keyservice.ProjectKey) error {
	return unavailable(ctx, o.Store.RotateProjectKey(ctx, oldID, next))
}

func (o outageStore) DestroyProjectKey(ctx context.Context, id string, force bool, now time.Time) error {
	return unavailable(ctx, o.Store.DestroyProjectKey(ctx, id, force, now))
}

func (o outageStore) AppendKeyAudit(ctx context.Context, recs []keyservice.KeyAuditRecord) error {
	return unavailable(ctx, o.Store.AppendKeyAudit(ctx, recs))
}

func (o outageStore) ListKeyAudit(ctx context.Context, f keyservice.KeyAuditFilter) ([]keyservice.KeyAuditRecord, error) {
	l, err := o.Store.ListKeyAudit(ctx, f)
	return l, unavailable(ctx, err)
}

var _ keyservice.Store = outageStore{}
