package swiftfilter

import (
	"context"
	"errors"
	"net/http"
	"time"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/metrics"
)

// Metrics and health of the filter (docs/operations.md). Route labels are
// Swift's controller names, never paths: "account", "container",
// "object", "info", "healthcheck", "other" (anything else: /auth, a bad
// version) or "invalid" (refused before it was parsed).

// serveObservability answers /metrics and the oslo-style health check when
// they are configured; it reports whether it answered.
func (f *Filter) serveObservability(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case f.metricsHandler != nil && r.URL.Path == metrics.Path:
		f.metricsHandler.ServeHTTP(w, r)
	case f.health != nil && health.Handles(r.URL.Path):
		f.health.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

// routeOf names Swift's controller for a parsed path.
func routeOf(t Target, path string) string {
	switch {
	case t.IsObject():
		return "object"
	case t.Version != "" && t.Account != "" && t.Container != "":
		return "container"
	case t.Version != "" && t.Account != "":
		return "account"
	case path == "/info":
		return "info"
	}
	return "other"
}

func (f *Filter) observe(r *http.Request, rl *requestLog, status int, start time.Time) {
	if f.metrics == nil {
		return
	}
	route := rl.route
	if route == "" {
		route = "invalid"
	}
	f.metrics.ObserveHTTP(route, r.Method, status, time.Since(start))
}

func (f *Filter) countToken(err error) {
	if f.metrics == nil {
		return
	}
	switch {
	case err == nil:
		f.metrics.TokenValidated(metrics.TokenValid)
	case errors.Is(err, keystone.ErrUnavailable):
		f.metrics.TokenValidated(metrics.TokenUnavailable)
	default:
		f.metrics.TokenValidated(metrics.TokenInvalid)
	}
}

// countRefusal counts an object write refused for lack of a key (a client
// that went away is not a refusal).
func (f *Filter) countRefusal(ctx context.Context, project string, err error) {
	if f.metrics == nil || ctx.Err() != nil {
		return
	}
	reason := metrics.ReasonUnavailable
	switch {
	case errors.Is(err, keyclient.ErrNotFound):
		reason = metrics.ReasonNotFound
	case errors.Is(err, keyclient.ErrDestroyed):
		reason = metrics.ReasonDestroyed
	case errors.Is(err, keyclient.ErrDenied):
		reason = metrics.ReasonDenied
	}
	f.metrics.RefusedNoKey(project, reason)
}
