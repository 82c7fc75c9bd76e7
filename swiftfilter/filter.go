package swiftfilter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/metrics"
)

// KeyIDHeader is the header that carries the owning project's active key id
// to the object servers, as a hint (docs/architecture.md, docs/project-keys.md).
const KeyIDHeader = "X-Arca-Key-Id"

// TokenValidator validates Keystone tokens; *keystone.Validator is one. Errors
// of kind keystone.ErrUnavailable answer 503, any other error 401.
type TokenValidator interface {
	Validate(ctx context.Context, token string) (*keystone.Token, error)
}

// Config is the filter's behaviour. Zero values take the defaults.
type Config struct {
	// Upstream is the Swift proxy's base URL (http://127.0.0.1:8081). Used by
	// ServeHTTP; Wrap does not need it.
	Upstream string
	// ResellerPrefixes as keystoneauth reads them (see ParsePrefixes). nil: AUTH_.
	ResellerPrefixes []string
	// WWWAuthenticate is the header value of a 401 (keystone.WWWAuthenticate).
	WWWAuthenticate string
	// DisableByFilePath: while this file exists, /healthcheck answers 503.
	DisableByFilePath string
	// KeyTimeout bounds the key-id resolution of one request. Default 10 s.
	KeyTimeout time.Duration
	// TokenTimeout bounds the validation of one request's tokens. Default 10 s.
	TokenTimeout time.Duration
	// AccessLog logs one line per request at info level (else debug).
	AccessLog bool

	// Upstream connection pool (ServeHTTP only).
	ConnTimeout           time.Duration // dial; default 2 s
	ResponseHeaderTimeout time.Duration // after the request is sent; default 60 s
	ExpectContinueTimeout time.Duration // wait for the upstream's 100 Continue; default 10 s
	IdleConnTimeout       time.Duration // default DefaultIdleConnTimeout
	MaxIdleConns          int           // per upstream host; default 256
}

// Deps are what the filter calls out to.
type Deps struct {
	// Tokens validates X-Auth-Token, X-Storage-Token and X-Service-Token. Required.
	Tokens TokenValidator
	// Keys resolves a project's active key id. Required.
	Keys keyclient.Resolver
	// Log receives access and error lines; tokens are never logged.
	Log zerolog.Logger
	// Transport to the upstream; nil: a keep-alive pool built from Config.
	Transport http.RoundTripper

	// Observability (observability.go). Metrics, when set, counts requests,
	// token validations and refusals, and Handler serves it at /metrics
	// (unless [metrics] bind moves it). Health, when set, answers
	// /healthcheck and /healthcheck/detailed instead of the built-in check.
	Metrics        *metrics.Registry
	MetricsHandler http.Handler
	Health         http.Handler
}

// Filter is the token check, key-id attach and header hygiene in front of a
// Swift proxy. It is safe for concurrent use.
type Filter struct {
	cfg      Config
	prefixes Prefixes
	tokens   TokenValidator
	keys     keyclient.Resolver
	log      zerolog.Logger
	proxy    http.Handler // nil when Config.Upstream is empty
	upstream *url.URL

	metrics        *metrics.Registry
	metricsHandler http.Handler
	health         http.Handler
}

// New checks cfg and deps and builds a Filter.
func New(cfg Config, deps Deps) (*Filter, error) {
	if deps.Tokens == nil {
		return nil, errors.New("swiftfilter: a token validator is required")
	}
	if deps.Keys == nil {
		return nil, errors.New("swiftfilter: a key resolver is required")
	}
	if cfg.KeyTimeout <= 0 {
		cfg.KeyTimeout = 10 * time.Second
	}
	if cfg.TokenTimeout <= 0 {
		cfg.TokenTimeout = 10 * time.Second
	}
	if cfg.ConnTimeout <= 0 {
		cfg.ConnTimeout = 2 * time.Second
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 60 * time.Second
	}
	if cfg.ExpectContinueTimeout <= 0 {
		cfg.ExpectContinueTimeout = 10 * time.Second
	}
	if cfg.IdleConnTimeout <= 0 {
		cfg.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = 256
	}
	f := &Filter{
		cfg:      cfg,
		prefixes: ParsePrefixes(cfg.ResellerPrefixes),
		tokens:   deps.Tokens,
		keys:     deps.Keys,
		log:      deps.Log,

		metrics: deps.Metrics, metricsHandler: deps.MetricsHandler, health: deps.Health,
	}
	if cfg.Upstream != "" {
		u, err := url.Parse(cfg.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("swiftfilter: upstream %q is not an http(s) URL", cfg.Upstream)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("swiftfilter: upstream %q must not have a query or fragment", cfg.Upstream)
		}
		f.upstream = u
		f.proxy = f.newReverseProxy(u, deps.Transport)
	}
	return f, nil
}

