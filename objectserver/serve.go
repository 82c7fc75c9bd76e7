package objectserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/ringhash"
)

// Build loads the configuration files and swift.conf and wires the key
// client: everything cmd/arca-object-server needs.
func Build(paths []string, log zerolog.Logger) (*Server, error) {
	if err := CheckCredentialFiles(paths); err != nil {
		return nil, err
	}
	f, err := config.Load(paths...)
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(f)
	if err != nil {
		return nil, err
	}
	swift, err := ringhash.Load(cfg.SwiftConf)
	if err != nil {
		return nil, err
	}
	var keys keyclient.Resolver
	if cfg.Encrypt {
		opts := cfg.KeyClient
		opts.Logger = log.With().Str("component", "keyclient").Logger()
		c, err := keyclient.New(opts)
		if err != nil {
			return nil, fmt.Errorf("key service client: %w", err)
		}
		keys = c
	}
	return New(*cfg, swift, keys, log)
}

// Addr is the configured listen address.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.BindIP, strconv.Itoa(s.cfg.BindPort))
}

// Serve answers on ln until ctx ends, then drains requests and the
// container updates still in flight. ln is wrapped in TLS when cert_file
// is set.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.checkExposure(ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	tln, err := s.cfg.TLS.Listener(ln)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ln = tln
	// Nothing of this process is in flight yet: every temp file older than
	// now is a dead process's unacknowledged write (diskfile.RemoveStaleTemp).
	start := time.Now()
	if n, err := s.disk.RemoveStaleTemp(start); err != nil {
		s.log.Warn().Err(err).Int("removed", n).Msg("removing stale temp files")
	} else if n > 0 {
		s.log.Info().Int("removed", n).Msg("removed stale temp files of unfinished writes")
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ClientTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if !s.legacyBefore.IsZero() {
		s.log.Warn().Str("legacy_plaintext_before", s.legacyBefore.Normal()).
			Msg("migration option set: objects without Arca metadata written before this time are served in the clear; remove it once they are rewritten")
	}
	trusted := make([]string, len(s.trusted))
	for i, p := range s.trusted {
		trusted[i] = p.String()
	}
	s.log.Info().Str("addr", ln.Addr().String()).Strs("trusted_networks", trusted).Str("devices", s.cfg.Devices).Bool("encrypt", s.cfg.Encrypt).
		Bool("tls", s.cfg.TLS.Enabled()).Bool("client_certificates", s.cfg.TLS.CAFile != "").Msg("arca-object-server listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	s.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
