package keyclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
)

// Client resolves project keys through arca-api's /v1/project-keys
// resource, as a Keystone service user. It is safe for concurrent use.
//
// Answers are cached in memory, bounded in size and time: a project's
// active key for Options.ActiveTTL, key bytes and listing keys for
// Options.MaterialTTL, failures for Options.ErrorTTL. Concurrent misses for the same answer
// share one request. While the key service is unreachable, cached answers
// keep serving until they expire; after that the methods return
// ErrUnavailable.
type Client struct {
	opts Options
	log  zerolog.Logger
	http *http.Client
	pc   *gophercloud.ProviderClient // nil in no-auth mode
	ao   gophercloud.AuthOptions

	base atomic.Pointer[string] // key service base URL, once known

	// Active ids and failures expire when read (each entry carries its
	// deadline): an expirable.LRU wakes a goroutine every TTL/100, and
	// for the 2 s ErrorTTL that was 50 wake-ups a second in every object
	// server and filter, idle or not. Key bytes keep the expirable LRU,
	// whose sweep also drops them from memory once their TTL is over.
	active   *lru.Cache[string, activeEntry]
	material *expirable.LRU[materialKey, keyBytesEntry]
	listing  *expirable.LRU[materialKey, keyBytesEntry] // listing keys (listing.go)
	errs     *lru.Cache[string, rememberedErr]          // nil when errors are not cached

	flights singleflight.Group

	hits, misses, requests, failures atomic.Uint64

	observer Observer // Options.Observer, fixed at construction (observe.go)
}

var _ Resolver = (*Client)(nil)

// activeEntry is a cached active key, when its request was sent (for
// RefreshActiveKey's rate limit) and until when it may be used.
type activeEntry struct {
	key     Key
	fetched time.Time
	expires time.Time
}

// ActiveKeyCacheTTLHeader is the header in which arca-api states its
// destroy guard ([project_keys] active_key_cache_ttl, seconds) with an
// active key; keyservice.ActiveKeyCacheTTLHeader.
const ActiveKeyCacheTTLHeader = "X-Arca-Active-Key-Cache-Ttl"

// materialKey indexes the material cache without building a string on
// the hot path.
type materialKey struct{ project, key string }

// Stats are a Client's counters since it was made.
type Stats struct {
	// Hits are answers from the cache (remembered failures included).
	Hits uint64
	// Misses are calls the cache could not answer.
	Misses uint64
	// Requests are HTTP requests sent to the key service (not Keystone);
	// fewer than Misses when concurrent misses were collapsed.
	Requests uint64
	// Failures are resolutions that ended in an error.
	Failures uint64
}

// New returns a Client. It does not contact Keystone or the key service:
// the first resolution authenticates, so a service can start while the
// key service is down.
func New(opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	active, err := lru.New[string, activeEntry](opts.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("keyclient: active key cache: %w", err)
	}
	c := &Client{
		opts:     opts,
		log:      opts.Logger.With().Str("component", "keyclient").Logger(),
		http:     opts.HTTPClient,
		active:   active,
		material: expirable.NewLRU[materialKey, keyBytesEntry](opts.CacheSize, nil, opts.MaterialTTL),
		listing:  expirable.NewLRU[materialKey, keyBytesEntry](opts.CacheSize, nil, opts.MaterialTTL),
		observer: opts.Observer,
	}
	if opts.ErrorTTL > 0 {
		if c.errs, err = lru.New[string, rememberedErr](opts.CacheSize); err != nil {
			return nil, fmt.Errorf("keyclient: error cache: %w", err)
		}
	}
	if opts.Endpoint != "" {
		base := normalizeBase(opts.Endpoint)
		if _, err := url.Parse(base); err != nil || !strings.HasPrefix(base, "http") {
			return nil, fmt.Errorf("keyclient: endpoint %q is not an http(s) URL", opts.Endpoint)
		}
		if !opts.NoAuth {
			// The base is only published once authenticated (see endpoint).
			c.opts.Endpoint = base
		} else {
			c.base.Store(&base)
		}
	}
	if !opts.NoAuth {
		if c.ao, err = authOptions(opts.Credentials); err != nil {
			return nil, err
		}
		if c.pc, err = openstack.NewClient(opts.Credentials.AuthURL); err != nil {
			return nil, fmt.Errorf("keyclient: auth_url: %w", err)
		}
		c.pc.HTTPClient = *opts.HTTPClient
	}
	return c, nil
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Requests: c.requests.Load(), Failures: c.failures.Load()}
}

