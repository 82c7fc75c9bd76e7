package keystone

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
)

// maxTokenLen rejects absurd tokens before they reach Keystone. Fernet tokens are
// under 300 bytes, JWS tokens under 1 KiB; 8 KiB leaves room for both.
const maxTokenLen = 8 << 10

// Option customizes a Validator.
type Option func(*Validator)

// WithHTTPClient makes the Validator talk to Keystone through c (custom TLS,
// a counting transport in tests). Its Timeout is set to Config.HTTPTimeout when zero.
func WithHTTPClient(c *http.Client) Option { return func(v *Validator) { v.httpClient = c } }

// WithClock replaces time.Now for expiry and cache decisions.
func WithClock(now func() time.Time) Option { return func(v *Validator) { v.now = now } }

// WithLogger sets where the Validator logs. It never logs tokens.
func WithLogger(l zerolog.Logger) Option { return func(v *Validator) { v.log = l } }

// Validator validates Keystone tokens for one service. Safe for concurrent use.
type Validator struct {
	cfg        Config
	httpClient *http.Client
	now        func() time.Time
	log        zerolog.Logger

	cache *lru.Cache[[sha256.Size]byte, cacheEntry] // nil when caching is off
	group singleflight.Group

	hits, misses atomic.Uint64

	authMu   sync.Mutex
	provider *gophercloud.ProviderClient
	identity *gophercloud.ServiceClient // nil until the service user has authenticated
}

type cacheEntry struct {
	token *Token // nil for a negative entry
	until time.Time
}

// NewValidator checks cfg and prepares a Validator. It does no I/O, hence takes
// no context: the service user authenticates on first use, under that call's
// context, so a service can start before Keystone does; until then validations
// fail with ErrUnavailable.
func NewValidator(cfg Config, opts ...Option) (*Validator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Validator{cfg: cfg, now: time.Now, log: zerolog.Nop()}
	for _, o := range opts {
		o(v)
	}
	if v.httpClient == nil {
		v.httpClient = &http.Client{}
	}
	c := *v.httpClient
	if c.Timeout == 0 {
		c.Timeout = cfg.HTTPTimeout
	}
	// Never follow a redirect: the service token and the token being
	// validated would go along (net/http keeps X-Auth-Token and
	// X-Subject-Token across hosts), and the answer from wherever it
	// pointed would be taken for Keystone's.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v.httpClient = &c
	if len(cfg.MemcachedServers) > 0 {
		v.log.Warn().Strs("memcached_servers", cfg.MemcachedServers).
			Msg("keystone_authtoken: memcached_servers is not used; tokens are cached in process only")
	}
	if cfg.TokenCacheTime > 0 {
		v.cache, err = lru.New[[sha256.Size]byte, cacheEntry](cfg.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("keystone: token cache: %w", err)
		}
	}
	provider, err := openstack.NewClient(cfg.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("keystone: auth_url %q: %w", cfg.AuthURL, err)
	}
	provider.HTTPClient = *v.httpClient
	provider.UserAgent.Prepend("arca-keystone")
	v.provider = provider
	return v, nil
}

// Config returns the effective configuration (defaults applied).
func (v *Validator) Config() Config { return v.cfg }

// CacheHits is the number of validations answered from the cache.
func (v *Validator) CacheHits() uint64 { return v.hits.Load() }

// CacheMisses is the number of validations that had to wait for Keystone
// (including those that joined another caller's request for the same token).
func (v *Validator) CacheMisses() uint64 { return v.misses.Load() }

// Validate returns what Keystone says about token (an X-Auth-Token value). The
// error is an *Error of kind ErrInvalidToken or ErrUnavailable.
func (v *Validator) Validate(ctx context.Context, token string) (*Token, error) {
	if err := checkTokenSyntax(token); err != nil {
		return nil, err
	}
	if v.cache == nil {
		return v.fetch(ctx, token)
	}
	key := sha256.Sum256([]byte(token))
	if t, err, ok := v.lookup(key); ok {
		v.hits.Add(1)
		return t, err
	}
	v.misses.Add(1)
	// Concurrent misses for one token share one Keystone request. The request
	// runs detached from any one caller's context, so one caller giving up does
	// not fail the others; each caller still stops waiting when its ctx ends.
	ch := v.group.DoChan(string(key[:]), func() (any, error) {
		if t, err, ok := v.lookup(key); ok {
			return t, err
		}
		t, err := v.fetch(context.WithoutCancel(ctx), token)
		v.store(key, t, err)
		return t, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Token).clone(), nil
	case <-ctx.Done():
		return nil, unavailable("validation abandoned", ctx.Err())
	}
}

func (v *Validator) lookup(key [sha256.Size]byte) (*Token, error, bool) {
	e, ok := v.cache.Get(key)
	if !ok {
		return nil, nil, false
	}
	if !v.now().Before(e.until) {
		v.cache.Remove(key)
		return nil, nil, false
	}
	if e.token == nil {
		return nil, invalid("token recently found invalid"), true
	}
	return e.token.clone(), nil, true
}

