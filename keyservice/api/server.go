package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/keyservice"
)

// Options configure a Server.
type Options struct {
	// HostHref is the base of every ref the API returns
	// ("http://keys.example.com:9311"); empty derives it from each request.
	HostHref string
	// Authenticator defaults to NoAuth, Authorizer to ProjectIsolation.
	Authenticator Authenticator
	Authorizer    Authorizer
	Logger        zerolog.Logger
	// Build is reported by GET /?build.
	Build string
	// Health, when set, is the check behind /healthcheck (nil: always OK).
	Health func(*http.Request) error

	// Observability (observability.go). Metrics observes every request;
	// MetricsHandler is served at GET /metrics; HealthHandler, when set,
	// answers /healthcheck and /healthcheck/detailed instead of Health.
	Metrics        HTTPObserver
	MetricsHandler http.Handler
	HealthHandler  http.Handler
}

// Server is the HTTP edge of arca-api.
type Server struct {
	echo     *echo.Echo
	svc      *keyservice.Service
	authn    Authenticator
	authz    Authorizer
	hostHref string
	build    string
	health   func(*http.Request) error
	log      zerolog.Logger

	metrics        HTTPObserver
	metricsHandler http.Handler
	healthHandler  http.Handler
}

// New builds the HTTP server over svc.
func New(svc *keyservice.Service, opts Options) *Server {
	s := &Server{
		svc: svc, authn: opts.Authenticator, authz: opts.Authorizer,
		hostHref: strings.TrimRight(opts.HostHref, "/"), build: opts.Build,
		health: opts.Health, log: opts.Logger,
		metrics: opts.Metrics, metricsHandler: opts.MetricsHandler, healthHandler: opts.HealthHandler,
	}
	if s.authn == nil {
		s.authn = NoAuth{}
	}
	if s.authz == nil {
		s.authz = ProjectIsolation{}
	}
	if s.build == "" {
		s.build = "arca"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Forwarded-for headers are client-controlled; trust the socket peer.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.httpErrorHandler
	e.Use(s.requestIDMiddleware, s.metricsMiddleware, s.accessLogMiddleware, s.recoverMiddleware, s.microversionMiddleware)
	for _, rt := range append(s.routes(), s.observabilityRoutes()...) {
		e.Add(rt.method, rt.path, s.wrap(rt))
		if rt.trailingSlash {
			e.Add(rt.method, rt.path+"/", s.wrap(rt))
		}
	}
	s.echo = e
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

type ctxKey string

const (
	keyRequestID    ctxKey = "request_id"
	keyCaller       ctxKey = "caller"
	keyRoute        ctxKey = "route"
	keyMicroversion ctxKey = "microversion"
)

func requestID(c echo.Context) string {
	id, _ := c.Get(string(keyRequestID)).(string)
	return id
}

func (s *Server) requestIDMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := "req-" + uuid.NewString()
		c.Set(string(keyRequestID), id)
		c.Response().Header().Set("X-Openstack-Request-Id", id)
		return next(c)
	}
}

// recoverMiddleware turns a panic into a logged 500: a bug must not take the
// process down with every other request in flight.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

func (s *Server) accessLogMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		// The path is logged without its query: filters may carry names
		// an operator considers sensitive, and tokens never go in URLs.
		event := s.log.Info().Str("request_id", requestID(c)).Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).Int("status", c.Response().Status).
			Dur("duration", time.Since(start)).Str("remote", c.RealIP())
		if caller, ok := c.Get(string(keyCaller)).(keyservice.Caller); ok {
			event = event.Str("project_id", caller.ProjectID).Str("user_id", caller.UserID)
		}
		event.Msg("request")
		return nil
	}
}

// route is one entry of the route table.
type route struct {
	method string
	path   string
	// rule is the policy rule checked for this route; "" marks the
	// unauthenticated discovery routes.
	rule string
	// bodyLimit caps the request body in bytes (0: no body expected).
	bodyLimit int64
	// trailingSlash also registers path+"/" (barbicanclient POSTs with one).
	trailingSlash bool
	handler       func(c echo.Context) error
}

// wrap applies a route's authentication, body limit and policy context.
func (s *Server) wrap(rt route) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(string(keyRoute), rt)
		if rt.rule != "" {
			caller, err := s.authn.Authenticate(c.Request().Context(), c.Request())
			if err != nil {
				return err
			}
			caller.RequestID = requestID(c)
			c.Set(string(keyCaller), caller)
		}
		if err := readBody(c, rt.bodyLimit); err != nil {
			return err
		}
		return rt.handler(c)
	}
}

const keyBody ctxKey = "body"

// readBody reads the whole request body up to limit, answering 413 beyond
// it. Bodies are small in this API; reading them up front keeps handlers
// simple and lets a slow client be cut off by the server's read timeout.
func readBody(c echo.Context, limit int64) error {
	r := c.Request()
	if limit <= 0 {
		limit = 4096 // routes without a body still drain a small one
	}
	if r.ContentLength > limit {
		return keyservice.Errorf(keyservice.ErrTooLarge, "Provided information too large to process.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return keyservice.Errorf(keyservice.ErrTooLarge, "Provided information too large to process.")
		}
		return keyservice.Errorf(keyservice.ErrInvalid, "Could not read the request body.")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.Set(string(keyBody), body)
	return nil
}

func body(c echo.Context) []byte {
	b, _ := c.Get(string(keyBody)).([]byte)
	return b
}

func callerOf(c echo.Context) keyservice.Caller {
	caller, _ := c.Get(string(keyCaller)).(keyservice.Caller)
	return caller
}

// authorize checks the current route's rule against target.
func (s *Server) authorize(c echo.Context, target Target) error {
	rt, _ := c.Get(string(keyRoute)).(route)
	if rt.rule == "" {
		return nil
	}
	return s.authz.Authorize(c.Request().Context(), rt.rule, callerOf(c), target)
}

// baseURL is the scheme://host[:port] every ref starts with.
func (s *Server) baseURL(c echo.Context) string {
	if s.hostHref != "" {
		return s.hostHref
	}
	r := c.Request()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
