package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// reqState is one request's own values: its id, the route it matched, the
// caller, the body, the negotiated microversion, the authorized resource
// and the policy guard. They live in one allocation under one context key:
// a context entry each meant a map entry, a boxed copy (a route is a dozen
// fields) and a lock per lookup, on every request (issue 21).
type reqState struct {
	id string
	// route is the matched route, shared with every request on it unless
	// its rule depends on the request (ruleOf): never write through it.
	route      *route
	caller     keyservice.Caller
	hasCaller  bool
	version    Microversion
	hasVersion bool
	body       []byte
	resource   any
	// guard is the response writer of routes with a rule (guard in
	// server.go): part of the state so that it costs no allocation of its
	// own.
	guard guardWriter
}

const keyState ctxKey = "arca_request"

// stateOf returns the request's state; a request that did not pass edge
// (a handler called directly) gets a fresh one, so that nothing it did not
// set is ever read from it.
func stateOf(c echo.Context) *reqState {
	if st, ok := c.Get(string(keyState)).(*reqState); ok {
		return st
	}
	st := &reqState{}
	c.Set(string(keyState), st)
	return st
}

// edge is the one middleware of every request, matched or not: the request
// id, panic recovery, microversion negotiation, the error answer, the
// access line and the metrics, in that order of nesting. Echo rebuilds its
// middleware chain for every request (a closure per middleware), and one
// frame holding the request's state does the work of the five it replaces.
func (s *Server) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		st := &reqState{id: newRequestID()}
		c.Set(string(keyState), st)
		c.Response().Header().Set("X-Openstack-Request-Id", st.id)
		if err := s.recovered(c, st, next); err != nil {
			c.Error(err)
		}
		s.logAccess(c, st, start)
		if s.metrics != nil {
			name := "unmatched"
			if st.route != nil {
				name = st.route.path
				if len(name) > 1 {
					name = strings.TrimSuffix(name, "/")
				}
			}
			s.metrics.ObserveHTTP(name, c.Request().Method, c.Response().Status, time.Since(start))
		}
		return nil
	}
}

// recovered runs the microversion negotiation and the handler, turning a
// panic into an error (a logged 500): a bug must not take the process down
// with every other request in flight. http.ErrAbortHandler goes on up, as
// net/http expects.
func (s *Server) recovered(c echo.Context, st *reqState, next echo.HandlerFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if rerr, ok := r.(error); ok && errors.Is(rerr, http.ErrAbortHandler) {
				panic(r)
			}
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if err := negotiateVersion(c, st); err != nil {
		return err
	}
	return next(c)
}

// logAccess writes the request's access line. The path is logged without
// its query: filters may carry names an operator considers sensitive, and
// tokens never go in URLs.
func (s *Server) logAccess(c echo.Context, st *reqState, start time.Time) {
	event := s.log.Info().Str("request_id", st.id).Str("method", c.Request().Method).
		Str("path", c.Request().URL.Path).Int("status", c.Response().Status).
		Dur("duration", time.Since(start)).Str("remote", c.RealIP())
	if st.hasCaller {
		event = event.Str("project_id", st.caller.ProjectID).Str("user_id", st.caller.UserID)
	}
	event.Msg("request")
}
