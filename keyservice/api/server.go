package api

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/keyservice"
)

// Options configure a Server.
type Options struct {
	// HostHref is the base of every ref the API returns
	// ("http://keys.example.com:9311"); empty derives it from each request.
	HostHref string
	// Authenticator defaults to NoAuth. Authorizer defaults to a
	// PolicyAuthorizer over the default rules (enforce_new_defaults = true):
	// every mode runs the same policy.
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

// New builds the HTTP server over svc. It fails only when the default
// policy cannot be built.
func New(svc *keyservice.Service, opts Options) (*Server, error) {
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
		enforcer, err := policy.New(policy.Options{EnforceNewDefaults: true})
		if err != nil {
			return nil, fmt.Errorf("default policy: %w", err)
		}
		s.authz = &PolicyAuthorizer{Enforcer: enforcer}
	}
	if s.build == "" {
		s.build = "arca"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Forwarded-for headers are client-controlled; trust the socket peer.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.httpErrorHandler
	e.Use(s.edge)
	for _, rt := range append(s.routes(), s.observabilityRoutes()...) {
		e.Add(rt.method, rt.path, s.wrap(rt))
		if rt.trailingSlash {
			e.Add(rt.method, rt.path+"/", s.wrap(rt))
		}
	}
	s.echo = e
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

type ctxKey string

func requestID(c echo.Context) string { return stateOf(c).id }

// newRequestID is "req-" and a random (version 4) UUID, as
// "req-"+uuid.NewString() but built in one allocation.
func newRequestID() string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])  // crypto/rand: never fails (it crashes the program instead)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [4 + 36]byte
	copy(b[:], "req-")
	hex.Encode(b[4:12], u[0:4])
	b[12] = '-'
	hex.Encode(b[13:17], u[4:6])
	b[17] = '-'
	hex.Encode(b[18:22], u[6:8])
	b[22] = '-'
	hex.Encode(b[23:27], u[8:10])
	b[27] = '-'
	hex.Encode(b[28:], u[10:])
	return string(b[:])
}

// route is one entry of the route table.
type route struct {
	method string
	path   string
	// rule is the policy rule checked for this route; "" marks the
	// unauthenticated discovery and health routes.
	rule string
	// collection routes act on the caller's own project (list, create,
	// quotas): the wrapper checks rule before the handler runs.
	collection bool
	// load, on a resource route, fetches the resource in the path and
	// returns it with the policy target built from its stored row; the
	// wrapper checks rule against that target before the handler runs, and
	// the handler gets the resource from loaded. Handlers do not authorize.
	// Either way a 2xx answer without a passed check is turned into a 500
	// (policyGuard).
	load func(c echo.Context) (any, Target, error)
	// denied, when set, turns a policy refusal on the loaded resource into
	// the answer (a 404 where the API must not confirm that another
	// project's resource exists).
	denied func(c echo.Context, resource any, err error) error
	// ruleOf, when set, picks the route's rule from the request before
	// anything is checked (the legacy payload read of GET /v1/secrets/{id}).
	ruleOf func(c echo.Context) string
	// validate, when set, checks the request's own parameters before load
	// (their 400 comes first, whoever asks).
	validate func(c echo.Context) error
	// scope says which tokens besides project-scoped ones may call the
	// route at all; the default, none, answers 403 to domain- and
	// system-scoped tokens before policy runs.
	scope routeScope
	// audit is the project-key audit action of the route: a caller refused
	// for its token's scope is recorded like one refused by policy.
	audit string
	// bodyLimit caps the request body in bytes (0: no body expected).
	bodyLimit int64
	// trailingSlash also registers path+"/" (barbicanclient POSTs with one).
	trailingSlash bool
	handler       func(c echo.Context) error
}

// routeScope lists the token scopes a route admits besides a project.
type routeScope int

const (
	// projectScope (the zero value: a route that says nothing): project-
	// scoped tokens only. Every Barbican resource belongs to a project; a
	// domain- or system-scoped token has none, and must not fall back to an
	// empty one shared by all such tokens.
	_ routeScope = iota
	// systemScope: also system-scoped tokens (rules naming system_reader
	// or system_admin, on resources that belong to no project).
	systemScope
	// systemWithProject: also system-scoped tokens that name the project
	// with ?project_id= (project keys: a system admin manages a project's
	// keys, never an empty project's).
	systemWithProject
)

