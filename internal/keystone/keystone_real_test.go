package keystone_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/testenv"
)

// countingTransport counts token validations (GET /v3/auth/tokens) that reach Keystone.
type countingTransport struct {
	next      http.RoundTripper
	validates atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.Header.Get("X-Subject-Token") != "" {
		c.validates.Add(1)
	}
	return c.next.RoundTrip(r)
}

func realValidator(t *testing.T, env *testenv.KeystoneEnv, mod func(*keystone.Config)) (*keystone.Validator, *countingTransport) {
	t.Helper()
	cfg := env.ServiceConfig()
	if mod != nil {
		mod(&cfg)
	}
	ct := &countingTransport{next: http.DefaultTransport}
	v, err := keystone.NewValidator(cfg, keystone.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	return v, ct
}

func TestRealValidToken(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, nil)
	ctx := context.Background()
	for _, who := range []string{testenv.UserDemo, testenv.UserAlt} {
		tok, err := v.Validate(ctx, env.Token(t, who))
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if tok.UserName != who || tok.ProjectName != who || tok.UserID == "" || tok.ProjectID == "" {
			t.Errorf("%s: token = %+v", who, tok)
		}
		if !tok.HasRole("member") || tok.HasRole("admin") || tok.HasRole("service") {
			t.Errorf("%s: roles = %v, want member (and implied reader) only", who, tok.Roles)
		}
		if tok.UserDomainID != "default" || tok.ProjectDomainID != "default" {
			t.Errorf("%s: domains = %q/%q", who, tok.UserDomainID, tok.ProjectDomainID)
		}
		if len(tok.AuditIDs) == 0 || !tok.ExpiresAt.After(time.Now()) || tok.IssuedAt.IsZero() {
			t.Errorf("%s: audit/expiry/issue = %v %v %v", who, tok.AuditIDs, tok.ExpiresAt, tok.IssuedAt)
		}
	}
	demo, _ := v.Validate(ctx, env.Token(t, testenv.UserDemo))
	alt, _ := v.Validate(ctx, env.Token(t, testenv.UserAlt))
	if demo.ProjectID == alt.ProjectID || demo.UserID == alt.UserID {
		t.Fatal("demo and alt map to the same project or user")
	}
}

func TestRealInvalidTokens(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, ct := realValidator(t, env, nil)
	ctx := context.Background()
	real := env.Token(t, testenv.UserDemo)
	for name, tok := range map[string]string{
		"empty":          "",
		"garbage":        "garbage",
		"fernet-shaped":  "gAAAAABpZ3Vlc3NlZC1mZXJuZXQtdG9rZW4tdGhhdC1pcy1ub3QtcmVhbC1hdC1hbGwtMDEyMzQ1Njc4OWFiY2RlZg",
		"truncated real": real[:len(real)-5],
		"tampered real":  real[:len(real)-2] + map[bool]string{true: "AA", false: "BB"}[real[len(real)-2:] != "AA"],
		"header split":   "abc\r\nX-Roles: admin",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Validate(ctx, tok)
			if !errors.Is(err, keystone.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	if ct.validates.Load() == 0 {
		t.Fatal("no request reached Keystone: the malformed-but-plausible tokens must be asked about")
	}
}

func TestRealRevokedToken(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, func(c *keystone.Config) { c.TokenCacheTime = -1 })
	ctx := context.Background()
	tok := env.Token(t, testenv.UserAlt)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	env.Revoke(t, tok)
	if _, err := v.Validate(ctx, tok); !errors.Is(err, keystone.ErrInvalidToken) {
		t.Fatalf("after revocation: err = %v, want ErrInvalidToken", err)
	}
}

// With the cache on, a revoked token stays valid until token_cache_time: the
// documented keystonemiddleware trade-off, pinned here so a change is noticed.
func TestRealRevokedTokenCachedUntilCacheTime(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, nil)
	ctx := context.Background()
	tok := env.Token(t, testenv.UserAlt)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	env.Revoke(t, tok)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("cached token after revocation: %v (expected still valid until token_cache_time)", err)
	}
}

