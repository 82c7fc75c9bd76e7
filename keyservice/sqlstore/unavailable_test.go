package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/sqlstore"
)

func TestUnavailableClassifies(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bad conn", fmt.Errorf("reading: %w", driver.ErrBadConn), true},
		{"invalid conn", mysql.ErrInvalidConn, true},
		{"conn done", sql.ErrConnDone, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"too many connections", &mysql.MySQLError{Number: 1040}, true},
		{"lock wait timeout", &mysql.MySQLError{Number: 1205}, true},
		{"deadlock", &mysql.MySQLError{Number: 1213}, true},
		{"cant connect", &mysql.MySQLError{Number: 2002}, true},
		{"cant connect host", &mysql.MySQLError{Number: 2003}, true},
		{"gone away", &mysql.MySQLError{Number: 2006}, true},
		{"lost", &mysql.MySQLError{Number: 2013}, true},
		{"syntax error", &mysql.MySQLError{Number: 1064}, false},
		{"duplicate", &mysql.MySQLError{Number: 1062}, false},
		{"no rows", sql.ErrNoRows, false},
		{"canceled by the client", context.Canceled, false},
		{"plain", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := sqlstore.Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestDatabaseOutage runs the store on MariaDB through a TCP proxy, cuts
// the proxy (refused connections, pooled connections reset) and expects
// ErrUnavailable from every kind of call, then restores it and expects the
// same *sql.DB to work again with no intervention.
func TestDatabaseOutage(t *testing.T) {
	_, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		testenv.StackMissing(t, "the test server is reached over "+cfg.Net+", not TCP (the proxy forwards TCP)")
	}
	proxy := testenv.StartTCPProxy(t, cfg.Addr)
	u := url.URL{Scheme: "mysql+pymysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: proxy.Addr,
		Path: "/" + cfg.DBName, RawQuery: "connect_timeout=2&read_timeout=5&write_timeout=5"}
	ctx := context.Background()
	db, dialect, err := dbconn.Open(ctx, u.String(), dbconn.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store := newStore(t, db, dialect)
	newSecret := func() *keyservice.Secret {
		return &keyservice.Secret{ID: uuid.NewString(), ProjectID: "p", SecretType: "opaque", Status: "ACTIVE"}
	}
	first := newSecret()
	if err := store.CreateSecret(ctx, first); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	calls := map[string]func(context.Context) error{
		"ping":   store.Ping,
		"create": func(ctx context.Context) error { return store.CreateSecret(ctx, newSecret()) },
		"get":    func(ctx context.Context) error { _, err := store.GetSecret(ctx, first.ID); return err },
		"list": func(ctx context.Context) error {
			_, _, err := store.ListSecrets(ctx, keyservice.SecretFilter{ProjectID: "p", Limit: 10})
			return err
		},
		"metadata": func(ctx context.Context) error {
			return store.ReplaceSecretMetadata(ctx, first.ID, map[string]string{"a": "b"})
		},
		"project key": func(ctx context.Context) error { _, err := store.GetActiveProjectKey(ctx, "p"); return err },
		// One call per other resource: every statement goes through conn,
		// whichever part of the store runs it.
		"kek":    func(ctx context.Context) error { _, err := store.GetProjectKEK(ctx, "p", ""); return err },
		"delete": func(ctx context.Context) error { return store.DeleteSecret(ctx, first.ID) },
		"orders": func(ctx context.Context) error { _, _, err := store.ListOrders(ctx, "p", 10, 0); return err },
		"audit": func(ctx context.Context) error {
			_, err := store.ScanKeyAudit(ctx, keyservice.KeyAuditQuery{Limit: 10})
			return err
		},
		"containers": func(ctx context.Context) error {
			_, _, err := store.ListContainers(ctx, keyservice.ContainerFilter{ProjectID: "p", Limit: 10})
			return err
		},
		"acls": func(ctx context.Context) error {
			return store.ReplaceACLs(ctx, keyservice.ACLSecret, first.ID, nil)
		},
		"consumers": func(ctx context.Context) error {
			_, _, err := store.ListSecretConsumers(ctx, first.ID, 10, 0)
			return err
		},
		"quotas": func(ctx context.Context) error { _, err := store.GetProjectQuotas(ctx, "p"); return err },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(ctx)
		cancel()
		if kind := keyservice.KindOf(err); kind != keyservice.ErrUnavailable {
			t.Errorf("%s with the database unreachable: %v (kind %v), want ErrUnavailable", name, err, kind)
		}
	}

	proxy.Restore(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.GetSecret(ctx, first.ID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 10s after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := store.CreateSecret(ctx, newSecret()); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}

// TestSQLiteBusyIsUnavailable holds SQLite's write lock from a second
// connection: a write that cannot get it before its deadline is an outage
// (503), not an internal error.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	db := testenv.SQLite(t)
	store := newStore(t, db, dbconn.SQLite)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil) // IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "DELETE FROM secrets WHERE id = 'none'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = store.CreateSecret(wctx, &keyservice.Secret{ID: uuid.NewString(), ProjectID: "p", SecretType: "opaque", Status: "ACTIVE"})
	if !errors.Is(err, keyservice.ErrUnavailable) {
		t.Fatalf("write while another holds the lock: %v, want ErrUnavailable", err)
	}
}