// Prefixes returns the effective reseller prefixes.
func (f *Filter) Prefixes() Prefixes { return f.prefixes }

// ServeHTTP answers /healthcheck itself and passes everything else through
// the filter to the upstream Swift proxy.
func (f *Filter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.serveObservability(w, r) {
		return
	}
	if r.URL.Path == "/healthcheck" {
		f.healthcheck(w, r)
		return
	}
	if f.proxy == nil {
		localError(w, r, http.StatusServiceUnavailable, "No upstream Swift proxy is configured.")
		return
	}
	f.serve(w, r, http.HandlerFunc(f.toUpstream))
}

// Wrap returns next behind the filter: requests reach next only with their
// tokens valid, client copies of X-Arca-Key-Id removed and, on object writes
// whose user token is scoped to the account's project, that project's key id
// attached.
func (f *Filter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, next) })
}

func (f *Filter) healthcheck(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	if f.cfg.DisableByFilePath != "" {
		if _, err := os.Stat(f.cfg.DisableByFilePath); err == nil {
			body := "DISABLED BY FILE\n"
			h.Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte(body))
			}
			return
		}
	}
	switch r.Method {
	case http.MethodGet:
		h.Set("Content-Length", "3")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("OK\n"))
	case http.MethodHead:
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD")
		localError(w, r, http.StatusMethodNotAllowed, "Only GET and HEAD are allowed on /healthcheck.")
	}
}

// requestLog carries what the access line reports; filled along the way.
type requestLog struct {
	account, project, keyID string
	userID, tokenProject    string
	outcome                 string
	route                   string // metrics label (observability.go)
}

func (f *Filter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	r, unread := answerEarly(rec, r)
	r, body := guardBody(r)
	var rl requestLog
	f.handle(rec, r, next, &rl)
	body.finish(rec, r)
	unread()
	f.access(r, rec, &rl, start)
}

// handle does the work of one request; it returns once the response is done.
func (f *Filter) handle(w *recorder, r *http.Request, next http.Handler, rl *requestLog) {
	swiftConnection(w.Header(), r)
	dropConnectionOptions(r.Header)
	// Swift has no CONNECT; forwarding one would tunnel a client's bytes
	// through the shared connection pool to the proxy (the reverse-proxy
	// case of GO-2026-6605). It ends here.
	if r.Method == http.MethodConnect {
		rl.outcome = "CONNECT refused"
		localError(w, r, http.StatusMethodNotAllowed, "CONNECT is not a Swift method.")
		return
	}
	if err := checkHeaders(r.Header); err != nil {
		rl.outcome = err.Error()
		localError(w, r, http.StatusBadRequest, "Ambiguous header name: use '-', not '_'.")
		return
	}
	target, err := ParsePath(r.URL.Path)
	if err != nil {
		// Swift's proxy answers these itself, before any token is read,
		// and a client may branch on the answer: give Swift's, exactly.
		rl.outcome = err.Error()
		swiftAnswer(w, r, http.StatusPreconditionFailed, htmlType, "Invalid UTF8 or contains NULL")
		return
	}
	rl.account = target.Account
	rl.route = routeOf(target, r.URL.Path)

	// Tokens first: an invalid one never reaches Swift, whatever the request.
	user, status, msg := f.checkTokens(r, rl)
	if status == http.StatusUnauthorized {
		f.unauthorized(w, r)
		return
	}
	if status != 0 {
		localError(w, r, status, msg)
		return
	}

	// Every request loses client-sent key ids, whatever its method.
	stripKeyID(r.Header)
	stripKeyID(r.Trailer)

	if account, needs, err := writeAccount(r.Method, target, r.Header["Destination-Account"]); err != nil {
		rl.outcome = err.Error()
		localError(w, r, http.StatusBadRequest, "Invalid Destination-Account.")
		return
	} else if needs {
		rl.account = account
		if r, status, msg = f.attachKey(r, account, user, rl); status != 0 {
			localError(w, r, status, msg)
			return
		}
	}
	next.ServeHTTP(w, r)
}

