package objectserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/objcrypt"
)

// Observability hook of the object server (docs/operations.md), kept apart
// from the protocol code: the server reports to a Metrics and serves the
// handlers it is given; Build wires internal/metrics and internal/health
// in.

// Metrics receives the object server's measurements; *metrics.Registry is
// one. Reasons and kinds are internal/metrics' Reason* and Integrity*
// names; routes are "object", "partition" (REPLICATE), "healthcheck",
// "options" or "other", never paths.
type Metrics interface {
	ObserveHTTP(route, method string, code int, d time.Duration)
	AddEncrypted(project string, n int64)
	AddDecrypted(project string, n int64)
	RefusedNoKey(project, reason string)
	IntegrityFailure(project, kind string)
}

// Observability is what WithObservability installs; nil fields are off.
type Observability struct {
	Metrics Metrics
	// MetricsHandler is served at GET /metrics on the service's port.
	MetricsHandler http.Handler
	// MetricsListener is served at GET /metrics on the separate listener
	// of [metrics] bind, which Serve opens beside the service's.
	MetricsListener http.Handler
	// Health answers /healthcheck and /healthcheck/detailed instead of the
	// built-in plain check.
	Health http.Handler
}

// WithObservability makes the server report to o and serve its handlers.
func WithObservability(o Observability) Option { return func(s *Server) { s.obs = o } }

// observability is what Build wires in: the registry (reporting the key
// client's requests from its construction on) and the health check, whose
// detailed form asks the key service and Keystone without showing their
// addresses.
func observability(cfg Config, reg *metrics.Registry, kc *keyclient.Client, log zerolog.Logger) (Observability, error) {
	var checks []health.Check
	if kc != nil {
		reg.WatchKeyClient(kc)
		checks = append(checks, health.Check{Name: "key_service", Run: func(ctx context.Context) error { return kc.Ping(ctx) }})
		if !cfg.KeyClient.NoAuth && cfg.KeyClient.Credentials.AuthURL != "" {
			checks = append(checks, health.HTTPCheck("keystone", cfg.KeyClient.Credentials.AuthURL, &http.Client{}))
		}
	}
	h, err := health.New(cfg.Health, checks, log)
	if err != nil {
		return Observability{}, err
	}
	o := Observability{Metrics: reg, Health: h}
	switch {
	case cfg.Metrics.Enabled && cfg.Metrics.Bind == "":
		o.MetricsHandler = reg.Handler()
	case cfg.Metrics.Enabled:
		o.MetricsListener = reg.Handler()
	}
	return o, nil
}

// serveObservability answers /metrics and the health check when configured.
func (s *Server) serveObservability(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case s.obs.MetricsHandler != nil && r.URL.Path == "/metrics":
		s.obs.MetricsHandler.ServeHTTP(w, r)
	case s.obs.Health != nil && (r.URL.Path == "/healthcheck" || r.URL.Path == "/healthcheck/detailed"):
		s.obs.Health.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

func (s *Server) observeRequest(r *http.Request, status int, start time.Time) {
	if s.obs.Metrics == nil {
		return
	}
	route := "object"
	switch {
	case r.Method == "REPLICATE":
		route = "partition"
	case r.Method == http.MethodOptions:
		route = "options"
	case strings.HasPrefix(r.URL.Path, "/healthcheck"):
		route = "healthcheck"
	case r.URL.Path == "/metrics":
		route = "metrics"
	case strings.Count(r.URL.Path, "/") < 5:
		route = "other"
	}
	if status == 0 {
		status = http.StatusOK
	}
	s.obs.Metrics.ObserveHTTP(route, r.Method, status, time.Since(start))
}

// countKeyError classifies a failure that keyError answers.
func (s *Server) countKeyError(req *request, err error) {
	m := s.obs.Metrics
	if m == nil {
		return
	}
	project, _ := s.projectFor(req.account)
	switch {
	case errors.Is(err, keyclient.ErrNotFound):
		m.RefusedNoKey(project, "not_found")
	case errors.Is(err, keyclient.ErrDestroyed):
		m.RefusedNoKey(project, "destroyed")
	case errors.Is(err, keyclient.ErrDenied):
		m.RefusedNoKey(project, "denied")
	case errors.Is(err, keyclient.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		m.RefusedNoKey(project, "unavailable")
	case errors.Is(err, errNoProject):
		m.RefusedNoKey(project, "no_project")
	case errors.Is(err, errKeyRotated):
		m.RefusedNoKey(project, "rotated")
	default:
		s.countIntegrity(req, err)
	}
}

// countIntegrity counts an encrypted object that failed to open.
func (s *Server) countIntegrity(req *request, err error) {
	m := s.obs.Metrics
	if m == nil {
		return
	}
	project, _ := s.projectFor(req.account)
	switch {
	case errors.Is(err, objcrypt.ErrTruncated):
		m.IntegrityFailure(project, "truncated")
	case errors.Is(err, objcrypt.ErrTampered):
		m.IntegrityFailure(project, "tampered")
	case errors.Is(err, objcrypt.ErrWrongKey), errors.Is(err, objcrypt.ErrKeyUnwrap):
		m.IntegrityFailure(project, "wrong_key")
	case errors.Is(err, objcrypt.ErrUnsupported), errors.Is(err, objcrypt.ErrInvalid):
		m.IntegrityFailure(project, "invalid")
	}
}

func (s *Server) countEncrypted(req *request, n int64) {
	if s.obs.Metrics != nil && s.cfg.Encrypt {
		project, _ := s.projectFor(req.account)
		s.obs.Metrics.AddEncrypted(project, n)
	}
}

func (s *Server) countDecrypted(req *request, encrypted bool, n int64) {
	if s.obs.Metrics != nil && encrypted {
		project, _ := s.projectFor(req.account)
		s.obs.Metrics.AddDecrypted(project, n)
	}
}

// KeyClient returns the server's key client when it is a *keyclient.Client
// (for its counters and health check), else nil.
func (s *Server) KeyClient() *keyclient.Client {
	c, _ := s.keys.(*keyclient.Client)
	return c
}