// checkScope refuses callers whose token scope the route does not admit.
func checkScope(c echo.Context, rt *route, caller keyservice.Caller) error {
	if caller.ProjectScoped() {
		return nil
	}
	system := caller.SystemScope == keyservice.SystemScopeAll
	_, named := c.QueryParams()["project_id"]
	switch rt.scope {
	case systemScope:
		if system {
			return nil
		}
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: this operation requires a project-scoped or system-scoped token.")
	case systemWithProject:
		if system && named {
			return nil
		}
		if system {
			return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: a system-scoped token must name the project with ?project_id= for this operation.")
		}
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: this operation requires a project-scoped token, or a system-scoped token with ?project_id=.")
	}
	return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: this operation requires a project-scoped token.")
}

// auditScopeRefusal records a project-key operation refused for the
// caller's token scope. As for refusals by policy (projectKeyDenied), the
// record names the key's own project when the key exists, so that its
// owners see the attempt, else the addressed one.
func (s *Server) auditScopeRefusal(c echo.Context, rt *route, caller keyservice.Caller, cause error) {
	ctx := c.Request().Context()
	project := ""
	if p, err := addressedProject(c); err == nil {
		project = p
	}
	id := c.Param("id")
	if id != "" {
		if k, err := s.svc.LoadProjectKeyByID(ctx, id); err == nil {
			project = k.ProjectID
		}
	}
	s.svc.AuditProjectKeyAccess(ctx, caller, rt.audit, project, auditKeyID(id), cause, scopeDetail(caller))
}

// scopeDetail names a refused caller's token scope for the audit trail,
// where its empty project would say nothing.
func scopeDetail(caller keyservice.Caller) string {
	switch {
	case caller.SystemScope != "":
		return "system-scoped token"
	case caller.DomainID != "":
		return "token scoped to domain " + caller.DomainID
	}
	return "token not project-scoped"
}

// wrap applies a route's authentication, token scope, body limit and
// policy: collection routes are authorized here, and no route with a rule
// can answer 2xx unless a policy check passed.
func (s *Server) wrap(shared route) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		// The route's own value is shared by every request running at once:
		// a request whose rule depends on it (ruleOf) gets a copy.
		rt := &shared
		if shared.ruleOf != nil {
			own := shared
			own.rule = shared.ruleOf(c)
			rt = &own
		}
		st.route = rt
		if rt.rule != "" {
			s.guard(c, st)
			caller, err := s.authn.Authenticate(c.Request().Context(), c.Request())
			if err != nil {
				return err
			}
			caller.RequestID = st.id
			st.caller, st.hasCaller = caller, true
			if err := checkScope(c, rt, caller); err != nil {
				if rt.audit != "" {
					s.auditScopeRefusal(c, rt, caller, err)
				}
				return err
			}
			if rt.collection {
				if err := s.authorize(c, collectionTarget(c)); err != nil {
					return err
				}
			}
		}
		if err := readBody(c, st, rt.bodyLimit); err != nil {
			return err
		}
		if rt.rule != "" && rt.load != nil {
			if err := s.loadAuthorized(c, st, rt); err != nil {
				return err
			}
		}
		return rt.handler(c)
	}
}

// loadAuthorized loads a resource route's resource and checks the route's
// rule against its stored row, before the handler runs.
func (s *Server) loadAuthorized(c echo.Context, st *reqState, rt *route) error {
	if rt.validate != nil {
		if err := rt.validate(c); err != nil {
			return err
		}
	}
	res, target, err := rt.load(c)
	if err != nil {
		return err
	}
	if err := s.authorize(c, target); err != nil {
		if rt.denied != nil {
			return rt.denied(c, res, err)
		}
		return err
	}
	st.resource = res
	return nil
}

// loaded returns the resource the route wrapper loaded and authorized for
// this request. It fails closed: a handler of a route without that loader
// gets an error, never a resource nobody checked.
func loaded[T any](c echo.Context) (T, error) {
	st := stateOf(c)
	res, ok := st.resource.(T)
	if !ok {
		var zero T
		var method, path string
		if st.route != nil {
			method, path = st.route.method, st.route.path
		}
		return zero, fmt.Errorf("route %s %s: no authorized %T was loaded", method, path, zero)
	}
	return res, nil
}

// policyGuard records whether a policy check passed for the request.
type policyGuard struct {
	passed bool
}