func TestRealCacheHitMakesNoRequest(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, ct := realValidator(t, env, nil)
	ctx := context.Background()
	tok := env.Token(t, testenv.UserDemo)
	first, err := v.Validate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	before := ct.validates.Load()
	for range 100 {
		got, err := v.Validate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got.ProjectID != first.ProjectID || !slices.Equal(got.Roles, first.Roles) {
			t.Fatalf("cached token differs: %+v vs %+v", got, first)
		}
		got.Roles[0] = "admin" // callers may scribble on what they get
	}
	if n := ct.validates.Load() - before; n != 0 {
		t.Fatalf("%d validations reached Keystone on cache hits", n)
	}
	if v.CacheHits() != 100 || v.CacheMisses() != 1 {
		t.Fatalf("hits=%d misses=%d", v.CacheHits(), v.CacheMisses())
	}
}

func TestRealSingleflight(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, ct := realValidator(t, env, nil)
	ctx := context.Background()
	// authenticate the service user first so that only validations are in flight
	if _, err := v.Validate(ctx, env.Token(t, testenv.UserAlt)); err != nil {
		t.Fatal(err)
	}
	tok := env.Token(t, testenv.UserDemo)
	before := ct.validates.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := v.Validate(ctx, tok)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := ct.validates.Load() - before; n != 1 {
		t.Fatalf("32 concurrent validations made %d Keystone requests, want 1", n)
	}
}

func TestRealServiceToken(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, nil)
	ctx := context.Background()
	if tok, ok, err := v.ValidateService(ctx, env.Token(t, testenv.UserArca)); err != nil || !ok || !tok.HasRole("service") {
		t.Fatalf("arca's token: ok=%v err=%v", ok, err)
	}
	if _, ok, err := v.ValidateService(ctx, env.Token(t, testenv.UserDemo)); err != nil || ok {
		t.Fatalf("demo's token as service token: ok=%v err=%v", ok, err)
	}
}

func TestRealWrongServicePassword(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, func(c *keystone.Config) { c.Password = "wrong" })
	_, err := v.Validate(context.Background(), env.Token(t, testenv.UserDemo))
	if !errors.Is(err, keystone.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable (our credentials, not the client's token)", err)
	}
}

// Real system- and domain-scoped tokens are read into their own scope
// fields, never into a project: a domain token once became project "" and
// shared it with every other domain's users.
func TestRealScopedTokens(t *testing.T) {
	env := testenv.LoadKeystone(t)
	v, _ := realValidator(t, env, nil)
	ctx := context.Background()

	sys, err := v.Validate(ctx, env.SystemToken(t, testenv.UserAdmin))
	if err != nil {
		t.Fatalf("system-scoped token: %v", err)
	}
	if sys.SystemScope != keystone.SystemScopeAll || sys.ProjectID != "" || sys.DomainID != "" || sys.ProjectScoped() {
		t.Errorf("system-scoped token = %+v", sys)
	}
	if !sys.HasRole("admin") || !sys.HasRole("reader") {
		t.Errorf("system admin roles = %v", sys.Roles)
	}

	du := env.NewDomainUser(t, "member")
	dom, err := v.Validate(ctx, du.Token(t, env))
	if err != nil {
		t.Fatalf("domain-scoped token: %v", err)
	}
	if dom.DomainID != du.DomainID || dom.ProjectID != "" || dom.SystemScope != "" || dom.ProjectScoped() {
		t.Errorf("domain-scoped token = %+v, want domain %s", dom, du.DomainID)
	}
	if dom.UserID != du.UserID || dom.UserDomainID != du.DomainID || !dom.HasRole("member") {
		t.Errorf("domain-scoped token user = %s/%s roles %v", dom.UserID, dom.UserDomainID, dom.Roles)
	}

	proj, err := v.Validate(ctx, env.Token(t, testenv.UserDemo))
	if err != nil || !proj.ProjectScoped() || proj.SystemScope != "" || proj.DomainID != "" {
		t.Errorf("project-scoped token = %+v, %v", proj, err)
	}
}
