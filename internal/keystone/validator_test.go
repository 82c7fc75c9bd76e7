package keystone

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeystone answers the two Keystone calls the Validator makes. It exists for
// what a real Keystone cannot show quickly: clocks, expiry, failures, re-auth.
// The behaviour against the real service is in keystone_real_test.go.
type fakeKeystone struct {
	t       *testing.T
	srv     *httptest.Server
	gets    atomic.Int64
	auths   atomic.Int64
	mu      sync.Mutex
	tokens  map[string]map[string]any // subject token -> "token" object
	svcOK   string                    // the service token Keystone currently accepts
	getCode int                       // when non-zero, GET answers this
}

func newFake(t *testing.T) *fakeKeystone {
	f := &fakeKeystone{t: t, tokens: map[string]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v3/auth/tokens" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		n := f.auths.Add(1)
		f.svcOK = "svc-" + string(rune('0'+n))
		w.Header().Set("X-Subject-Token", f.svcOK)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
			"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": []any{},
			"user": map[string]any{"id": "svc-user"}, "project": map[string]any{"id": "svc-proj"}}})
	case http.MethodGet:
		f.gets.Add(1)
		if r.Header.Get("X-Auth-Token") != f.svcOK {
			http.Error(w, `{"error":{"code":401}}`, http.StatusUnauthorized)
			return
		}
		if f.getCode != 0 {
			http.Error(w, "{}", f.getCode)
			return
		}
		tok, ok := f.tokens[r.Header.Get("X-Subject-Token")]
		if !ok {
			http.Error(w, `{"error":{"code":404,"message":"Could not find token: `+r.Header.Get("X-Subject-Token")+`"}}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakeKeystone) add(subject string, expires time.Time, scope map[string]any, roles ...string) {
	var rs []any
	for _, r := range roles {
		rs = append(rs, map[string]any{"id": r + "-id", "name": r})
	}
	tok := map[string]any{
		"expires_at": expires.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  expires.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		"audit_ids":  []string{"audit-" + subject},
		"user":       map[string]any{"id": "u-" + subject, "name": "user " + subject, "domain": map[string]any{"id": "default"}},
		"roles":      rs,
	}
	for k, v := range scope {
		tok[k] = v
	}
	f.mu.Lock()
	f.tokens[subject] = tok
	f.mu.Unlock()
}

var projectScope = map[string]any{"project": map[string]any{"id": "p1", "name": "demo", "domain": map[string]any{"id": "default"}}}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestValidator(t *testing.T, f *fakeKeystone, c *clock, mod func(*Config)) *Validator {
	t.Helper()
	cfg := Config{Credentials: Credentials{AuthURL: f.srv.URL + "/v3", Username: "arca", Password: "pw", ProjectName: "service"}}
	if mod != nil {
		mod(&cfg)
	}
	opts := []Option{}
	if c != nil {
		opts = append(opts, WithClock(c.now))
	}
	v, err := NewValidator(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCacheNeverOutlivesTokenExpiry(t *testing.T) {
	f := newFake(t)
	c := &clock{t: time.Now()}
	v := newTestValidator(t, f, c, nil) // TokenCacheTime 300s
	f.add("short", c.now().Add(60*time.Second), projectScope, "member")
	ctx := context.Background()

	tok, err := v.Validate(ctx, "short")
	if err != nil {
		t.Fatal(err)
	}
	if tok.ProjectID != "p1" || tok.UserID != "u-short" || !tok.HasRole("MEMBER") {
		t.Fatalf("token = %+v", tok)
	}
	c.advance(59 * time.Second)
	if _, err := v.Validate(ctx, "short"); err != nil || f.gets.Load() != 1 {
		t.Fatalf("at 59s: err=%v gets=%d, want a cache hit", err, f.gets.Load())
	}
	c.advance(2 * time.Second) // 61s: past expiry, well within TokenCacheTime
	if _, err := v.Validate(ctx, "short"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("at 61s: err=%v, want ErrInvalidToken", err)
	}
	if f.gets.Load() != 2 {
		t.Fatalf("gets = %d: an expired token must not be answered from the cache", f.gets.Load())
	}
}

func TestCacheTimeBounds(t *testing.T) {
	f := newFake(t)
	c := &clock{t: time.Now()}
	v := newTestValidator(t, f, c, func(cfg *Config) { cfg.TokenCacheTime = 100 * time.Second })
	f.add("long", c.now().Add(time.Hour), projectScope, "member")
	ctx := context.Background()
	for _, step := range []struct {
		advance  time.Duration
		wantGets int64
	}{{0, 1}, {99 * time.Second, 1}, {2 * time.Second, 2}, {50 * time.Second, 2}} {
		c.advance(step.advance)
		if _, err := v.Validate(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		if got := f.gets.Load(); got != step.wantGets {
			t.Fatalf("after %v: gets = %d, want %d", step.advance, got, step.wantGets)
		}
	}
	if v.CacheHits() != 2 || v.CacheMisses() != 2 {
		t.Fatalf("hits=%d misses=%d, want 2/2", v.CacheHits(), v.CacheMisses())
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFake(t)
	c := &clock{t: time.Now()}
	v := newTestValidator(t, f, c, nil)
	ctx := context.Background()
	for range 10 {
		if _, err := v.Validate(ctx, "bogus"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	}
	if f.gets.Load() != 1 {
		t.Fatalf("gets = %d, want 1 (invalid tokens are cached briefly)", f.gets.Load())
	}
	c.advance(DefaultNegativeCacheTime + time.Second)
	f.add("bogus", c.now().Add(time.Hour), projectScope, "member") // e.g. a token Keystone learned late
	if _, err := v.Validate(ctx, "bogus"); err != nil {
		t.Fatalf("after the negative TTL: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	f := newFake(t)
	v := newTestValidator(t, f, nil, nil)
	ctx := context.Background()
	f.add("unscoped", time.Now().Add(time.Hour), nil, "member")
	f.add("domain", time.Now().Add(time.Hour), map[string]any{"domain": map[string]any{"id": "d1"}}, "admin")
	f.add("expired", time.Now().Add(-time.Minute), projectScope, "member")

	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"newline", "abc\r\nX-Roles: admin"},
		{"space", "abc def"},
		{"non-ascii", "tökén"},
		{"too long", strings.Repeat("a", maxTokenLen+1)},
		{"unknown", "gAAAAABnot-a-real-token"},
		{"unscoped", "unscoped"},
		{"expired", "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Validate(ctx, tc.token)
			var ke *Error
			if !errors.Is(err, ErrInvalidToken) || !errors.As(err, &ke) || ke.HTTPStatus() != 401 {
				t.Fatalf("err = %v, want an *Error of kind ErrInvalidToken", err)
			}
			if strings.Contains(err.Error(), "gAAAA") {
				t.Fatalf("error text quotes the token: %v", err)
			}
		})
	}
	tok, err := v.Validate(ctx, "domain")
	if err != nil || tok.DomainID != "d1" || tok.ProjectID != "" {
		t.Fatalf("domain-scoped: %+v, %v", tok, err)
	}

	f.getCode = http.StatusInternalServerError
	for range 2 {
		_, err = v.Validate(ctx, "other")
		var ke *Error
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ke) || ke.HTTPStatus() != 503 {
			t.Fatalf("Keystone 500: err = %v, want ErrUnavailable", err)
		}
	}
	if f.gets.Load() < 2 {
		t.Fatal("unavailability must not be cached")
	}
}

func TestServiceTokenReauthentication(t *testing.T) {
	f := newFake(t)
	v := newTestValidator(t, f, nil, nil)
	ctx := context.Background()
	f.add("a", time.Now().Add(time.Hour), projectScope, "member")
	f.add("b", time.Now().Add(time.Hour), projectScope, "member")
	if _, err := v.Validate(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// Keystone forgets the service token (expiry, revocation, key rotation).
	f.mu.Lock()
	f.svcOK = "nothing"
	f.mu.Unlock()
	if _, err := v.Validate(ctx, "b"); err != nil {
		t.Fatalf("after the service token expired: %v", err)
	}
	if f.auths.Load() != 2 {
		t.Fatalf("service authentications = %d, want 2", f.auths.Load())
	}
}

func TestValidateService(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	f.add("svc", time.Now().Add(time.Hour), projectScope, "service", "admin")
	f.add("user", time.Now().Add(time.Hour), projectScope, "member")

	v := newTestValidator(t, f, nil, nil)
	if tok, ok, err := v.ValidateService(ctx, ""); tok != nil || ok || err != nil {
		t.Fatalf("no service token: %v %v %v", tok, ok, err)
	}
	if _, ok, err := v.ValidateService(ctx, "svc"); !ok || err != nil {
		t.Fatalf("service token: %v %v", ok, err)
	}
	if tok, ok, err := v.ValidateService(ctx, "user"); ok || err != nil || tok == nil {
		t.Fatalf("user token as service token, not required: %v %v %v", tok, ok, err)
	}
	if _, _, err := v.ValidateService(ctx, "nope"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("invalid service token: %v", err)
	}
	req := newTestValidator(t, f, nil, func(c *Config) {
		c.ServiceTokenRolesRequired = true
		c.ServiceTokenRoles = []string{"admin", "service"}
	})
	if _, ok, err := req.ValidateService(ctx, "user"); ok || !errors.Is(err, ErrNotServiceToken) {
		t.Fatalf("required roles: %v %v", ok, err)
	}
}

func TestUnreachableKeystone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	v, err := NewValidator(Config{Credentials: Credentials{AuthURL: "http://" + addr + "/v3", Username: "arca", Password: "x"}, HTTPTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(context.Background(), "sometoken")
	var ke *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ke) || ke.HTTPStatus() != 503 {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestConfigAndHeader(t *testing.T) {
	if _, err := NewValidator(Config{}); err == nil {
		t.Error("empty config accepted")
	}
	if _, err := NewValidator(Config{Credentials: Credentials{AuthURL: "http://k/v3", AuthType: "token"}}); err == nil {
		t.Error("unsupported auth_type accepted")
	}
	if _, err := NewValidator(Config{Credentials: Credentials{AuthURL: "http://k/v3", AuthType: "v3applicationcredential"}}); err == nil {
		t.Error("application credential without id/secret accepted")
	}
	v, err := NewValidator(Config{Credentials: Credentials{AuthURL: "http://k/v3", AuthType: "v3applicationcredential",
		ApplicationCredentialID: "id", ApplicationCredentialSecret: "s"}, MemcachedServers: []string{"127.0.0.1:11211"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := v.Config(); c.TokenCacheTime != DefaultTokenCacheTime || len(c.ServiceTokenRoles) != 1 || c.ServiceTokenRoles[0] != "service" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := WWWAuthenticate(Config{WWWAuthenticateURI: "http://127.0.0.1:5000/v3", Credentials: Credentials{AuthURL: "http://x"}}); got != `Keystone uri="http://127.0.0.1:5000/v3"` {
		t.Errorf("WWWAuthenticate = %s", got)
	}
	if got := WWWAuthenticate(Config{Credentials: Credentials{AuthURL: "http://a\"b"}}); got != `Keystone uri="http://a%22b"` {
		t.Errorf("WWWAuthenticate = %s", got)
	}
}

// TestRedirectNotFollowed: a Keystone URL answering a validation with a
// redirect (a load balancer's rule, a tampered catalog) is an unexpected
// answer: net/http would send the service token and the token being
// validated (X-Auth-Token, X-Subject-Token: it keeps both across hosts)
// wherever it points, and the answer from there would be taken for
// Keystone's. The token is not valid, and the target never hears of it.
func TestRedirectNotFollowed(t *testing.T) {
	f := newFake(t)
	f.add("tok-user", time.Now().Add(time.Hour), projectScope, "member")
	elsewhere := strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1)
	pass := httputil.NewSingleHostReverseProxy(mustURL(t, f.srv.URL))
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, elsewhere+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		pass.ServeHTTP(w, r) // the service user's login goes through
	}))
	defer front.Close()
	v, err := NewValidator(Config{Credentials: Credentials{AuthURL: front.URL + "/v3", Username: "arca", Password: "pw", ProjectName: "service"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := v.Validate(context.Background(), "tok-user"); err == nil {
		t.Fatalf("a token validated through a redirect: %+v", tok)
	}
	if n := f.gets.Load(); n != 0 {
		t.Fatalf("the redirect was followed: %d validations reached its target", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