// Purge forgets every cached answer.
func (c *Client) Purge() {
	c.active.Purge()
	c.material.Purge()
	c.listing.Purge()
	if c.errs != nil {
		c.errs.Purge()
	}
}

// ActiveKey returns the project's active key (the key service creates the
// project's first key on demand).
func (c *Client) ActiveKey(ctx context.Context, projectID string) (Key, error) {
	k, _, err := c.ActiveKeyUntil(ctx, projectID)
	return k, err
}

// ActiveKeyUntil is ActiveKey with the moment until which the answer may
// be used: the end of its cache entry, which never outlives the key
// service's destroy guard. A component that keeps the id itself (the
// pipeline middleware, through the decision socket) keeps it no longer.
func (c *Client) ActiveKeyUntil(ctx context.Context, projectID string) (Key, time.Time, error) {
	if e, ok := c.active.Get(projectID); ok && time.Now().Before(e.expires) {
		c.hits.Add(1)
		return e.key, e.expires, nil
	}
	e, err := c.resolveActive(ctx, projectID, c.opts.ActiveTTL)
	return e.key, e.expires, err
}

// RefreshActiveKey returns the project's active key as the key service
// says it now, bypassing the cached answer unless that was fetched less
// than MinActiveRefresh ago, and caches it. Writers call it when another
// component names a different key than their cached active one (a
// rotation they have not seen yet, or a stale or forged hint).
func (c *Client) RefreshActiveKey(ctx context.Context, projectID string) (Key, error) {
	e, err := c.resolveActive(ctx, projectID, MinActiveRefresh)
	return e.key, err
}

// resolveActive answers from a cached entry younger than maxAge, else asks
// the key service (one request for all concurrent callers).
func (c *Client) resolveActive(ctx context.Context, projectID string, maxAge time.Duration) (activeEntry, error) {
	fresh := func() (activeEntry, bool) {
		e, ok := c.active.Get(projectID)
		now := time.Now()
		return e, ok && now.Sub(e.fetched) < maxAge && now.Before(e.expires)
	}
	flight := "a\x00" + projectID
	if err := c.rememberedError(flight); err != nil {
		c.hits.Add(1)
		return activeEntry{}, err
	}
	if e, ok := fresh(); ok {
		c.hits.Add(1)
		return e, nil
	}
	c.misses.Add(1)
	if !validID(projectID) {
		c.failures.Add(1)
		return activeEntry{}, fmt.Errorf("project %q: %w", projectID, ErrNotFound)
	}
	v, err := c.resolve(ctx, flight, func(ctx context.Context) (any, error) {
		if e, ok := fresh(); ok {
			return e, nil // another flight just filled it
		}
		// The cache lifetime counts from before the request: the key
		// service read the active key at some moment after this one, and
		// its destroy guard counts from the deactivation, which can come
		// right after that read, while the answer is still on its way.
		sent := time.Now()
		k, guard, err := c.fetchActive(ctx, projectID)
		if err != nil {
			return activeEntry{}, err
		}
		ttl := c.opts.ActiveTTL
		if guard < ttl {
			ttl = guard
		}
		e := activeEntry{key: k, fetched: sent, expires: sent.Add(ttl)}
		c.active.Add(projectID, e)
		return e, nil
	})
	if err != nil {
		return activeEntry{}, err
	}
	return v.(activeEntry), nil
}