// store caches a result: a valid token until min(now+TokenCacheTime, expiry),
// an invalid one for NegativeCacheTime. Unavailability is never cached.
func (v *Validator) store(key [sha256.Size]byte, t *Token, err error) {
	now := v.now()
	switch {
	case err == nil:
		until := now.Add(v.cfg.TokenCacheTime)
		if t.ExpiresAt.Before(until) {
			until = t.ExpiresAt
		}
		if now.Before(until) {
			v.cache.Add(key, cacheEntry{token: t.clone(), until: until})
		}
	case errors.Is(err, ErrInvalidToken) && v.cfg.NegativeCacheTime > 0:
		ttl := min(v.cfg.NegativeCacheTime, v.cfg.TokenCacheTime)
		v.cache.Add(key, cacheEntry{until: now.Add(ttl)})
	}
}

// checkTokenSyntax refuses what cannot be a token without asking Keystone (and
// what could not even be sent as a header).
func checkTokenSyntax(token string) error {
	if token == "" {
		return invalid("no token")
	}
	if len(token) > maxTokenLen {
		return invalid("token too long")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return invalid("token contains characters no Keystone token has")
		}
	}
	return nil
}

// identityClient authenticates the service user on first use. gophercloud then
// re-authenticates by itself whenever Keystone answers 401 to the service token.
func (v *Validator) identityClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	v.authMu.Lock()
	defer v.authMu.Unlock()
	if v.identity != nil {
		return v.identity, nil
	}
	ao, err := v.cfg.AuthOptions()
	if err != nil {
		return nil, unavailable("service user credentials", err)
	}
	if err := openstack.AuthenticateV3(ctx, v.provider, &ao, gophercloud.EndpointOpts{}); err != nil {
		return nil, classifyServiceAuth(err)
	}
	eo := gophercloud.EndpointOpts{}
	if v.cfg.Interface != "" {
		eo = gophercloud.EndpointOpts{Region: v.cfg.RegionName, Availability: gophercloud.Availability(v.cfg.Interface)}
	}
	ic, err := openstack.NewIdentityV3(v.provider, eo)
	if err != nil {
		return nil, unavailable("no identity endpoint in the catalog", err)
	}
	v.identity = ic
	v.log.Info().Str("endpoint", ic.Endpoint).Msg("keystone: service user authenticated")
	return ic, nil
}

func classifyServiceAuth(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		// only the status: the body is Keystone's and is not ours to log
		return unavailable(fmt.Sprintf("service user authentication answered %d", code.Actual), nil)
	}
	return unavailable("service user authentication failed", err)
}

// fetch asks Keystone about token.
func (v *Validator) fetch(ctx context.Context, token string) (*Token, error) {
	ic, err := v.identityClient(ctx)
	if err != nil {
		return nil, err
	}
	r := tokens.Get(ctx, ic, token)
	if r.Err != nil {
		var code gophercloud.ErrUnexpectedResponseCode
		if errors.As(r.Err, &code) {
			switch code.Actual {
			case http.StatusNotFound, http.StatusBadRequest:
				// Keystone's way of saying the subject token is unknown, expired,
				// revoked or garbage.
				return nil, invalid(fmt.Sprintf("Keystone answered %d", code.Actual))
			default:
				// 401 after re-authentication, 403 (the service user may not
				// validate tokens), 5xx: Keystone or our credentials, not the client.
				return nil, unavailable(fmt.Sprintf("Keystone answered %d", code.Actual), nil)
			}
		}
		return nil, unavailable("request to Keystone failed", r.Err)
	}
	var body tokenBody
	if err := r.ExtractInto(&body.Token); err != nil {
		return nil, unavailable("unreadable answer from Keystone", err)
	}
	return body.toToken(v.now())
}

// ValidateService examines an X-Service-Token. It returns (nil, false, nil) when
// there is none. A valid token with one of ServiceTokenRoles gives isService;
// a valid one without them gives the token and false, or ErrNotServiceToken when
// ServiceTokenRolesRequired is set (answer 401, like keystonemiddleware). An
// invalid service token is always an error: a caller that sent one expected it
// to count.
func (v *Validator) ValidateService(ctx context.Context, serviceToken string) (tok *Token, isService bool, err error) {
	if serviceToken == "" {
		return nil, false, nil
	}
	tok, err = v.Validate(ctx, serviceToken)
	if err != nil {
		return nil, false, err
	}
	if tok.HasRole(v.cfg.ServiceTokenRoles...) {
		return tok, true, nil
	}
	if v.cfg.ServiceTokenRolesRequired {
		return tok, false, &Error{Kind: ErrNotServiceToken, Reason: fmt.Sprintf("needs one of %v", v.cfg.ServiceTokenRoles)}
	}
	v.log.Warn().Str("user_id", tok.UserID).Msg("keystone: X-Service-Token without a service role ignored")
	return tok, false, nil
}
