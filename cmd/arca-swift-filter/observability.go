package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/swiftfilter"
)

// version is reported by arca_build_info; set with -ldflags.
var version = "dev"

// observability wires the filter's metrics (reg, which keys already reports
// its requests to) and health check into deps (docs/operations.md): the
// detailed check asks Keystone, the key service and the Swift proxy behind
// the filter.
func observability(s swiftfilter.Settings, deps *swiftfilter.Deps, reg *metrics.Registry, v *keystone.Validator, keys *keyclient.Client, log zerolog.Logger) error {
	reg.WatchValidator(v)
	reg.WatchKeyClient(keys)
	deps.Metrics = reg
	if s.Metrics.Enabled && s.Metrics.Bind == "" {
		deps.MetricsHandler = reg.Handler()
	}
	checks := []health.Check{
		health.HTTPCheck("keystone", s.Keystone.AuthURL, &http.Client{}),
		{Name: "key_service", Run: func(ctx context.Context) error { return keys.Ping(ctx) }},
	}
	if s.Filter.Upstream != "" {
		checks = append(checks, health.HTTPCheck("swift_proxy", strings.TrimRight(s.Filter.Upstream, "/")+"/healthcheck", &http.Client{}))
	}
	h, err := health.New(s.Health, checks, log)
	if err != nil {
		return err
	}
	deps.Health = h
	return nil
}