// KeyMaterial returns the bytes of one of the project's keys. The slice is
// shared with the cache: callers must not modify it.
func (c *Client) KeyMaterial(ctx context.Context, projectID, keyID string) ([]byte, error) {
	e, err := c.keyBytes(ctx, c.materialKind(), projectID, keyID)
	return e.b, err
}

// KeyMaterialUntil is KeyMaterial, with the time the cached copy the bytes
// come from expires: what is derived from them may be kept until then,
// and no longer (MaterialExpirer).
func (c *Client) KeyMaterialUntil(ctx context.Context, projectID, keyID string) ([]byte, time.Time, error) {
	e, err := c.keyBytes(ctx, c.materialKind(), projectID, keyID)
	return e.b, e.expires, err
}

func (c *Client) materialKind() keyBytesKind {
	return keyBytesKind{cache: c.material, flight: "m", what: "key", fetch: c.fetchMaterial}
}

// keyBytesEntry is cached key bytes and the time they stop being served:
// MaterialTTL from before they were asked for (keyBytes checks it on every
// hit; the cache's own TTL, counted from the addition, only sweeps them
// out a little later).
type keyBytesEntry struct {
	b       []byte
	expires time.Time
}

// keyBytesKind is one kind of bytes the client fetches per key: the key's
// material, or its listing key (listing.go).
type keyBytesKind struct {
	cache  *expirable.LRU[materialKey, keyBytesEntry]
	flight string // the kind's prefix in singleflight and error-cache keys
	what   string // how errors name it: "key", "listing key of key"
	fetch  func(ctx context.Context, projectID, keyID string) ([]byte, error)
}

// keyBytes returns one kind of bytes of one of the project's keys: from
// the cache, from a failure remembered for Options.ErrorTTL, or fetched
// once for every concurrent caller. The slice is shared with the cache.
func (c *Client) keyBytes(ctx context.Context, kind keyBytesKind, projectID, keyID string) (keyBytesEntry, error) {
	cacheKey := materialKey{projectID, keyID}
	if e, ok := kind.cache.Get(cacheKey); ok && time.Now().Before(e.expires) {
		c.hits.Add(1)
		return e, nil
	}
	flight := kind.flight + "\x00" + projectID + "\x00" + keyID
	if err := c.rememberedError(flight); err != nil {
		c.hits.Add(1)
		return keyBytesEntry{}, err
	}
	c.misses.Add(1)
	if !validID(projectID) || !validID(keyID) {
		c.failures.Add(1)
		return keyBytesEntry{}, fmt.Errorf("%s %q of project %q: %w", kind.what, keyID, projectID, ErrNotFound)
	}
	v, err := c.resolve(ctx, flight, func(ctx context.Context) (any, error) {
		if e, ok := kind.cache.Get(cacheKey); ok && time.Now().Before(e.expires) {
			return e, nil // another flight just filled it
		}
		// As the active id's: the lifetime counts from before the
		// request, since the key may be destroyed right after arca-api
		// read it, while the answer is on its way; key_cache_ttl then
		// bounds how long a destroyed key still opens objects.
		sent := time.Now()
		m, err := kind.fetch(ctx, projectID, keyID)
		if err != nil {
			return keyBytesEntry{}, err
		}
		e := keyBytesEntry{b: m, expires: sent.Add(c.opts.MaterialTTL)}
		kind.cache.Add(cacheKey, e)
		return e, nil
	})
	if err != nil {
		return keyBytesEntry{}, err
	}
	return v.(keyBytesEntry), nil
}

func (c *Client) rememberedError(flight string) error {
	if c.errs == nil {
		return nil
	}
	r, ok := c.errs.Get(flight)
	if !ok {
		return nil
	}
	if !time.Now().Before(r.until) {
		c.errs.Remove(flight)
		return nil
	}
	return r.err
}

// rememberedErr is a failure kept for Options.ErrorTTL.
type rememberedErr struct {
	err   error
	until time.Time
}

