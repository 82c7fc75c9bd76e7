package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/sqlstore"
)

var update = flag.Bool("update", false, "rewrite docs/policy.md from the policy matrix")

// The project every fixture belongs to, and the one of "admin of another project".
const (
	projP = "proj-p"
	projQ = "proj-q"
)

// testAuthn maps the X-Test-Caller header to a caller: the tests below need
// callers no-auth mode cannot express (domain-scoped, X-Service-Token).
type testAuthn map[string]keyservice.Caller

func (a testAuthn) Authenticate(_ context.Context, r *http.Request) (keyservice.Caller, error) {
	c, ok := a[r.Header.Get("X-Test-Caller")]
	if !ok {
		return keyservice.Caller{}, keyservice.Errorf(ErrUnauthenticated, "unknown test caller")
	}
	c.Roles = slices.Clone(c.Roles)
	return c, nil
}

func (testAuthn) Challenge() string { return "" }

// recordingAuthz records every decision of the real authorizer.
type recordingAuthz struct {
	next  Authorizer
	mu    sync.Mutex
	calls []authzCall
}

type authzCall struct {
	rule    string
	allowed bool
}

func (r *recordingAuthz) Authorize(ctx context.Context, rule string, caller keyservice.Caller, target Target) error {
	err := r.next.Authorize(ctx, rule, caller, target)
	r.mu.Lock()
	r.calls = append(r.calls, authzCall{rule, err == nil})
	r.mu.Unlock()
	return err
}

func (r *recordingAuthz) take() []authzCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// Keystone's implied roles: admin implies member implies reader.
var (
	adminRoles  = []string{"admin", "member", "reader"}
	memberRoles = []string{"member", "reader"}
)

// owner creates every fixture; it is not a column of the matrix.
var owner = keyservice.Caller{ProjectID: projP, UserID: "owner", Roles: adminRoles}

// systemOwner seeds project quotas.
var systemOwner = keyservice.Caller{SystemScope: keyservice.SystemScopeAll, UserID: "sys-owner", Roles: adminRoles}

type authzEnv struct {
	t    *testing.T
	svc  *keyservice.Service
	srv  *Server
	rec  *recordingAuthz
	logs *bytes.Buffer
}

