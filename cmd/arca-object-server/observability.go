package main

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/objectserver"
)

// observability wires metrics ([metrics]) and the oslo-style health check
// ([healthcheck]) into srv (docs/operations.md). The detailed check asks
// the key service and Keystone; it never shows their addresses.
func observability(f *config.File, srv *objectserver.Server, log zerolog.Logger) (*metrics.Registry, metrics.Config, error) {
	_, port, _ := net.SplitHostPort(srv.Addr())
	servicePort, _ := strconv.Atoi(port)
	mcfg := metrics.LoadConfig(f, servicePort)
	hcfg := health.LoadConfig(f)
	if err := f.Err(); err != nil {
		return nil, mcfg, err
	}
	if err := mcfg.Check(); err != nil {
		return nil, mcfg, err
	}
	reg := metrics.New("arca-object-server", objectserver.Version, mcfg)
	var checks []health.Check
	if kc := srv.KeyClient(); kc != nil {
		reg.WatchKeyClient(kc)
		kc.SetObserver(reg.ObserveKeyService)
		checks = append(checks, health.Check{Name: "key_service", Run: func(ctx context.Context) error { return kc.Ping(ctx) }})
		if cfg, err := objectserver.LoadConfig(f); err == nil && !cfg.KeyClient.NoAuth && cfg.KeyClient.Credentials.AuthURL != "" {
			checks = append(checks, health.HTTPCheck("keystone", cfg.KeyClient.Credentials.AuthURL, &http.Client{}))
		}
	}
	h, err := health.New(hcfg, checks, log)
	if err != nil {
		return nil, mcfg, err
	}
	o := objectserver.Observability{Metrics: reg, Health: h}
	if mcfg.Enabled && mcfg.Bind == "" {
		o.MetricsHandler = reg.Handler()
	}
	srv.SetObservability(o)
	return reg, mcfg, nil
}
