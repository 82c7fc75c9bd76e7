package objectserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// Observability hook of the object server (docs/operations.md), kept apart
// from the protocol code: the server reports to a Metrics and serves the
// handlers it is given; cmd/arca-object-server wires internal/metrics and
// internal/health in.

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

// Observability is what SetObservability installs; nil fields are off.
type Observability struct {
	Metrics Metrics
	// MetricsHandler is served at GET /metrics.
	MetricsHandler http.Handler
	// Health answers /healthcheck and /healthcheck/detailed instead of the
	// built-in plain check.
	Health http.Handler
}

// SetObservability installs metrics and health handlers. Call it before
// serving.
func (s *Server) SetObservability(o Observability) { s.obs = o }

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
