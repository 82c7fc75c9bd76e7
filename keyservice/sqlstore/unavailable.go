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

// Store is the SQL implementation of keyservice.Store. Database outages come
// back as keyservice.ErrUnavailable (HTTP 503), wrapped around the driver's
// error; other errors pass unchanged.
//
// Every method wraps the matching method of the unexported store. Store holds
// it in a named field rather than embedding it, so that a keyservice.Store
// method added to store without a wrapper here fails to compile (the
// assertion below) instead of silently answering 500 during an outage.
type Store struct{ s *store }

var _ keyservice.Store = (*Store)(nil)

func (o *Store) Ping(ctx context.Context) error { return unavailable(ctx, o.s.Ping(ctx)) }

func (o *Store) GetProjectKEK(ctx context.Context, projectID string) (keyservice.ProjectKEK, error) {
	k, err := o.s.GetProjectKEK(ctx, projectID)
	return k, unavailable(ctx, err)
}

func (o *Store) CreateProjectKEK(ctx context.Context, kek keyservice.ProjectKEK) error {
	return unavailable(ctx, o.s.CreateProjectKEK(ctx, kek))
}

func (o *Store) ReplaceProjectKEK(ctx context.Context, kek keyservice.ProjectKEK, oldMasterKeyID string) error {
	return unavailable(ctx, o.s.ReplaceProjectKEK(ctx, kek, oldMasterKeyID))
}

func (o *Store) ListProjectKEKs(ctx context.Context, after string, limit int) ([]keyservice.ProjectKEK, error) {
	l, err := o.s.ListProjectKEKs(ctx, after, limit)
	return l, unavailable(ctx, err)
}

func (o *Store) CreateSecret(ctx context.Context, s *keyservice.Secret) error {
	return unavailable(ctx, o.s.CreateSecret(ctx, s))
}

func (o *Store) GetSecret(ctx context.Context, id string) (*keyservice.Secret, error) {
	s, err := o.s.GetSecret(ctx, id)
	return s, unavailable(ctx, err)
}

func (o *Store) SetSecretPayload(ctx context.Context, id, contentType string, sealed []byte, updated time.Time) error {
	return unavailable(ctx, o.s.SetSecretPayload(ctx, id, contentType, sealed, updated))
}

func (o *Store) DeleteSecret(ctx context.Context, id string) error {
	return unavailable(ctx, o.s.DeleteSecret(ctx, id))
}

func (o *Store) ListSecrets(ctx context.Context, f keyservice.SecretFilter) ([]*keyservice.Secret, int, error) {
	l, n, err := o.s.ListSecrets(ctx, f)
	return l, n, unavailable(ctx, err)
}

func (o *Store) GetSecretMetadata(ctx context.Context, secretID string) (map[string]string, error) {
	md, err := o.s.GetSecretMetadata(ctx, secretID)
	return md, unavailable(ctx, err)
}

func (o *Store) ReplaceSecretMetadata(ctx context.Context, secretID string, md map[string]string) error {
	return unavailable(ctx, o.s.ReplaceSecretMetadata(ctx, secretID, md))
}

func (o *Store) AddSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	return unavailable(ctx, o.s.AddSecretMetadatum(ctx, secretID, key, value))
}

func (o *Store) UpdateSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	return unavailable(ctx, o.s.UpdateSecretMetadatum(ctx, secretID, key, value))
}

func (o *Store) DeleteSecretMetadatum(ctx context.Context, secretID, key string) error {
	return unavailable(ctx, o.s.DeleteSecretMetadatum(ctx, secretID, key))
}

func (o *Store) CreateOrder(ctx context.Context, ord *keyservice.Order) error {
	return unavailable(ctx, o.s.CreateOrder(ctx, ord))
}

func (o *Store) UpdateOrder(ctx context.Context, ord *keyservice.Order) error {
	return unavailable(ctx, o.s.UpdateOrder(ctx, ord))
}

func (o *Store) GetOrder(ctx context.Context, id string) (*keyservice.Order, error) {
	ord, err := o.s.GetOrder(ctx, id)
	return ord, unavailable(ctx, err)
}

func (o *Store) ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.Order, int, error) {
	l, n, err := o.s.ListOrders(ctx, projectID, limit, offset)
	return l, n, unavailable(ctx, err)
}

func (o *Store) DeleteOrder(ctx context.Context, id string) error {
	return unavailable(ctx, o.s.DeleteOrder(ctx, id))
}

func (o *Store) CreateProjectKey(ctx context.Context, k *keyservice.ProjectKey) error {
	return unavailable(ctx, o.s.CreateProjectKey(ctx, k))
}

func (o *Store) GetActiveProjectKey(ctx context.Context, projectID string) (*keyservice.ProjectKey, error) {
	k, err := o.s.GetActiveProjectKey(ctx, projectID)
	return k, unavailable(ctx, err)
}

func (o *Store) GetProjectKey(ctx context.Context, id string) (*keyservice.ProjectKey, error) {
	k, err := o.s.GetProjectKey(ctx, id)
	return k, unavailable(ctx, err)
}

func (o *Store) ListProjectKeys(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.ProjectKey, int, error) {
	l, n, err := o.s.ListProjectKeys(ctx, projectID, limit, offset)
	return l, n, unavailable(ctx, err)
}

