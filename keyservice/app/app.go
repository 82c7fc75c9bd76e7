package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/sqlstore"
	"opendev.org/x/arca/migrations"
)

// Version is the build reported by GET /?build; set with -ldflags.
var Version = "dev"

// App is an assembled arca-api.
type App struct {
	Config  Config
	DB      *sql.DB
	Dialect dbconn.Dialect
	Service *keyservice.Service
	Handler http.Handler
	Log     zerolog.Logger
	// Metrics is arca-api's registry (observability.go).
	Metrics *metrics.Registry
	closers []func() error
}

// LoadKeyring reads the master keys from ARCA_MASTER_KEYS or the configured
// file. Errors say what is wrong and how to fix it.
func LoadKeyring(cfg Config) (*envelope.Keyring, error) {
	if env := os.Getenv("ARCA_MASTER_KEYS"); env != "" {
		ring, err := envelope.ParseKeyring(strings.NewReader(strings.ReplaceAll(env, ";", "\n")))
		if err != nil {
			return nil, fmt.Errorf("ARCA_MASTER_KEYS: %w", err)
		}
		return ring, nil
	}
	return envelope.LoadKeyringFile(cfg.MasterKeyFile)
}

// OpenDatabase opens the configured database. It does not migrate.
func OpenDatabase(ctx context.Context, cfg Config) (*sql.DB, dbconn.Dialect, error) {
	db, dialect, err := dbconn.Open(ctx, cfg.DatabaseURL, dbconn.Options{
		MaxOpenConns: cfg.MaxPoolSize, ConnMaxLifetime: cfg.ConnMaxLifetime,
	})
	if err != nil {
		return nil, "", fmt.Errorf("opening database: %w", err)
	}
	return db, dialect, nil
}

// Build assembles arca-api: it refuses to start on a missing or unsafe
// master key file, on a schema that is not current, and in no-auth mode
// beyond loopback (Config.CheckNoAuthBind). auditLog logs each audit
// record as it is queued and must write every line at once (a daemon's
// logging.Buffered.AtOnce): until the record's batch reaches the
// database, that line is its only trace outside the process.
func Build(ctx context.Context, cfg Config, log, auditLog zerolog.Logger) (*App, error) {
	if err := cfg.CheckNoAuthBind(); err != nil {
		return nil, err
	}
	keys, err := OpenMasterKeys(cfg)
	if err != nil {
		return nil, err
	}
	dbconn.RouteDriverLog(log)
	db, dialect, err := OpenDatabase(ctx, cfg)
	if err != nil {
		_ = keys.Close()
		return nil, err
	}
	a := &App{Config: cfg, DB: db, Dialect: dialect, Log: log, closers: []func() error{keys.Close, db.Close}}
	if err := migrations.Check(db, dialect); err != nil {
		_ = a.Close()
		return nil, err
	}
	store, err := sqlstore.New(db, dialect)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.Service, err = keyservice.New(store, keys.Keys, keyservice.Options{
		KEKCacheTTL: cfg.KEKCacheTTL,
		Logger:      log, AuditLogger: &auditLog, ProjectKeyProtocol: cfg.CryptoProtocol,
		Quotas: cfg.Quotas, AllowDeleteWithConsumers: !cfg.BlockDeleteWithConsumers,
		ActiveKeyCacheTTL: cfg.ActiveKeyCacheTTL,
		ReloadKeyring:     keys.Reload,
		SecretStores:      keys.Stores,
	})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	// Closed before the database: writes the queued project-key audit records.
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return a.Service.Close(ctx)
	})
	opts := api.Options{
		HostHref: cfg.HostHref,
		Logger:   log,
		Build:    Version,
		Health: func(r *http.Request) error {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			return store.Ping(ctx)
		},
	}
	// One authorizer for every mode: no-auth callers (identity from
	// headers) meet the same policy as Keystone's.
	enforcer, err := policy.New(policy.Options{EnforceNewDefaults: cfg.EnforceNewDefaults, PolicyFile: cfg.PolicyFile})
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("policy: %w", err)
	}
	opts.Authorizer = &api.PolicyAuthorizer{Enforcer: enforcer}
	if err := a.authenticate(&opts); err != nil {
		_ = a.Close()
		return nil, err
	}
	if err := a.observability(&opts, store); err != nil {
		_ = a.Close()
		return nil, err
	}
	handler, err := api.New(a.Service, opts)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.Handler = handler
	return a, nil
}

// authenticate sets the authenticator of auth_strategy: no-auth (loopback
// unless allowed otherwise: Config.CheckNoAuthBind) or Keystone's.
func (a *App) authenticate(opts *api.Options) error {
	switch a.Config.AuthStrategy {
	case "noauth":
		a.Log.Warn().Msg("auth_strategy = noauth: the project and roles are taken from X-Project-Id and X-Roles unchecked " +
			"(admin, member, reader without X-Roles); development only")
		if !isLoopback(a.Config.BindHost) {
			// Only allow_insecure_noauth_bind gets here (CheckNoAuthBind).
			a.Log.Warn().Str("bind_host", a.Config.BindHost).Msg("auth_strategy = noauth beyond loopback " +
				"(allow_insecure_noauth_bind = true): anyone who reaches this port is any project, with any role")
		}
		opts.Authenticator = api.NoAuth{}
	case "keystone":
		return a.keystoneAuth(opts)
	}
	return nil
}

// Close releases the app's resources.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// Serve listens on the configured address until ctx is done, then drains
// in-flight requests for up to [DEFAULT] shutdown_timeout
// (serve.DefaultGrace).
func (a *App) Serve(ctx context.Context) error {
	ln, err := serve.Listen(ctx, net.JoinHostPort(a.Config.BindHost, strconv.Itoa(a.Config.BindPort)))
	if err != nil {
		return err
	}
	if err := a.Config.checkNoAuthListener(ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	return a.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is done (over TLS when
// ssl_cert_file is set: tls.go), with the separate /metrics listener when
// [metrics] bind asks for one.
func (a *App) ServeListener(ctx context.Context, ln net.Listener) error {
	tln, err := a.listenTLS(ln)
	if err != nil {
		_ = ln.Close()
		return err
	}
	servers := []serve.Server{{Listener: tln, HTTP: &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: a.Config.ReadHeaderTimeout,
		ReadTimeout:       a.Config.ReadTimeout,
		WriteTimeout:      a.Config.WriteTimeout,
		IdleTimeout:       a.Config.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}}}
	if a.Metrics != nil {
		m, err := metrics.Listener(ctx, a.Config.Metrics, a.Metrics.Handler(), a.Log)
		if err != nil {
			_ = tln.Close()
			return err
		}
		if m != nil {
			servers = append(servers, *m)
		}
	}
	a.Log.Info().Str("address", tln.Addr().String()).Str("auth_strategy", a.Config.AuthStrategy).
		Str("database", string(a.Dialect)).Msg("arca-api listening")
	if err := serve.Run(ctx, a.Config.ShutdownTimeout, servers...); err != nil {
		return err
	}
	// Requests have stopped: write the audit records still queued.
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.Config.ShutdownTimeout)
	defer cancel()
	if err := a.Service.Close(flush); err != nil {
		return fmt.Errorf("flushing audit records: %w", err)
	}
	a.Log.Info().Msg("arca-api stopped")
	return nil
}
