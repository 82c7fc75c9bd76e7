package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// observability wires metrics and the oslo-style health check into opts
// (docs/operations.md). It runs after authentication is wired, so that the
// token validator's counters can be exported.
func (a *App) observability(opts *api.Options, store keyservice.Store) error {
	reg := metrics.New("arca-api", Version, a.Config.Metrics)
	reg.WatchDB(a.DB, "arca")
	a.Metrics = reg
	opts.Metrics = reg
	if a.Config.Metrics.Enabled && a.Config.Metrics.Bind == "" {
		opts.MetricsHandler = reg.Handler()
	}
	if ta, ok := opts.Authenticator.(*TokenAuthenticator); ok {
		reg.WatchValidator(ta.Validator)
		opts.Authenticator = &countingAuthenticator{Authenticator: ta, reg: reg}
	}

	checks := []health.Check{{Name: "database", Run: func(ctx context.Context) error {
		return a.checkDatabase(ctx, store)
	}}}
	if a.Config.AuthStrategy == "keystone" {
		if kcfg, err := KeystoneConfig(a.Config.Raw); err == nil {
			checks = append(checks, health.HTTPCheck("keystone", kcfg.AuthURL, &http.Client{}))
		}
	}
	h, err := health.New(a.Config.Health, checks, a.Log)
	if err != nil {
		return err
	}
	opts.HealthHandler = h
	return nil
}

// countingAuthenticator counts token validations by result.
type countingAuthenticator struct {
	api.Authenticator
	reg *metrics.Registry
}

func (c *countingAuthenticator) Authenticate(ctx context.Context, r *http.Request) (keyservice.Caller, error) {
	caller, err := c.Authenticator.Authenticate(ctx, r)
	switch {
	case strings.TrimSpace(r.Header.Get("X-Auth-Token")) == "":
		// no token: nothing was validated
	case err == nil:
		c.reg.TokenValidated(metrics.TokenValid)
	case errors.Is(err, keyservice.ErrUnavailable), errors.Is(err, keystone.ErrUnavailable):
		c.reg.TokenValidated(metrics.TokenUnavailable)
	default:
		c.reg.TokenValidated(metrics.TokenInvalid)
	}
	return caller, err
}

// checkDatabase pings the pool and reads the schema version: a ping alone
// passes on a pooled connection whose database was dropped or whose
// grants were revoked.
func (a *App) checkDatabase(ctx context.Context, store keyservice.Store) error {
	if err := store.Ping(ctx); err != nil {
		return err
	}
	var version int64
	var dirty bool
	err := a.DB.QueryRowContext(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if dirty {
		return &health.PublicError{Public: "schema dirty", Err: errors.New("a migration failed half-way")}
	}
	return nil
}
