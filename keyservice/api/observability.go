package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Observability hooks of the HTTP edge (docs/operations.md). The api
// package knows nothing of Prometheus: it reports each answered request to
// an HTTPObserver and serves handlers it is given.

// HTTPObserver receives one observation per answered request; route is the
// route table's path template ("/v1/secrets/:id"), never the raw path, or
// "unmatched". *metrics.Registry is one.
type HTTPObserver interface {
	ObserveHTTP(route, method string, code int, d time.Duration)
}

// observabilityRoutes are /metrics and the detailed health check, served
// without authentication (the detailed check restricts its callers by
// network itself; metrics carry no key ids, tokens nor, by default,
// project ids). Present only when the handlers are configured.
func (s *Server) observabilityRoutes() []route {
	var rts []route
	if s.metricsHandler != nil {
		h := echo.WrapHandler(s.metricsHandler)
		rts = append(rts, route{method: http.MethodGet, path: "/metrics", handler: h})
	}
	if s.healthHandler != nil {
		h := echo.WrapHandler(s.healthHandler)
		rts = append(rts,
			route{method: http.MethodGet, path: "/healthcheck/detailed", handler: h},
			route{method: http.MethodHead, path: "/healthcheck/detailed", handler: h})
	}
	return rts
}