// swiftConnection sets the Connection header of the answer to r as
// Swift's server (eventlet) does: it keeps the connection for an HTTP/1.1
// request unless told "close", and for any request whose Connection is
// exactly "keep-alive" (any case), which it then echoes; every other
// answer says "Connection: close" and the connection is closed after it.
// The proxy's own Connection header is hop-by-hop and does not pass the
// filter, so the filter says it. net/http still closes where it must
// (an unread body), and then says so.
func swiftConnection(h http.Header, r *http.Request) {
	switch c := strings.ToLower(r.Header.Get("Connection")); {
	case c == "keep-alive":
		h.Set("Connection", "keep-alive")
	case r.ProtoAtLeast(1, 1) && c != "close":
	default:
		h.Set("Connection", "close")
	}
}

// dropConnectionOptions removes the headers the request's Connection
// header names (RFC 9110, 7.6.1), as the reverse proxy will before it
// forwards the request. The filter decides on the request Swift receives:
// a token, Destination or Destination-Account named there would otherwise
// be read here and never reach Swift, and the key id would follow an
// account or a token Swift does not act on.
func dropConnectionOptions(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
}

// tokenHeaders are the headers keystonemiddleware reads a token from.
var tokenHeaders = []string{"X-Auth-Token", "X-Storage-Token", "X-Service-Token"}

// userTokenHeader names the header Swift takes the user's token from, as
// keystonemiddleware does (headers.get('X-Auth-Token',
// headers.get('X-Storage-Token'))): X-Auth-Token whenever it is present, even
// empty (then the request is anonymous to Swift), else X-Storage-Token. The
// filter must judge account ownership by the same token Swift authorizes.
func userTokenHeader(h http.Header) string {
	if _, ok := h["X-Auth-Token"]; ok {
		return "X-Auth-Token"
	}
	return "X-Storage-Token"
}

// checkTokens validates every token the request carries. When they are all
// valid (or there are none) it returns status 0 and the validated user token
// (nil when the request has none: anonymous to Swift); else the status and
// message of the refusal. The service token (X-Service-Token) is validated
// but never returned: it adds roles to a request in Swift, it does not make
// the caller the owner of an account.
func (f *Filter) checkTokens(r *http.Request, rl *requestLog) (user *keystone.Token, status int, msg string) {
	var ctx context.Context
	userHeader := userTokenHeader(r.Header)
	for _, name := range tokenHeaders {
		vals := r.Header[name]
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			rl.outcome = "several " + name + " headers"
			return nil, http.StatusUnauthorized, "Authentication required: send one token."
		}
		// net/http has trimmed the blanks around the value, as Swift's
		// server does; nothing else is trimmed here.
		tok := vals[0]
		if tok == "" {
			continue // keystonemiddleware treats an empty token as none
		}
		if !visibleASCII(tok) {
			// Keystone's tokens are visible ASCII. Swift's server and
			// this one trim other bytes differently (a trailing UTF-8
			// no-break space is kept by Swift, which then refuses the
			// token): refuse, rather than judge a token Swift does not
			// see.
			rl.outcome = "token with bytes other than visible ASCII in " + name
			return nil, http.StatusUnauthorized, "Authentication required: the token is invalid or expired."
		}
		if ctx == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(r.Context(), f.cfg.TokenTimeout)
			defer cancel()
		}
		t, err := f.tokens.Validate(ctx, tok)
		f.countToken(err)
		if err != nil {
			// Fail closed: neither an invalid token nor one Keystone could
			// not judge goes on to Swift, so no key is resolved for it.
			if errors.Is(err, keystone.ErrUnavailable) {
				rl.outcome = "token validation unavailable: " + err.Error()
				f.log.Warn().Err(err).Str("header", name).Msg("token validation unavailable")
				return nil, http.StatusServiceUnavailable, "Token validation is unavailable; retry later."
			}
			rl.outcome = "invalid token: " + err.Error()
			return nil, http.StatusUnauthorized, "Authentication required: the token is invalid or expired."
		}
		if name == userHeader {
			user = t
			rl.userID, rl.tokenProject = t.UserID, t.ProjectID
		}
	}
	return user, 0, ""
}

// attachKey sets the key id of the project owning account when user, the
// request's validated user token, is scoped to that very project
// (Filter.keyFor decides, decision.go). It returns the request to forward
// and 0, or the status and message of a refusal (nothing is forwarded then).
func (f *Filter) attachKey(r *http.Request, account string, user *keystone.Token, rl *requestLog) (*http.Request, int, string) {
	var tokenProject string
	if user != nil {
		tokenProject = user.ProjectID
	}
	d := f.keyFor(r.Context(), account, user != nil, tokenProject)
	rl.outcome, rl.project, rl.keyID = d.Outcome, d.Project, d.KeyID
	if d.Status != 0 || d.KeyID == "" {
		return r, d.Status, d.Message
	}
	r.Header[KeyIDHeader] = []string{d.KeyID}
	return r.WithContext(context.WithValue(r.Context(), keyIDContext{}, d.KeyID)), 0, ""
}