func (o *Store) RotateProjectKey(ctx context.Context, oldID string, next *keyservice.ProjectKey) error {
	return unavailable(ctx, o.s.RotateProjectKey(ctx, oldID, next))
}

func (o *Store) DestroyProjectKey(ctx context.Context, id string, force bool, deactivatedBy, now time.Time) error {
	return unavailable(ctx, o.s.DestroyProjectKey(ctx, id, force, deactivatedBy, now))
}

func (o *Store) AppendKeyAudit(ctx context.Context, recs []keyservice.KeyAuditRecord) error {
	return unavailable(ctx, o.s.AppendKeyAudit(ctx, recs))
}

func (o *Store) ListKeyAudit(ctx context.Context, f keyservice.KeyAuditFilter) ([]keyservice.KeyAuditRecord, error) {
	l, err := o.s.ListKeyAudit(ctx, f)
	return l, unavailable(ctx, err)
}

func (o *Store) CreateContainer(ctx context.Context, c *keyservice.Container) error {
	return unavailable(ctx, o.s.CreateContainer(ctx, c))
}

func (o *Store) GetContainer(ctx context.Context, id string) (*keyservice.Container, error) {
	v, err := o.s.GetContainer(ctx, id)
	return v, unavailable(ctx, err)
}

func (o *Store) ListContainers(ctx context.Context, f keyservice.ContainerFilter) ([]*keyservice.Container, int, error) {
	v, n, err := o.s.ListContainers(ctx, f)
	return v, n, unavailable(ctx, err)
}

func (o *Store) DeleteContainer(ctx context.Context, id string) error {
	return unavailable(ctx, o.s.DeleteContainer(ctx, id))
}

func (o *Store) AddContainerSecret(ctx context.Context, containerID string, ref keyservice.ContainerSecret, updated time.Time) error {
	return unavailable(ctx, o.s.AddContainerSecret(ctx, containerID, ref, updated))
}

func (o *Store) RemoveContainerSecret(ctx context.Context, containerID string, ref keyservice.ContainerSecret, updated time.Time) error {
	return unavailable(ctx, o.s.RemoveContainerSecret(ctx, containerID, ref, updated))
}

func (o *Store) PutContainerConsumer(ctx context.Context, c *keyservice.ContainerConsumer) error {
	return unavailable(ctx, o.s.PutContainerConsumer(ctx, c))
}

func (o *Store) RemoveContainerConsumer(ctx context.Context, containerID, name, url string) error {
	return unavailable(ctx, o.s.RemoveContainerConsumer(ctx, containerID, name, url))
}

func (o *Store) ListContainerConsumers(ctx context.Context, containerID string, limit, offset int) ([]keyservice.ContainerConsumer, int, error) {
	v, n, err := o.s.ListContainerConsumers(ctx, containerID, limit, offset)
	return v, n, unavailable(ctx, err)
}

func (o *Store) GetACLs(ctx context.Context, kind, id string) ([]keyservice.ACL, error) {
	v, err := o.s.GetACLs(ctx, kind, id)
	return v, unavailable(ctx, err)
}

func (o *Store) ReplaceACLs(ctx context.Context, kind, id string, acls []keyservice.ACL) error {
	return unavailable(ctx, o.s.ReplaceACLs(ctx, kind, id, acls))
}

func (o *Store) PutSecretConsumer(ctx context.Context, c *keyservice.SecretConsumer) error {
	return unavailable(ctx, o.s.PutSecretConsumer(ctx, c))
}

func (o *Store) RemoveSecretConsumer(ctx context.Context, secretID, service, resourceType, resourceID string) error {
	return unavailable(ctx, o.s.RemoveSecretConsumer(ctx, secretID, service, resourceType, resourceID))
}

func (o *Store) ListSecretConsumers(ctx context.Context, secretID string, limit, offset int) ([]keyservice.SecretConsumer, int, error) {
	v, n, err := o.s.ListSecretConsumers(ctx, secretID, limit, offset)
	return v, n, unavailable(ctx, err)
}

func (o *Store) GetProjectQuotas(ctx context.Context, projectID string) (*keyservice.ProjectQuotas, error) {
	v, err := o.s.GetProjectQuotas(ctx, projectID)
	return v, unavailable(ctx, err)
}

func (o *Store) SetProjectQuotas(ctx context.Context, q *keyservice.ProjectQuotas) error {
	return unavailable(ctx, o.s.SetProjectQuotas(ctx, q))
}

func (o *Store) DeleteProjectQuotas(ctx context.Context, projectID string) error {
	return unavailable(ctx, o.s.DeleteProjectQuotas(ctx, projectID))
}

func (o *Store) ListProjectQuotas(ctx context.Context, limit, offset int) ([]*keyservice.ProjectQuotas, int, error) {
	v, n, err := o.s.ListProjectQuotas(ctx, limit, offset)
	return v, n, unavailable(ctx, err)
}

func (o *Store) CountResources(ctx context.Context, projectID, resource string, now time.Time) (int, error) {
	v, err := o.s.CountResources(ctx, projectID, resource, now)
	return v, unavailable(ctx, err)
}

func (o *Store) ScanKeyAudit(ctx context.Context, q keyservice.KeyAuditQuery) ([]keyservice.KeyAuditRecord, error) {
	v, err := o.s.ScanKeyAudit(ctx, q)
	return v, unavailable(ctx, err)
}
