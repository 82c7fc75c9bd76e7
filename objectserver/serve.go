package objectserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/serve"
	"opendev.org/x/arca/objectserver/ringhash"
)

// Build wires the object server from its configuration: swift.conf, the
// metrics registry, the key client (reporting its requests to the registry
// from its construction on), the health check and the server. It opens no
// listener and asks no service: the key service and Keystone are reached
// on first use.
func Build(cfg Config, log zerolog.Logger) (*Server, error) {
	swift, err := ringhash.Load(cfg.SwiftConf)
	if err != nil {
		return nil, err
	}
	reg := metrics.New("arca-object-server", Version, cfg.Metrics)
	var kc *keyclient.Client
	var keys keyclient.Resolver
	if cfg.Encrypt {
		opts := cfg.KeyClient
		opts.Logger = log.With().Str("component", "keyclient").Logger()
		opts.Observer = reg.ObserveKeyService
		if kc, err = keyclient.New(opts); err != nil {
			return nil, fmt.Errorf("key service client: %w", err)
		}
		keys = kc
	}
	obs, err := observability(cfg, reg, kc, log)
	if err != nil {
		return nil, err
	}
	return New(cfg, swift, keys, log, WithObservability(obs))
}

// Addr is the configured listen address.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.BindIP, strconv.Itoa(s.cfg.BindPort))
}

// Serve listens on the configured address until ctx ends (ServeListener).
func (s *Server) Serve(ctx context.Context) error {
	ln, err := serve.Listen(ctx, s.Addr())
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener answers on ln, and on the separate /metrics listener when
// [metrics] bind asks for one, until ctx ends; then requests have
// shutdown_timeout to finish, and the container updates still in flight
// are waited for. ln is wrapped in TLS when cert_file is set.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	if err := s.checkExposure(ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	// under TLS too: its records are what a held answer collects
	tln, err := s.cfg.TLS.Listener(batchListener{ln})
	if err != nil {
		_ = ln.Close()
		return err
	}
	ln = tln
	servers := []serve.Server{{Listener: ln, HTTP: &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ClientTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ConnContext:       withBatchConn,
	}}}
	if s.obs.MetricsListener != nil {
		m, err := metrics.Listener(ctx, s.cfg.Metrics, s.obs.MetricsListener, s.log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		if m != nil {
			servers = append(servers, *m)
		}
	}
	s.logStart(ln.Addr())
	err = serve.Run(ctx, s.cfg.ShutdownTimeout, servers...)
	s.Wait()
	return err
}

// logStart removes the temp files of dead writers and says how the server
// is set up.
func (s *Server) logStart(addr net.Addr) {
	// Nothing of this process is in flight yet: every temp file older than
	// now is a dead process's unacknowledged write (diskfile.RemoveStaleTemp).
	if n, err := s.disk.RemoveStaleTemp(time.Now()); err != nil {
		s.log.Warn().Err(err).Int("removed", n).Msg("removing stale temp files")
	} else if n > 0 {
		s.log.Info().Int("removed", n).Msg("removed stale temp files of unfinished writes")
	}
	if !s.legacyBefore.IsZero() {
		s.log.Warn().Str("legacy_plaintext_before", s.legacyBefore.Normal()).
			Msg("migration option set: objects without Arca metadata written before this time are served in the clear; remove it once they are rewritten")
	}
	trusted := make([]string, len(s.trusted))
	for i, p := range s.trusted {
		trusted[i] = p.String()
	}
	s.log.Info().Str("addr", addr.String()).Strs("trusted_networks", trusted).Str("devices", s.cfg.Devices).Bool("encrypt", s.cfg.Encrypt).
		Bool("tls", s.cfg.TLS.Enabled()).Bool("client_certificates", s.cfg.TLS.CAFile != "").Msg("arca-object-server listening")
}