// guard makes sure no 2xx leaves a route with a rule unless authorize
// passed: a handler that forgot its check answers 500 (and an error is
// logged) instead of handing out what it guards. The decision is the
// response writer's (guardWriter), so it holds whichever way the handler
// writes: through echo's Response, through the http.ResponseWriter under
// it, by flushing, or by hijacking the connection.
func (s *Server) guard(c echo.Context, st *reqState) {
	resp := c.Response()
	// No allocation of its own: the writer is part of the request's state.
	w := &st.guard
	*w = guardWriter{ResponseWriter: resp.Writer, s: s, c: c, installed: true}
	resp.Writer = w
	// Echo's own WriteHeader runs its Before hooks first: deciding there
	// too lets it pass the 500 down, so its Status stays true.
	resp.Before(func() {
		if w.decide(resp.Status) {
			resp.Status = http.StatusInternalServerError
		}
	})
}

// refuse reports whether a final status code must not go out: a 2xx
// without a passed check. It logs the refusal and turns the answer's
// headers into those of a 500.
func (w *guardWriter) refuse(code int) bool {
	if code < 200 || code > 299 || w.guard.passed {
		return false
	}
	c := w.c
	var path, rule string
	if rt := stateOf(c).route; rt != nil {
		path, rule = rt.path, rt.rule
	}
	w.s.log.Error().Str("request_id", requestID(c)).Str("method", c.Request().Method).
		Str("route", path).Str("rule", rule).Int("status", code).
		Msg("refused a success answer that no policy check allowed (handler without authorize)")
	// Whatever the handler set for its answer goes: a Location or a
	// key algorithm would confirm what the 500 withholds.
	h := w.Header()
	for _, k := range []string{echo.HeaderLocation, echo.HeaderContentLength, echo.HeaderContentEncoding, "X-Arca-Key-Algorithm"} {
		h.Del(k)
	}
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	// The access log and the metrics read the status from echo's
	// Response, which a write past it does not update.
	c.Response().Status = http.StatusInternalServerError
	return true
}

// guardWriter is the response writer of every route with a rule. The first
// final status written through it is decided once: a 2xx without a passed
// check (refuse) becomes a 500 with an error body, and the handler's body
// is discarded.
type guardWriter struct {
	http.ResponseWriter
	guard       policyGuard
	installed   bool // guard installed it: authorize records passes in it
	s           *Server
	c           echo.Context
	decided     bool // a final status went through decide
	blocked     bool // and it was refused
	wroteHeader bool
}

// decide makes the decision for the final status code, once.
func (w *guardWriter) decide(code int) bool {
	if code < 200 {
		return false // informational: no answer yet
	}
	if !w.decided {
		w.decided = true
		w.blocked = w.refuse(code)
	}
	return w.blocked
}

func (w *guardWriter) WriteHeader(code int) {
	if w.wroteHeader || !w.decide(code) {
		if code >= 200 {
			w.wroteHeader = true
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	code = http.StatusInternalServerError
	w.ResponseWriter.WriteHeader(code)
	body, _ := json.Marshal(errorBody{Code: code, Title: titleOf(code),
		Description: "The server has either erred or is incapable of performing the requested operation."})
	_, _ = w.ResponseWriter.Write(body)
}

func (w *guardWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		// As net/http does: a body without a status is a 200.
		w.WriteHeader(http.StatusOK)
	}
	if w.blocked {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// FlushError flushes through the guard: a flush before any status sends a
// 200, which must be decided first. http.ResponseController (and echo's
// Flush) use it instead of unwrapping to the connection's writer.
func (w *guardWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection only to a request whose policy check passed:
// bytes written on a hijacked connection would pass no guard.
func (w *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader || w.decide(http.StatusOK) {
		return nil, nil, errors.New("hijack refused: no policy check allowed this request, or it has answered")
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer for
// what the guard does not decide (deadlines, full duplex).
func (w *guardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readBody reads the whole request body up to limit, answering 413 beyond
// it. Bodies are small in this API; reading them up front keeps handlers
// simple and lets a slow client be cut off by the server's read timeout.
func readBody(c echo.Context, st *reqState, limit int64) error {
	r := c.Request()
	if r.Body == nil || r.Body == http.NoBody {
		// net/http's body of a request that declared none (most GETs):
		// nothing to read, and no reader, limit nor buffer to allocate.
		return nil
	}
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
	st.body = body
	return nil
}

func body(c echo.Context) []byte { return stateOf(c).body }

func callerOf(c echo.Context) keyservice.Caller { return stateOf(c).caller }

// authorize checks the current route's rule against target, and records
// a pass for the route's guard.
func (s *Server) authorize(c echo.Context, target Target) error {
	st := stateOf(c)
	if st.route == nil || st.route.rule == "" {
		return nil
	}
	if err := s.authz.Authorize(c.Request().Context(), st.route.rule, st.caller, target); err != nil {
		return err
	}
	if st.guard.installed {
		st.guard.guard.passed = true
	}
	return nil
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