// resolve runs fetch once for all concurrent callers of the same flight.
// The request runs under its own deadline, detached from the first
// caller's cancellation, so one impatient caller does not fail the others;
// each caller still stops waiting when its own context ends.
func (c *Client) resolve(ctx context.Context, flight string, fetch func(context.Context) (any, error)) (any, error) {
	ch := c.flights.DoChan(flight, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		v, err := fetch(fctx)
		if err != nil && c.errs != nil {
			c.errs.Add(flight, rememberedErr{err: err, until: time.Now().Add(c.opts.ErrorTTL)})
		}
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			c.failures.Add(1)
		}
		return r.Val, r.Err
	case <-ctx.Done():
		c.failures.Add(1)
		return nil, ctx.Err()
	}
}

// activeKeyView is the part of arca-api's project key document the client
// reads (docs/project-keys.md).
type activeKeyView struct {
	KeyID     string `json:"key_id"`
	ProjectID string `json:"project_id"`
	Status    string `json:"status"`
	Algorithm string `json:"algorithm"`
	BitLength int    `json:"bit_length"`
}

// fetchActive asks for the project's active key. guard is how long the
// answer may be held (ActiveKeyCacheTTLHeader); without the header (a key
// service that predates it) the client's own ActiveTTL.
func (c *Client) fetchActive(ctx context.Context, projectID string) (k Key, guard time.Duration, err error) {
	body, header, err := c.get(ctx, projectID, "/v1/project-keys/active?project_id="+url.QueryEscape(projectID), "application/json")
	if err != nil {
		return Key{}, 0, fmt.Errorf("active key of project %s: %w", projectID, err)
	}
	var v activeKeyView
	if err := json.Unmarshal(body, &v); err != nil {
		return Key{}, 0, fmt.Errorf("active key of project %s: %w: undecodable answer: %w", projectID, ErrUnavailable, err)
	}
	if v.ProjectID != projectID || !validID(v.KeyID) {
		return Key{}, 0, fmt.Errorf("active key of project %s: %w: answer names project %q, key %q", projectID, ErrUnavailable, v.ProjectID, v.KeyID)
	}
	return Key{ID: v.KeyID, ProjectID: v.ProjectID, Algorithm: v.Algorithm, BitLength: v.BitLength}, activeGuard(header, c.opts.ActiveTTL), nil
}

// activeGuard reads ActiveKeyCacheTTLHeader. A value that is not a
// non-negative number of seconds counts as 0: the answer is used once and
// not cached, rather than held for longer than the key service allows.
func activeGuard(h http.Header, fallback time.Duration) time.Duration {
	v, ok := h[http.CanonicalHeaderKey(ActiveKeyCacheTTLHeader)]
	if !ok {
		return fallback
	}
	if len(v) != 1 {
		return 0
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(v[0]), 64)
	if err != nil || !(secs >= 0) || secs > float64(math.MaxInt64/int64(time.Second)) {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

func (c *Client) fetchMaterial(ctx context.Context, projectID, keyID string) ([]byte, error) {
	path := "/v1/project-keys/" + url.PathEscape(keyID) + "/payload?project_id=" + url.QueryEscape(projectID)
	body, _, err := c.get(ctx, projectID, path, "application/octet-stream")
	if err != nil {
		return nil, fmt.Errorf("key %s of project %s: %w", keyID, projectID, err)
	}
	if len(body) == 0 || len(body) > 64 {
		return nil, fmt.Errorf("key %s of project %s: %w: %d key bytes", keyID, projectID, ErrUnavailable, len(body))
	}
	return body, nil
}

// maxAnswer bounds what is read of an answer: key documents are small.
const maxAnswer = 64 << 10

// get sends one GET to the key service, re-authenticating once on a 401,
// and maps the outcome onto the package's errors. It returns the body and
// headers of a 200.
func (c *Client) get(ctx context.Context, projectID, path, accept string) ([]byte, http.Header, error) {
	base, err := c.endpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("building request: %w", err)
		}
		req.Header.Set("Accept", accept)
		req.Header.Set("User-Agent", "arca-keyclient")
		token := ""
		if c.opts.NoAuth {
			req.Header.Set("X-Project-Id", projectID)
			req.Header.Set("X-User-Id", "arca-keyclient")
			// the object servers' role: no-auth arca-api runs the
			// same policy as with Keystone, where "service" reads no key
			req.Header.Set("X-Roles", noAuthRoles(path))
		} else {
			token = c.pc.Token()
			req.Header.Set("X-Auth-Token", token)
		}
		c.requests.Add(1)
		start := time.Now()
		resp, err := c.http.Do(req)
		if err != nil {
			c.observe(req.URL.Path, 0, start)
			return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err)
		}
		c.observe(req.URL.Path, resp.StatusCode, start)
		reqID := resp.Header.Get("X-Openstack-Request-Id")
		switch {
		case resp.StatusCode == http.StatusOK:
			return body, resp.Header, nil
		case resp.StatusCode == http.StatusUnauthorized && !c.opts.NoAuth && attempt == 0:
			// The token expired or was revoked: get a new one, once.
			if err := c.pc.Reauthenticate(ctx, token); err != nil {
				return nil, nil, authError("re-authenticating", err)
			}
			continue
		}
		c.log.Debug().Int("status", resp.StatusCode).Str("request_id", reqID).Str("path", req.URL.Path).
			Msg("key service refused")
		return nil, nil, statusError(resp.StatusCode, reqID)
	}
}