// keyIDContext carries the attached key id to the proxy's Rewrite, which
// sets it again after net/http removed hop-by-hop headers (a client could
// name X-Arca-Key-Id in Connection).
type keyIDContext struct{}

// statusClientClosed is nginx's 499: logged, never seen by the client.
const statusClientClosed = 499

// isKeyIDName reports whether a header name reaches Swift as X-Arca-Key-Id:
// WSGI maps '-' and '_' both to '_' and ignores case.
func isKeyIDName(name string) bool {
	if len(name) != len(KeyIDHeader) {
		return false
	}
	if name == KeyIDHeader {
		return true
	}
	return strings.EqualFold(strings.ReplaceAll(name, "_", "-"), KeyIDHeader)
}

// stripKeyID removes every header that Swift would read as X-Arca-Key-Id.
func stripKeyID(h http.Header) {
	for name := range h {
		if isKeyIDName(name) {
			delete(h, name)
		}
	}
}

// guarded are headers the filter reads: sent with '_' instead of '-', Swift's
// WSGI layer would read them while the filter did not.
var guarded = []string{"X-Auth-Token", "X-Storage-Token", "X-Service-Token", "Destination", "Destination-Account"}

// checkHeaders refuses headers whose names contain '_' and that WSGI would
// fold onto a header the filter reads.
func checkHeaders(h http.Header) error {
	for name := range h {
		if strings.IndexByte(name, '_') < 0 {
			continue
		}
		folded := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(name, "_", "-"))
		for _, g := range guarded {
			if folded == g {
				return fmt.Errorf("%w: header %q would reach Swift as %s", ErrBadRequest, name, g)
			}
		}
	}
	return nil
}

// localError answers a request the filter refuses where Swift has no
// answer of its own: a short text body naming the reason, in Swift's manner.
func localError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	swiftAnswer(w, r, status, "text/plain; charset=UTF-8", http.StatusText(status)+": "+msg+"\n")
}

// unauthorizedPage is the body of Swift's 401.
const unauthorizedPage = "<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>"

// unauthorized answers a request whose token Keystone refused with
// Swift's own 401: its page, its realm challenge and then Keystone's, as
// keystoneauth and keystonemiddleware write them. Like Swift's, the answer
// to HEAD declares no length.
func (f *Filter) unauthorized(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("WWW-Authenticate", `Swift realm="`+pyQuote(swiftRealm(r.URL.Path))+`"`)
	if f.cfg.WWWAuthenticate != "" {
		h.Add("WWW-Authenticate", f.cfg.WWWAuthenticate)
	}
	if r.Method != http.MethodHead {
		swiftAnswer(w, r, http.StatusUnauthorized, htmlType, unauthorizedPage)
		return
	}
	id := newTransID()
	h.Set("X-Trans-Id", id)
	h.Set("X-Openstack-Request-Id", id)
	h.Set("Content-Type", htmlType)
	w.WriteHeader(http.StatusUnauthorized)
}

// swiftRealm is the realm of Swift's challenge for a path: its account
// (split_path(path, 2, 3, True)), or "unknown" when it names none.
func swiftRealm(path string) string {
	segs := strings.SplitN(path, "/", 4)
	if len(segs) < 3 || segs[0] != "" || segs[1] == "" || segs[2] == "" {
		return "unknown"
	}
	if realm := segs[2]; realm != "v1.0" && realm != "auth" {
		return realm
	}
	return "unknown"
}

// pyQuote percent-encodes s as Python's urllib.parse.quote does by default:
// everything but letters, digits, "_.-~" and "/".
func pyQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// htmlType is the Content-Type of Swift's own error pages.
const htmlType = "text/html; charset=UTF-8"

// swiftAnswer writes a whole answer as Swift's proxy writes its own: the
// body with its length (and no body to HEAD), a transaction id so that
// operators can find the log line.
func swiftAnswer(w http.ResponseWriter, r *http.Request, status int, contentType, body string) {
	if status == statusClientClosed {
		return
	}
	h := w.Header()
	id := newTransID()
	h.Set("X-Trans-Id", id)
	h.Set("X-Openstack-Request-Id", id)
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// newTransID makes an id shaped like Swift's (tx + 21 hex + '-' + 10 hex time).
func newTransID() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("tx%s-%010x", hex.EncodeToString(b[:])[:21], time.Now().Unix())
}

// visibleASCII reports whether s is made of visible ASCII characters only
// (0x21 to 0x7e).
func visibleASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