func newAuthzEnv(t *testing.T, callers testAuthn, overrides map[string]string) *authzEnv {
	t.Helper()
	db := testenv.SQLite(t)
	master := make([]byte, envelope.KeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "test", Key: master}})
	if err != nil {
		t.Fatal(err)
	}
	// A deactivated key is destroyable at once: the matrix is about policy,
	// the destroy guard has its own tests.
	store, err := sqlstore.New(db, dbconn.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	// Two secret stores, so that every /v1/secret-stores route answers.
	keys := func() envelope.MasterKeys { return ring }
	svc, err := keyservice.New(store, ring, keyservice.Options{Logger: zerolog.Nop(), ActiveKeyCacheTTL: time.Nanosecond,
		SecretStores: []keyservice.SecretStoreDef{{Name: "file", GlobalDefault: true, Keys: keys}, {Name: "pkcs11", Keys: keys}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	enforcer, err := policy.New(policy.Options{EnforceNewDefaults: true, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	all := testAuthn{"owner": owner, "system-owner": systemOwner}
	for k, v := range callers {
		all[k] = v
	}
	rec := &recordingAuthz{next: &PolicyAuthorizer{Enforcer: enforcer}}
	var logs bytes.Buffer
	srv, err := New(svc, Options{HostHref: "http://arca.test", Authenticator: all, Authorizer: rec,
		Logger: zerolog.New(&syncWriter{w: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	return &authzEnv{t: t, svc: svc, srv: srv, rec: rec, logs: &logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (e *authzEnv) do(who, method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-Test-Caller", who)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if strings.HasSuffix(path, "/payload") || strings.Contains(path, "/payload?") {
		req.Header.Set("Accept", "*/*")
	}
	if method == http.MethodPut && strings.Count(path, "/") == 3 && strings.HasPrefix(path, "/v1/secrets/") {
		req.Header.Set("Content-Type", "text/plain") // PUT /v1/secrets/{id} carries the payload
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

// must sends a fixture request and returns the last path element of the
// ref its answer names ("" when none).
func (e *authzEnv) must(who, method, path, body, refKey string) string {
	e.t.Helper()
	w := e.do(who, method, path, body)
	if w.Code/100 != 2 {
		e.t.Fatalf("fixture %s %s: %d %s", method, path, w.Code, w.Body)
	}
	if refKey == "" {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		e.t.Fatalf("fixture %s %s: %v %s", method, path, err, w.Body)
	}
	ref, _ := m[refKey].(string)
	return ref[strings.LastIndex(ref, "/")+1:]
}

// fixture is one set of resources of project P, created by owner: every
// route below has something real to act on.
type fixture struct {
	secret, emptySecret, secret2, container, order, oldKey string
	store                                                  string // a secret store's id
}

func (e *authzEnv) seed() fixture {
	e.t.Helper()
	e.must("system-owner", "PUT", "/v1/project-quotas/"+projP,
		`{"project_quotas":{"secrets":-1,"orders":-1,"containers":-1,"consumers":-1,"cas":-1}}`, "")
	var f fixture
	stores, err := e.svc.ListSecretStores()
	if err != nil {
		e.t.Fatal(err)
	}
	f.store = stores[1].ID
	// Every matrix caller's project prefers a store, so that reading and
	// removing the preference answer 2xx when policy allows them.
	for _, p := range []string{projP, projQ, "service"} {
		if err := e.svc.SetPreferredSecretStore(context.Background(), p, f.store); err != nil {
			e.t.Fatal(err)
		}
	}
	f.secret = e.must("owner", "POST", "/v1/secrets", `{"name":"s","payload":"p","payload_content_type":"text/plain"}`, "secret_ref")
	f.emptySecret = e.must("owner", "POST", "/v1/secrets", `{"name":"empty"}`, "secret_ref")
	f.secret2 = e.must("owner", "POST", "/v1/secrets", `{"name":"s2","payload":"p2","payload_content_type":"text/plain"}`, "secret_ref")
	e.must("owner", "PUT", "/v1/secrets/"+f.secret+"/metadata", `{"metadata":{"color":"blue"}}`, "")
	e.must("owner", "POST", "/v1/secrets/"+f.secret+"/consumers", `{"service":"image","resource_type":"image","resource_id":"r1"}`, "")
	f.container = e.must("owner", "POST", "/v1/containers",
		`{"type":"generic","secret_refs":[{"name":"s","secret_ref":"http://arca.test/v1/secrets/`+f.secret+`"}]}`, "container_ref")
	e.must("owner", "POST", "/v1/containers/"+f.container+"/consumers", `{"name":"lb","URL":"u"}`, "")
	f.order = e.must("owner", "POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`, "order_ref")
	f.oldKey = e.must("owner", "GET", "/v1/project-keys/active", "", "key_ref")
	e.must("owner", "POST", "/v1/project-keys/rotate", "", "")
	e.rec.take()
	return f
}

// request is what a route is called with against fixture f: path
// parameters filled with f's resources, project keys addressed with
// ?project_id=P, and a body the route accepts.
func request(rt route, f fixture) (path, body string) {
	path = rt.path
	id := ""
	switch {
	case path == "/v1/secrets/:id" && rt.method == http.MethodPut:
		id = f.emptySecret // a payload is added once
	case path == "/v1/secrets/:id" && rt.method == http.MethodDelete:
		id = f.secret2 // f.secret has consumers
	case strings.HasPrefix(path, "/v1/secrets/"):
		id = f.secret
	case strings.HasPrefix(path, "/v1/containers/"):
		id = f.container
	case strings.HasPrefix(path, "/v1/orders/"):
		id = f.order
	case strings.HasPrefix(path, "/v1/project-keys/"):
		id = f.oldKey
	case strings.HasPrefix(path, "/v1/secret-stores/"):
		id = f.store
	}
	path = strings.NewReplacer(":id", id, ":key", "color", ":project", projP).Replace(path)
	if strings.HasPrefix(path, "/v1/project-keys") {
		path += "?project_id=" + projP
	}
	bodies := map[string]string{
		"POST /v1/secrets":                    `{"name":"x","payload":"p","payload_content_type":"text/plain"}`,
		"PUT /v1/secrets/:id":                 "payload",
		"PUT /v1/secrets/:id/metadata":        `{"metadata":{"a":"b"}}`,
		"POST /v1/secrets/:id/metadata":       `{"key":"k2","value":"v"}`,
		"PUT /v1/secrets/:id/metadata/:key":   `{"key":"color","value":"red"}`,
		"POST /v1/orders":                     `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`,
		"POST /v1/containers":                 `{"type":"generic"}`,
		"POST /v1/containers/:id/secrets":     `{"name":"s2","secret_ref":"http://arca.test/v1/secrets/` + f.secret2 + `"}`,
		"DELETE /v1/containers/:id/secrets":   `{"name":"s","secret_ref":"http://arca.test/v1/secrets/` + f.secret + `"}`,
		"POST /v1/containers/:id/consumers":   `{"name":"lb2","URL":"u2"}`,
		"DELETE /v1/containers/:id/consumers": `{"name":"lb","URL":"u"}`,
		"PUT /v1/secrets/:id/acl":             `{"read":{"users":["u1"]}}`,
		"PATCH /v1/secrets/:id/acl":           `{"read":{"users":["u1"]}}`,
		"PUT /v1/containers/:id/acl":          `{"read":{"users":["u1"]}}`,
		"PATCH /v1/containers/:id/acl":        `{"read":{"users":["u1"]}}`,
		"POST /v1/secrets/:id/consumers":      `{"service":"image","resource_type":"image","resource_id":"r2"}`,
		"DELETE /v1/secrets/:id/consumers":    `{"service":"image","resource_type":"image","resource_id":"r1"}`,
		"PUT /v1/project-quotas/:project":     `{"project_quotas":{"secrets":10}}`,
	}
	return path, bodies[rt.method+" "+rt.path]
}

func (e *authzEnv) policyRoutes() []route {
	var rts []route
	for _, rt := range e.srv.routes() {
		if rt.rule != "" {
			rts = append(rts, rt)
		}
	}
	return rts
}

// TestRoutesWithoutRule: the only routes without a policy rule are
// discovery and health, as in Barbican.
// TestEveryRouteAuthorizedByTheWrapper: every route with a rule is
// authorized by the route wrapper before its handler runs, either on the
// caller's project (collection) or on the stored row its loader returns;
// and no handler authorizes on its own (only the wrapper calls authorize),
// so no handler can check a target of its own making.
func TestEveryRouteAuthorizedByTheWrapper(t *testing.T) {
	e := newAuthzEnv(t, nil, nil)
	for _, rt := range e.srv.routes() {
		if rt.rule == "" {
			continue
		}
		if rt.collection == (rt.load != nil) {
			t.Errorf("%s %s: a route with a rule is either a collection route or has a loader (collection %v, loader %v)",
				rt.method, rt.path, rt.collection, rt.load != nil)
		}
		if rt.load == nil && (rt.denied != nil || rt.validate != nil) {
			t.Errorf("%s %s: denied and validate belong to a loader", rt.method, rt.path)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "server.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte(".authorize(")) {
			t.Errorf("%s calls authorize: only the route wrapper (server.go) does", f)
		}
	}
}

// TestBadRequestsAnsweredFirst: a resource route's own request checks
// (body, media type, paging) answer before the resource is loaded and
// authorized, as when the handlers checked first: 400 or 415 for a
// resource that does not exist and for a caller policy would refuse.
func TestBadRequestsAnsweredFirst(t *testing.T) {
	other := keyservice.Caller{ProjectID: projQ, UserID: "u-other", Roles: adminRoles}
	e := newAuthzEnv(t, testAuthn{"other": other}, nil)
	f := e.seed()
	for _, r := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"PUT", "/v1/secrets/%s", "application/json", "x", http.StatusUnsupportedMediaType},
		{"PUT", "/v1/secrets/%s/metadata", "application/json", "{}", http.StatusBadRequest},
		{"POST", "/v1/secrets/%s/metadata", "application/json", "{}", http.StatusBadRequest},
		{"PUT", "/v1/secrets/%s/metadata/color", "application/json", `{"key":"other","value":"v"}`, http.StatusBadRequest},
		{"POST", "/v1/secrets/%s/consumers", "application/json", "{}", http.StatusBadRequest},
		{"DELETE", "/v1/secrets/%s/consumers", "application/json", "{}", http.StatusBadRequest},
		{"GET", "/v1/secrets/%s/consumers?limit=x", "", "", http.StatusBadRequest},
		{"PUT", "/v1/secrets/%s/acl", "application/json", `{"read":7}`, http.StatusBadRequest},
		{"PATCH", "/v1/secrets/%s/acl", "application/json", `{"read":7}`, http.StatusBadRequest},
		{"POST", "/v1/containers/%s/secrets", "application/json", "{}", http.StatusBadRequest},
		{"DELETE", "/v1/containers/%s/secrets", "application/json", "{}", http.StatusBadRequest},
		{"POST", "/v1/containers/%s/consumers", "application/json", "{}", http.StatusBadRequest},
		{"DELETE", "/v1/containers/%s/consumers", "application/json", "{}", http.StatusBadRequest},
		{"GET", "/v1/containers/%s/consumers?limit=x", "", "", http.StatusBadRequest},
		{"PUT", "/v1/containers/%s/acl", "application/json", `{"read":7}`, http.StatusBadRequest},
		{"PATCH", "/v1/containers/%s/acl", "application/json", `{"read":7}`, http.StatusBadRequest},
	} {
		id := f.secret
		if strings.HasPrefix(r.path, "/v1/containers/") {
			id = f.container
		}
		for _, c := range []struct{ who, id string }{{"owner", "00000000-0000-4000-8000-000000000000"}, {"other", id}} {
			path := fmt.Sprintf(r.path, c.id)
			req := httptest.NewRequest(r.method, path, strings.NewReader(r.body))
			req.Header.Set("X-Test-Caller", c.who)
			if r.ctype != "" {
				req.Header.Set("Content-Type", r.ctype)
			}
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, req)
			if w.Code != r.want {
				t.Errorf("%s %s as %s: %d, want %d: %s", r.method, path, c.who, w.Code, r.want, w.Body)
			}
		}
	}
}

func TestRoutesWithoutRule(t *testing.T) {
	e := newAuthzEnv(t, nil, nil)
	var open []string
	for _, rt := range e.srv.routes() {
		if rt.rule == "" {
			open = append(open, rt.method+" "+rt.path)
		}
		if rt.rule != "" && rt.collection && rt.audit != "" {
			t.Errorf("%s %s: a collection route cannot audit its refusals", rt.method, rt.path)
		}
	}
	want := []string{"GET /", "GET /v1", "GET /healthcheck", "HEAD /healthcheck"}
	if !slices.Equal(open, want) {
		t.Fatalf("routes without a rule: %q, want %q", open, want)
	}
}

// TestDenyAllRouteWalk walks every route of the table, on resources that
// exist, with callers no rule admits: each answer must be 403 after the
// route's own rule was checked and refused. A route that answers 2xx, or
// any other status, or whose rule was not checked, fails the test: a
// handler that forgets to authorize cannot hide from it.
func TestDenyAllRouteWalk(t *testing.T) {
	everything := func() map[string]string {
		m := map[string]string{}
		for name := range policy.Defaults(true) {
			m[name] = "!"
		}
		return m
	}
	every := append(slices.Clone(adminRoles), "service", "key-manager:object-server", "key-manager:swift-filter",
		"key-manager:service-admin", "creator", "observer", "audit")
	for _, tc := range []struct {
		name      string
		caller    keyservice.Caller
		overrides map[string]string
	}{
		// The production rules, and a caller of the resources' own project with no role.
		{"default rules, roleless caller of the project", keyservice.Caller{ProjectID: projP, UserID: "mallory", Roles: []string{"nobody"}}, nil},
		// Every rule "!", and a caller of the project holding every role there is.
		{"every rule denies, all-powerful caller", keyservice.Caller{ProjectID: projP, UserID: "owner", Roles: every, IsService: true, IsAdminProject: true}, everything()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthzEnv(t, testAuthn{"x": tc.caller}, nil)
			f := e.seed()
			e = e.withPolicy(tc.overrides)
			walked := 0
			for _, rt := range e.policyRoutes() {
				path, body := request(rt, f)
				paths := []string{path}
				if rt.trailingSlash { // the same route registered with a trailing slash
					base, query, _ := strings.Cut(path, "?")
					if query != "" {
						query = "?" + query
					}
					paths = append(paths, base+"/"+query)
				}
				for _, path := range paths {
					w := e.do("x", rt.method, path, body)
					calls := e.rec.take()
					checked := slices.ContainsFunc(calls, func(c authzCall) bool { return c.rule == rt.rule && !c.allowed })
					if w.Code != http.StatusForbidden || !checked {
						t.Errorf("%s %s (%s): %d, rule checked and refused: %v (calls %v): %.200s", rt.method, path, rt.rule, w.Code, checked, calls, w.Body)
					}
					walked++
				}
			}
			if walked < len(e.policyRoutes()) {
				t.Fatalf("walked %d requests for %d routes", walked, len(e.policyRoutes()))
			}
		})
	}
}

// withPolicy swaps the authorizer's rules, keeping the data seeded with the
// default ones.
func (e *authzEnv) withPolicy(overrides map[string]string) *authzEnv {
	e.t.Helper()
	if overrides == nil {
		return e
	}
	enforcer, err := policy.New(policy.Options{EnforceNewDefaults: true, Overrides: overrides})
	if err != nil {
		e.t.Fatal(err)
	}
	e.rec.next = &PolicyAuthorizer{Enforcer: enforcer}
	return e
}

// TestUncheckedSuccessIsRefused: a handler of a route with a rule that
// answers 2xx without a passed policy check sends a 500 (and logs an
// error) instead of its body, whatever way it writes; the same handler
// with the check answers normally.
func TestUncheckedSuccessIsRefused(t *testing.T) {
	member := keyservice.Caller{ProjectID: projP, UserID: "m", Roles: memberRoles}
	e := newAuthzEnv(t, testAuthn{"member": member}, nil)
	leak := "leaked-secret-bytes"
	handlers := map[string]func(c echo.Context) error{
		"json": func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"payload": leak}) },
		"blob": func(c echo.Context) error { return c.Blob(http.StatusOK, "application/octet-stream", []byte(leak)) },
		"created": func(c echo.Context) error {
			c.Response().Header().Set("Location", "/v1/x")
			return c.String(http.StatusCreated, leak)
		},
		"empty":    func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
		"implicit": func(c echo.Context) error { _, err := c.Response().Write([]byte(leak)); return err },
		"stream": func(c echo.Context) error {
			return c.Stream(http.StatusOK, "text/plain", strings.NewReader(leak))
		},
		// Past echo's Response (and its Before hooks), straight to the
		// http.ResponseWriter under it.
		"raw": func(c echo.Context) error {
			w := c.Response().Writer
			w.Header().Set("Location", "/v1/x")
			w.WriteHeader(http.StatusCreated)
			_, err := w.Write([]byte(leak))
			return err
		},
		"raw-implicit": func(c echo.Context) error { _, err := c.Response().Writer.Write([]byte(leak)); return err },
		"raw-flush": func(c echo.Context) error {
			if err := http.NewResponseController(c.Response().Writer).Flush(); err != nil {
				return err
			}
			_, err := c.Response().Writer.Write([]byte(leak))
			return err
		},
	}
	for name, h := range handlers {
		e.srv.echo.Add(http.MethodGet, "/test/unchecked/"+name, e.srv.wrap(route{method: http.MethodGet, rule: "secrets:get", handler: h}))
		checked := func(c echo.Context) error {
			if err := e.srv.authorize(c, collectionTarget(c)); err != nil {
				return err
			}
			return h(c)
		}
		e.srv.echo.Add(http.MethodGet, "/test/checked/"+name, e.srv.wrap(route{method: http.MethodGet, rule: "secrets:get", handler: checked}))
	}
	for name := range handlers {
		t.Run(name, func(t *testing.T) {
			w := e.do("member", http.MethodGet, "/test/unchecked/"+name, "")
			if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), leak) || w.Header().Get("Location") != "" {
				t.Fatalf("unchecked: %d %v %q", w.Code, w.Header(), w.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["code"] != float64(500) || body["title"] != "Internal Server Error" {
				t.Fatalf("unchecked: body %q (%v)", w.Body, err)
			}
			w = e.do("member", http.MethodGet, "/test/checked/"+name, "")
			if w.Code/100 != 2 || (name != "empty" && !strings.Contains(w.Body.String(), leak)) {
				t.Fatalf("checked: %d %q", w.Code, w.Body)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "no policy check allowed") || strings.Contains(e.logs.String(), leak) {
		t.Fatalf("log: %s", e.logs)
	}
}

// TestLegacyPayloadReadIsADecrypt: GET /v1/secrets/{id} without a
// metadata Accept is Barbican's legacy payload read, checked against
// secret:decrypt, not secret:get: a policy that lets a caller read a
// secret's metadata but not decrypt it gives no payload this way.
func TestLegacyPayloadReadIsADecrypt(t *testing.T) {
	member := keyservice.Caller{ProjectID: projP, UserID: "m", Roles: memberRoles}
	e := newAuthzEnv(t, testAuthn{"member": member}, map[string]string{"secret:decrypt": "!"})
	f := e.seed()
	r := httptest.NewRequest(http.MethodGet, "/v1/secrets/"+f.secret, nil)
	r.Header.Set("Accept", "text/plain")
	r.Header.Set("X-Test-Caller", "member")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("legacy payload read with secret:decrypt refused: %d %q", w.Code, w.Body)
	}
	if w := e.do("member", http.MethodGet, "/v1/secrets/"+f.secret, ""); w.Code != http.StatusOK {
		t.Fatalf("metadata read: %d %q", w.Code, w.Body)
	}
}

// TestLegacyPayloadReadRuleUnderConcurrency: the rule GET /v1/secrets/{id}
// is checked under is chosen per request (ruleOf). Metadata reads running
// beside legacy payload reads must neither let a payload read through under
// secret:get nor refuse a metadata read under secret:decrypt (the choice
// was once written into the route shared by every request: a data race).
func TestLegacyPayloadReadRuleUnderConcurrency(t *testing.T) {
	member := keyservice.Caller{ProjectID: projP, UserID: "m", Roles: memberRoles}
	e := newAuthzEnv(t, testAuthn{"member": member}, map[string]string{"secret:decrypt": "!"})
	f := e.seed()
	const workers, rounds = 8, 40
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	for i := range workers {
		wg.Go(func() {
			for range rounds {
				r := httptest.NewRequest(http.MethodGet, "/v1/secrets/"+f.secret, nil)
				accept, want := "application/json", http.StatusOK
				if i%2 == 1 {
					accept, want = "text/plain", http.StatusForbidden
				}
				r.Header.Set("Accept", accept)
				r.Header.Set("X-Test-Caller", "member")
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, r)
				if w.Code != want {
					errs <- fmt.Sprintf("Accept %s: %d %q, want %d", accept, w.Code, w.Body, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// TestUncheckedHijackIsRefused: the connection is not handed to a handler
// whose route's check did not pass, where its bytes would pass no guard.
func TestUncheckedHijackIsRefused(t *testing.T) {
	member := keyservice.Caller{ProjectID: projP, UserID: "m", Roles: memberRoles}
	e := newAuthzEnv(t, testAuthn{"member": member}, nil)
	var hijackErr error
	e.srv.echo.Add(http.MethodGet, "/test/hijack", e.srv.wrap(route{method: http.MethodGet, rule: "secrets:get",
		handler: func(c echo.Context) error {
			_, _, hijackErr = http.NewResponseController(c.Response().Writer).Hijack()
			return hijackErr
		}}))
	w := e.do("member", http.MethodGet, "/test/hijack", "")
	if hijackErr == nil || errors.Is(hijackErr, http.ErrNotSupported) || w.Code != http.StatusInternalServerError {
		t.Fatalf("hijack: %v; answer %d %q", hijackErr, w.Code, w.Body)
	}
}

// The callers of the policy matrix: users of project P with each
// role, an admin of project Q, a service's token (service and admin roles
// in project service, with a valid X-Service-Token), the object servers'
// and the filter's users, a domain-scoped admin and a system-scoped admin.
var matrixCallers = []struct {
	name, title string
	caller      keyservice.Caller
}{
	{"member", "member of P", keyservice.Caller{ProjectID: projP, UserID: "u-member", Roles: memberRoles}},
	{"reader", "reader of P", keyservice.Caller{ProjectID: projP, UserID: "u-reader", Roles: []string{"reader"}}},
	{"admin", "admin of P", keyservice.Caller{ProjectID: projP, UserID: "u-admin", Roles: adminRoles}},
	{"other-admin", "admin of another project", keyservice.Caller{ProjectID: projQ, UserID: "u-other", Roles: adminRoles}},
	{"service", "`service` role (+ X-Service-Token)", keyservice.Caller{ProjectID: "service", UserID: "u-nova",
		Roles: []string{"service", "admin", "member", "reader"}, IsService: true}},
	{"object-server", "`key-manager:object-server`", keyservice.Caller{ProjectID: "service", UserID: "u-arca-object",
		Roles: []string{"key-manager:object-server"}}},
	{"filter", "`key-manager:swift-filter`", keyservice.Caller{ProjectID: "service", UserID: "u-arca-filter",
		Roles: []string{"service", "key-manager:swift-filter"}}},
	{"domain", "domain-scoped admin", keyservice.Caller{DomainID: "dom", UserID: "u-domain", UserDomainID: "dom", Roles: adminRoles}},
	{"system", "system-scoped admin", keyservice.Caller{SystemScope: keyservice.SystemScopeAll, UserID: "u-system", Roles: adminRoles}},
}

// policyMatrix is who may call each route, with the default rules, on
// resources of project P created by another user of P (not private, no
// ACL); project keys are addressed with ?project_id=P. It is asserted by
// TestPolicyMatrix and rendered into docs/policy.md.
var policyMatrix = map[string][]string{
	"POST /v1/secrets":                       {"member", "admin", "other-admin", "service"},
	"GET /v1/secrets":                        {"member", "admin", "other-admin", "service"},
	"GET /v1/secrets/:id":                    {"member", "admin"},
	"GET /v1/secrets/:id/payload":            {"member", "admin"},
	"PUT /v1/secrets/:id":                    {"member", "admin"},
	"DELETE /v1/secrets/:id":                 {"member", "admin"},
	"GET /v1/secrets/:id/metadata":           {"member", "admin"},
	"PUT /v1/secrets/:id/metadata":           {"member", "admin"},
	"POST /v1/secrets/:id/metadata":          {"member", "admin"},
	"GET /v1/secrets/:id/metadata/:key":      {"member", "admin"},
	"PUT /v1/secrets/:id/metadata/:key":      {"member", "admin"},
	"DELETE /v1/secrets/:id/metadata/:key":   {"member", "admin"},
	"POST /v1/orders":                        {"member", "admin", "other-admin", "service"},
	"GET /v1/orders":                         {"member", "admin", "other-admin", "service"},
	"GET /v1/orders/:id":                     {"member", "admin"},
	"DELETE /v1/orders/:id":                  {"member", "admin"},
	"POST /v1/containers":                    {"member", "admin", "other-admin", "service"},
	"GET /v1/containers":                     {"member", "admin", "other-admin", "service"},
	"GET /v1/containers/:id":                 {"member", "admin"},
	"DELETE /v1/containers/:id":              {"member", "admin"},
	"POST /v1/containers/:id/secrets":        {"member", "admin"},
	"DELETE /v1/containers/:id/secrets":      {"member", "admin"},
	"GET /v1/containers/:id/consumers":       {"member", "admin"},
	"POST /v1/containers/:id/consumers":      {"member", "admin"},
	"DELETE /v1/containers/:id/consumers":    {"member", "admin"},
	"GET /v1/secrets/:id/acl":                {"member", "admin"},
	"PUT /v1/secrets/:id/acl":                {"member", "admin"},
	"PATCH /v1/secrets/:id/acl":              {"member", "admin"},
	"DELETE /v1/secrets/:id/acl":             {"member", "admin"},
	"GET /v1/containers/:id/acl":             {"member", "admin"},
	"PUT /v1/containers/:id/acl":             {"member", "admin"},
	"PATCH /v1/containers/:id/acl":           {"member", "admin"},
	"DELETE /v1/containers/:id/acl":          {"member", "admin"},
	"GET /v1/secrets/:id/consumers":          {"member", "admin"},
	"POST /v1/secrets/:id/consumers":         {"member", "admin"},
	"DELETE /v1/secrets/:id/consumers":       {"member", "admin"},
	"GET /v1/quotas":                         {"member", "reader", "admin", "other-admin", "service"},
	"GET /v1/project-quotas":                 {"system"},
	"GET /v1/project-quotas/:project":        {"system"},
	"PUT /v1/project-quotas/:project":        {"system"},
	"DELETE /v1/project-quotas/:project":     {"system"},
	"GET /v1/secret-stores":                  {"member", "reader", "admin", "other-admin", "service", "system"},
	"GET /v1/secret-stores/global-default":   {"member", "reader", "admin", "other-admin", "service", "system"},
	"GET /v1/secret-stores/preferred":        {"member", "reader", "admin", "other-admin", "service"},
	"GET /v1/secret-stores/:id":              {"member", "reader", "admin", "other-admin", "service", "system"},
	"POST /v1/secret-stores/:id/preferred":   {"admin", "other-admin", "service"},
	"DELETE /v1/secret-stores/:id/preferred": {"admin", "other-admin", "service"},
	"GET /v1/project-keys/active":            {"member", "admin", "object-server", "filter"},
	"POST /v1/project-keys/rotate":           {"admin", "system"},
	"GET /v1/project-keys":                   {"member", "reader", "admin", "system"},
	"GET /v1/project-keys/:id":               {"member", "reader", "admin", "system"},
	"GET /v1/project-keys/:id/payload":       {"object-server"},
	"GET /v1/project-keys/:id/listing-key":   {"member", "reader", "admin", "filter"},
	"DELETE /v1/project-keys/:id":            {"admin", "system"},
}

// firstKeyMatrix is who makes P's first key by asking for its active key
// (?project_id=P) while P has none: project_key:create, asked only then.
// The filter's role reads active ids but never creates a key.
var firstKeyMatrix = []string{"member", "admin", "object-server"}

// TestPolicyMatrix calls every route as every matrix caller, each on fresh
// resources when the route changes something, and compares who got through
// with policyMatrix. A refusal is a 403, or a 404 after policy refused (the
// API does not confirm another project's orders and keys exist).
func TestPolicyMatrix(t *testing.T) {
	callers := testAuthn{}
	for _, c := range matrixCallers {
		callers[c.name] = c.caller
	}
	e := newAuthzEnv(t, callers, nil)
	shared := e.seed()
	routes := e.policyRoutes()
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		seen[key] = true
		want, ok := policyMatrix[key]
		if !ok {
			t.Errorf("%s: not in policyMatrix", key)
			continue
		}
		for _, c := range matrixCallers {
			f := shared
			if rt.method != http.MethodGet {
				f = e.seed()
			}
			path, body := request(rt, f)
			w := e.do(c.name, rt.method, path, body)
			calls := e.rec.take()
			denied := slices.ContainsFunc(calls, func(a authzCall) bool { return !a.allowed })
			var got bool
			switch {
			case w.Code/100 == 2:
				got = true
			case w.Code == http.StatusForbidden, w.Code == http.StatusNotFound && denied:
			default:
				t.Errorf("%s as %s: %d (neither allowed nor refused by policy): %.200s", key, c.name, w.Code, w.Body)
				continue
			}
			if got != slices.Contains(want, c.name) {
				t.Errorf("%s as %s: allowed = %v, want %v (%d %.200s)", key, c.name, got, !got, w.Code, w.Body)
			}
		}
	}
	for key := range policyMatrix {
		if !seen[key] {
			t.Errorf("policyMatrix names %s, which is not a route", key)
		}
	}
	// The first key: each caller alone on a database where P has no key.
	for _, c := range matrixCallers {
		fe := newAuthzEnv(t, callers, nil)
		w := fe.do(c.name, http.MethodGet, "/v1/project-keys/active?project_id="+projP, "")
		denied := slices.ContainsFunc(fe.rec.take(), func(a authzCall) bool { return !a.allowed })
		made := w.Code == http.StatusOK
		if !made && w.Code != http.StatusForbidden && (w.Code != http.StatusNotFound || !denied) {
			t.Errorf("first key as %s: %d (neither allowed nor refused by policy): %.200s", c.name, w.Code, w.Body)
			continue
		}
		if made != slices.Contains(firstKeyMatrix, c.name) {
			t.Errorf("first key as %s: made = %v, want %v (%d %.200s)", c.name, made, !made, w.Code, w.Body)
		}
		list, _, err := fe.svc.ListProjectKeys(context.Background(), projP, 10, 0)
		if err != nil || len(list) != map[bool]int{true: 1, false: 0}[made] {
			t.Errorf("first key as %s: P has %d keys (%v) after a %d", c.name, len(list), err, w.Code)
		}
	}

	doc := renderPolicyDoc(routes)
	path := filepath.Join("..", "..", "docs", "policy.md")
	if *update {
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("%s is stale (%v): run go test ./keyservice/api -run TestPolicyMatrix -update", path, err)
	}
}

// renderPolicyDoc writes docs/policy.md: the matrix, and what it means.
func renderPolicyDoc(routes []route) []byte {
	var b bytes.Buffer
	b.WriteString(`# Who may call what: arca-api's policy matrix

<!-- Generated by TestPolicyMatrix (keyservice/api/authz_internal_test.go) from the table it
asserts; edit the table and run: go test ./keyservice/api -run TestPolicyMatrix -update -->

Every route of arca-api with the default policy (` + "`[oslo_policy] enforce_new_defaults = true`" + `, no
policy file), called on resources of project P created by another member of P (not private, no
ACL). Project-key routes are called with ` + "`?project_id=P`" + `. ✓: the call succeeds; ·: 403 (or 404 where the
API does not confirm that another project's order or key exists). On the collection routes (list,
create, ` + "`GET /v1/quotas`" + `) a caller always acts in its own project: a ✓ for the admin of another
project there means it lists or creates in that project, never in P. The test that renders this
file makes every one of these calls against a real database and fails when an answer differs.

Callers (roles as Keystone puts them in tokens: admin implies member implies reader):

`)
	for _, c := range matrixCallers {
		roles := strings.Join(c.caller.Roles, ", ")
		scope := "project " + c.caller.ProjectID
		switch {
		case c.caller.DomainID != "":
			scope = "domain-scoped token"
		case c.caller.SystemScope != "":
			scope = "system-scoped token"
		}
		extra := ""
		if c.caller.IsService {
			extra = ", with a valid X-Service-Token"
		}
		fmt.Fprintf(&b, "- **%s**: %s; roles %s%s.\n", c.name, scope, roles, extra)
	}
	b.WriteString(`
How the decisions are made:

- **One authorizer.** Keystone mode and no-auth mode feed the same oslo-style policy engine
  (` + "`internal/policy`" + `); only where the caller's identity comes from differs.
- **Token scope first.** Every project-owned resource needs a project-scoped token: a domain- or
  system-scoped token is refused with 403 "this operation requires a project-scoped token" before
  policy runs. System-scoped tokens reach only the routes marked in the route table: project quotas,
  and project-key list, read, rotate and destroy when they name the project with ` + "`?project_id=`" + `.
  (Barbican's consumer rules also name ` + "`rule:system_admin`" + `; the consumer routes still need a
  project-scoped token here, because a consumer is registered on behalf of a project.)
- **Enforced by the route table.** Every route is checked by the route wrapper before its
  handler runs: collection routes (list, create, quotas) on the caller's project, resource routes
  on the stored row that the loader declared in the route table fetches (the handler then gets
  that row); no handler checks on its own. A route with a rule cannot answer 2xx unless a check
  passed, whichever way it writes: such an answer becomes a 500 and an error in the log.
  ` + "`TestDenyAllRouteWalk`" + ` calls every route with callers no rule admits and expects 403 from each.
- **Barbican's rules, exactly.** The Barbican rules are Barbican 15's (a test compares them with
  ` + "`oslopolicy-sample-generator --namespace barbican`" + `): an admin of one project cannot read or
  delete another project's secrets; project quotas belong to a system-scoped reader (read) or admin.
- **Project keys.** ` + "`key-manager:object-server`" + ` (arca-object-server) reads key material and
  active key ids of any project; ` + "`key-manager:swift-filter`" + ` (arca-swift-filter) active key ids
  only: it reads the id of a key that exists but never makes a project's first key
  (` + "`project_key:create`" + `, asked only when the project has no active key: the object servers' role
  or a member of the project); it then forwards the write without a key id, and the object server,
  which Swift let write to the account, makes the key. The plain ` + "`service`" + ` and ` + "`admin`" + ` roles
  and an X-Service-Token grant nothing on another project's keys. Rotation and destruction: the project's admin,
  ` + "`key-manager:service-admin`" + ` or a system-scoped admin; every attempt is audited.
- **No-auth mode** (` + "`auth_strategy = noauth`" + `, development only): X-Project-Id, X-User-Id and
  X-Roles are trusted; without X-Roles the caller holds admin, member and reader (a project admin's
  token), so ` + "`make run`" + ` and the README's examples work. ` + "`OpenStack-System-Scope: all`" + `
  instead of X-Project-Id makes a system-scoped caller.

Rules and defaults: ` + "`etc/arca/policy.yaml.sample`" + `; project keys: [project-keys.md](project-keys.md).

`)
	b.WriteString("| route | rule |")
	for _, c := range matrixCallers {
		fmt.Fprintf(&b, " %s |", c.name)
	}
	b.WriteString("\n| --- | --- |")
	for range matrixCallers {
		b.WriteString(" :-: |")
	}
	b.WriteString("\n")
	for _, rt := range routes {
		allowed := policyMatrix[rt.method+" "+rt.path]
		path := strings.NewReplacer(":id", "{id}", ":key", "{key}", ":project", "{project}").Replace(rt.path)
		fmt.Fprintf(&b, "| `%s %s` | `%s` |", rt.method, path, rt.rule)
		for _, c := range matrixCallers {
			mark := "·"
			if slices.Contains(allowed, c.name) {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
		if rt.rule == "project_key:get_active" {
			b.WriteString("| `GET /v1/project-keys/active`, P without a key yet: makes P's first key | `project_key:create` |")
			for _, c := range matrixCallers {
				mark := "·"
				if slices.Contains(firstKeyMatrix, c.name) {
					mark = "✓"
				}
				fmt.Fprintf(&b, " %s |", mark)
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// TestScopeRefusalsAudited: a project-key operation refused for its token's
// scope, before policy runs, is audited like one policy refused: denied,
// under the key's own project (else the addressed one), with the scope in
// the detail.
func TestScopeRefusalsAudited(t *testing.T) {
	domain := keyservice.Caller{DomainID: "dom", UserID: "u-domain", Roles: adminRoles}
	system := keyservice.Caller{SystemScope: keyservice.SystemScopeAll, UserID: "u-system", Roles: adminRoles}
	e := newAuthzEnv(t, testAuthn{"domain": domain, "system": system}, nil)
	f := e.seed()
	for _, r := range []struct{ who, method, path, action, detail string }{
		{"domain", "POST", "/v1/project-keys/rotate?project_id=" + projP, keyservice.AuditRotate, "token scoped to domain dom"},
		{"domain", "DELETE", "/v1/project-keys/" + f.oldKey + "?project_id=" + projP, keyservice.AuditDestroy, "token scoped to domain dom"},
		{"system", "DELETE", "/v1/project-keys/" + f.oldKey, keyservice.AuditDestroy, "system-scoped token"},
		{"system", "GET", "/v1/project-keys/" + f.oldKey + "/payload?project_id=" + projP, keyservice.AuditPayload, "system-scoped token"},
	} {
		if w := e.do(r.who, r.method, r.path, ""); w.Code != http.StatusForbidden {
			t.Fatalf("%s %s as %s: %d %s", r.method, r.path, r.who, w.Code, w.Body)
		}
	}
	recs, err := e.svc.ProjectKeyAudit(context.Background(), keyservice.KeyAuditFilter{ProjectID: projP, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var denied []string
	for _, rec := range recs {
		if rec.Outcome == keyservice.OutcomeDenied {
			denied = append(denied, rec.Action+" "+rec.ProjectID+" "+rec.KeyID+" "+rec.UserID+" "+rec.Detail)
		}
	}
	want := []string{
		keyservice.AuditRotate + " " + projP + "  u-domain token scoped to domain dom",
		keyservice.AuditDestroy + " " + projP + " " + f.oldKey + " u-domain token scoped to domain dom",
		keyservice.AuditDestroy + " " + projP + " " + f.oldKey + " u-system system-scoped token",
		keyservice.AuditPayload + " " + projP + " " + f.oldKey + " u-system system-scoped token",
	}
	if !slices.Equal(denied, want) {
		t.Fatalf("denied audit records:\n got %q\nwant %q", denied, want)
	}
}