func statusError(status int, reqID string) error {
	var kind error
	switch {
	case status == http.StatusNotFound:
		kind = ErrNotFound
	case status == http.StatusGone:
		kind = ErrDestroyed
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		kind = ErrDenied
	default:
		// 5xx, 429 and anything unexpected: fail closed, retry later.
		kind = ErrUnavailable
	}
	return fmt.Errorf("%w (HTTP %d, request %s)", kind, status, reqID)
}

// authError classifies a Keystone failure: rejected credentials are a
// denial (configuration), anything else an outage.
func authError(what string, err error) error {
	if gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) || gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		return fmt.Errorf("%w: %s with Keystone: %w", ErrDenied, what, err)
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) && (gophercloud.ResponseCodeIs(reauth.ErrReauth, http.StatusUnauthorized)) {
		return fmt.Errorf("%w: %s with Keystone: %w", ErrDenied, what, err)
	}
	return fmt.Errorf("%w: %s with Keystone: %w", ErrUnavailable, what, err)
}

// endpoint authenticates (once) and returns the key service's base URL.
func (c *Client) endpoint(ctx context.Context) (string, error) {
	if p := c.base.Load(); p != nil {
		return *p, nil
	}
	v, err, _ := c.flights.Do("\x00setup", func() (any, error) {
		if p := c.base.Load(); p != nil {
			return *p, nil
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		if err := openstack.Authenticate(sctx, c.pc, c.ao); err != nil {
			return "", authError("authenticating", err)
		}
		base := c.opts.Endpoint
		if base == "" {
			found, err := c.pc.EndpointLocator(gophercloud.EndpointOpts{
				Type: ServiceType, Region: c.opts.Region, Availability: gophercloud.Availability(c.opts.Interface),
			})
			if err != nil {
				return "", fmt.Errorf("%w: no %s endpoint (%s, region %q) in the service user's catalog: %w",
					ErrUnavailable, ServiceType, c.opts.Interface, c.opts.Region, err)
			}
			base = normalizeBase(found)
		}
		c.log.Info().Str("endpoint", base).Msg("key service located")
		c.base.Store(&base)
		return base, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// normalizeBase strips a trailing slash and /v1: the catalog entry is
// registered unversioned, but operators may paste either form.
func normalizeBase(u string) string {
	u = strings.TrimRight(u, "/")
	u = strings.TrimSuffix(u, "/v1")
	return strings.TrimRight(u, "/")
}

// validID accepts what Keystone project ids and Arca key ids look like
// (letters, digits, '-', '_') and refuses anything that could bend a URL
// ("..", '/', '?') or a cache key.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
