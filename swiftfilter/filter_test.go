package swiftfilter

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
)

// fakeTokens knows a few tokens.
type fakeTokens struct {
	down  atomic.Bool
	calls atomic.Int64
}

func (f *fakeTokens) Validate(_ context.Context, tok string) (*keystone.Token, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, &keystone.Error{Kind: keystone.ErrUnavailable, Reason: "fake outage"}
	}
	switch tok {
	case "tok-demo":
		return &keystone.Token{UserID: "u-demo", ProjectID: "demo"}, nil
	case "tok-alt":
		return &keystone.Token{UserID: "u-alt", ProjectID: "alt"}, nil
	case "tok-gone":
		return &keystone.Token{UserID: "u-gone", ProjectID: "gone"}, nil
	case "tok-new":
		return &keystone.Token{UserID: "u-new", ProjectID: "new"}, nil
	case "tok-odd":
		return &keystone.Token{UserID: "u-odd", ProjectID: "a.b"}, nil
	case "tok-domain": // domain-scoped: a domain, no project
		return &keystone.Token{UserID: "u-dom", DomainID: "default", Roles: []string{"admin"}}, nil
	case "tok-system": // system-scoped: no project, no domain
		return &keystone.Token{UserID: "u-sys", SystemScope: keystone.SystemScopeAll, Roles: []string{"admin"}}, nil
	}
	return nil, &keystone.Error{Kind: keystone.ErrInvalidToken, Reason: "fake: unknown"}
}

// fakeKeys gives project P the key "key-P", creating it on the first
// ActiveKey call for P as the key service does for a member of P; created
// lists the projects it created keys for. Project "new" has no key, and
// the caller may not make one (404, as the key service answers the
// filter's role); project "gone" answers 410.
type fakeKeys struct {
	down  atomic.Bool
	calls atomic.Int64

	mu      sync.Mutex
	created []string
}

func (f *fakeKeys) ActiveKey(_ context.Context, project string) (keyclient.Key, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return keyclient.Key{}, fmt.Errorf("fake: %w", keyclient.ErrUnavailable)
	}
	switch project {
	case "new":
		return keyclient.Key{}, fmt.Errorf("fake: %w", keyclient.ErrNotFound)
	case "gone":
		return keyclient.Key{}, fmt.Errorf("fake: %w", keyclient.ErrDestroyed)
	}
	f.mu.Lock()
	if !slices.Contains(f.created, project) {
		f.created = append(f.created, project)
	}
	f.mu.Unlock()
	return keyclient.Key{ID: "key-" + project, ProjectID: project}, nil
}

// createdKeys returns the projects whose key the fake created so far.
func (f *fakeKeys) createdKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created)
}

func (f *fakeKeys) KeyMaterial(context.Context, string, string) ([]byte, error) {
	return nil, keyclient.ErrNotFound
}

// seen is one request as the upstream received it.
type seen struct {
	Method, RequestURI string
	Header             http.Header
	Body               []byte
	Chunked            bool
}

// upstream records what reaches it and answers like Swift would.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(),
			Chunked: len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"}
		if h == nil {
			s.Body, _ = io.ReadAll(r.Body)
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, s)
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Trans-Id", "txupstream")
		w.Header().Set("X-Openstack-Request-Id", "txupstream")
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

type harness struct {
	up     *upstream
	filter *httptest.Server
	tokens *fakeTokens
	keys   *fakeKeys
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, h http.HandlerFunc, mod func(*Config)) *harness {
	t.Helper()
	hs := &harness{up: newUpstream(t, h), tokens: &fakeTokens{}, keys: &fakeKeys{}, logs: &syncBuffer{}}
	cfg := Config{Upstream: hs.up.URL, ResellerPrefixes: []string{"AUTH", "SERVICE"},
		WWWAuthenticate: `Keystone uri="http://keystone.test/v3"`, AccessLog: true}
	if mod != nil {
		mod(&cfg)
	}
	f, err := New(cfg, Deps{Tokens: hs.tokens, Keys: hs.keys, Log: zerolog.New(hs.logs)})
	if err != nil {
		t.Fatal(err)
	}
	hs.filter = httptest.NewServer(f)
	t.Cleanup(hs.filter.Close)
	return hs
}

// keyIDs returns every value of every header Swift would read as X-Arca-Key-Id.
func keyIDs(h http.Header) []string {
	var out []string
	for name, vals := range h {
		if isKeyIDName(name) {
			out = append(out, vals...)
		}
	}
	return out
}

func TestHeaderHygiene(t *testing.T) {
	forged := map[string][]string{
		"X-Arca-Key-Id": {"key-victim", "key-victim2"},
		"x-arca-key-id": {"key-victim3"},
		"X_Arca_Key_Id": {"key-victim4"},
	}
	const demo, alt = "tok-demo", "tok-alt"
	cases := []struct {
		name    string
		method  string
		path    string
		token   string // X-Auth-Token; "" none
		header  map[string]string
		status  int
		reached bool
		keyID   string // "" means none may reach upstream
	}{
		{"object PUT", "PUT", "/v1/AUTH_demo/c/o", demo, nil, 201, true, "key-demo"},
		{"object PUT second prefix", "PUT", "/v1/SERVICE_demo/c/o", demo, nil, 201, true, "key-demo"},
		{"PUT with X-Copy-From", "PUT", "/v1/AUTH_demo/c/o2", demo, map[string]string{"X-Copy-From": "c/o", "X-Copy-From-Account": "AUTH_alt"}, 201, true, "key-demo"},
		{"COPY to own account", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o3"}, 201, true, "key-demo"},
		{"COPY into its own account from another", "COPY", "/v1/AUTH_alt/c/o", demo, map[string]string{"Destination": "c/o3", "Destination-Account": "AUTH_demo"}, 201, true, "key-demo"},
		{"COPY to another account", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o3", "Destination-Account": "AUTH_alt"}, 201, true, ""},
		{"COPY to another account by its owner", "COPY", "/v1/AUTH_demo/c/o", alt, map[string]string{"Destination": "c/o3", "Destination-Account": "AUTH_alt"}, 201, true, "key-alt"},
		{"COPY encoded Destination-Account", "COPY", "/v1/AUTH_demo/c/o", alt, map[string]string{"Destination": "c/o3", "Destination-Account": "AUTH%5Falt"}, 201, true, "key-alt"},
		{"COPY Destination-Account with slash", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o", "Destination-Account": "AUTH_alt%2Fx"}, 400, false, ""},
		{"COPY Destination-Account empty", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o", "Destination-Account": ""}, 400, false, ""},
		{"COPY Destination-Account bad escape", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o", "Destination-Account": "AUTH_%zz"}, 400, false, ""},
		{"Destination_Account", "COPY", "/v1/AUTH_demo/c/o", demo, map[string]string{"Destination": "c/o", "Destination_Account": "AUTH_alt"}, 400, false, ""},
		{"object GET", "GET", "/v1/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"object HEAD", "HEAD", "/v1/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"object POST", "POST", "/v1/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"object DELETE", "DELETE", "/v1/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"container PUT", "PUT", "/v1/AUTH_demo/c", demo, nil, 201, true, ""},
		{"container PUT trailing slash", "PUT", "/v1/AUTH_demo/c/", demo, nil, 201, true, ""},
		{"PUT empty container", "PUT", "/v1/AUTH_demo//o", demo, nil, 201, true, ""},
		{"PUT double leading slash", "PUT", "//v1/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"PUT bad version", "PUT", "/v2/AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"PUT v1.0", "PUT", "/v1.0/AUTH_demo/c/o", demo, nil, 201, true, "key-demo"},
		{"encoded slash in object", "PUT", "/v1/AUTH_demo/c/a%2Fb", demo, nil, 201, true, "key-demo"},
		{"encoded slash in account", "PUT", "/v1/AUTH_alt%2FAUTH_demo/c/o", alt, nil, 201, true, "key-alt"},
		{"encoded slash in another's account", "PUT", "/v1/AUTH_alt%2FAUTH_demo/c/o", demo, nil, 201, true, ""},
		{"dot segments kept", "PUT", "/v1/AUTH_alt/c/../../AUTH_demo/c/o", alt, nil, 201, true, "key-alt"},
		{"dot segments into another's account", "PUT", "/v1/AUTH_alt/c/../../AUTH_demo/c/o", demo, nil, 201, true, ""},
		{"no reseller prefix", "PUT", "/v1/OTHER_demo/c/o", demo, nil, 201, true, ""},
		{"prefix without project", "PUT", "/v1/AUTH_/c/o", demo, nil, 400, false, ""},
		{"project with odd characters", "PUT", "/v1/AUTH_a.b/c/o", "", nil, 400, false, ""},
		{"project with odd characters, its token", "PUT", "/v1/AUTH_a.b/c/o", "tok-odd", nil, 400, false, ""},
		// Swift's own answer to these paths, given before any token is read.
		{"NUL in path", "PUT", "/v1/AUTH_demo/c/a%00b", demo, nil, 412, false, ""},
		{"bad UTF-8 in path", "GET", "/v1/AUTH_demo/c/%ff", demo, nil, 412, false, ""},
		{"destroyed project key", "PUT", "/v1/AUTH_gone/c/o", "tok-gone", nil, 403, false, ""},
		{"project without a key yet", "PUT", "/v1/AUTH_new/c/o", "tok-new", nil, 201, true, ""},
		{"anonymous PUT", "PUT", "/v1/AUTH_demo/c/o", "", nil, 201, true, ""},
		{"ACL write gets no key id", "PUT", "/v1/AUTH_demo/c/o", alt, nil, 201, true, ""},
		{"invalid token", "PUT", "/v1/AUTH_demo/c/o", "tok-bad", nil, 401, false, ""},
		{"invalid storage token", "GET", "/v1/AUTH_demo/c/o", "", map[string]string{"X-Storage-Token": "tok-bad"}, 401, false, ""},
		{"invalid service token", "GET", "/v1/AUTH_demo/c/o", demo, map[string]string{"X-Service-Token": "tok-bad"}, 401, false, ""},
		{"underscore token header", "GET", "/v1/AUTH_demo/c/o", "", map[string]string{"X_Auth_Token": "tok-bad"}, 400, false, ""},
		// Swift's server keeps a trailing UTF-8 no-break space (and refuses
		// the token); net/http's trims only blanks: refused, never judged
		{"token with a no-break space", "PUT", "/v1/AUTH_demo/c/o", demo + "\u00a0", nil, 401, false, ""},
		{"token with a next-line character", "PUT", "/v1/AUTH_demo/c/o", demo + "\u0085", nil, 401, false, ""},
		{"storage token with a no-break space", "GET", "/v1/AUTH_demo/c/o", "", map[string]string{"X-Storage-Token": demo + "\u00a0"}, 401, false, ""},
		{"hop-by-hop trick", "PUT", "/v1/AUTH_demo/c/o", demo, map[string]string{"Connection": "X-Arca-Key-Id"}, 201, true, "key-demo"},
		{"info", "GET", "/info", "", nil, 201, true, ""},
	}
	hs := newHarness(t, nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(hs.up.requests())
			h := http.Header{}
			for k, v := range forged {
				h[k] = v
			}
			if tc.token != "" {
				h["X-Auth-Token"] = []string{tc.token}
			}
			for k, v := range tc.header {
				h[k] = []string{v}
			}
			resp := rawDo(t, hs.filter.URL, tc.method, tc.path, h)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			reqs := hs.up.requests()[before:]
			if !tc.reached {
				if len(reqs) != 0 {
					t.Fatalf("request reached upstream: %+v", reqs)
				}
				if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if resp.Header.Get("X-Trans-Id") == "" {
					t.Error("local error without X-Trans-Id")
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("%d requests reached upstream", len(reqs))
			}
			got := reqs[0]
			if got.RequestURI != tc.path {
				t.Errorf("upstream request line %q, want %q", got.RequestURI, tc.path)
			}
			ids := keyIDs(got.Header)
			switch {
			case tc.keyID == "" && len(ids) != 0:
				t.Errorf("key ids reached upstream: %q", ids)
			case tc.keyID != "" && (len(ids) != 1 || ids[0] != tc.keyID):
				t.Errorf("key ids at upstream %q, want [%s]", ids, tc.keyID)
			}
			if resp.Header.Get("X-Trans-Id") != "txupstream" || resp.Header.Get("X-Openstack-Request-Id") != "txupstream" {
				t.Errorf("transaction ids not passed through: %v", resp.Header)
			}
			if tc.token != "" && got.Header.Get("X-Auth-Token") != tc.token {
				t.Error("token not forwarded to Swift")
			}
		})
	}
	if logs := hs.logs.String(); strings.Contains(logs, "tok-") {
		t.Errorf("a token appears in the logs:\n%s", logs)
	}
}

// rawDo sends a request line and header names exactly as given.
func rawDo(t *testing.T, base, method, path string, h http.Header) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: swift.test\r\nContent-Length: 0\r\nConnection: close\r\n", method, path)
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOutages(t *testing.T) {
	hs := newHarness(t, nil, nil)
	do := func(method, path, token string) int {
		req, _ := http.NewRequest(method, hs.filter.URL+path, strings.NewReader("data"))
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		req.Header.Set("X-Arca-Key-Id", "key-forged")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	hs.keys.down.Store(true)
	if st := do("PUT", "/v1/AUTH_demo/c/o", "tok-demo"); st != 503 {
		t.Errorf("PUT with key service down: %d, want 503", st)
	}
	if n := len(hs.up.requests()); n != 0 {
		t.Fatalf("%d requests forwarded while the key service was down", n)
	}
	if st := do("GET", "/v1/AUTH_demo/c/o", "tok-demo"); st != 201 {
		t.Errorf("GET with key service down: %d, want it forwarded", st)
	}
	hs.keys.down.Store(false)
	hs.tokens.down.Store(true)
	if st := do("GET", "/v1/AUTH_demo/c/o", "tok-demo"); st != 503 {
		t.Errorf("GET with Keystone down: %d, want 503", st)
	}
	if st := do("GET", "/v1/AUTH_demo/c/o", ""); st != 201 {
		t.Errorf("GET without token with Keystone down: %d, want it forwarded", st)
	}
	if n := len(hs.up.requests()); n != 2 {
		t.Errorf("%d requests forwarded, want 2", n)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	f, err := New(Config{Upstream: "http://" + addr}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/AUTH_demo/c/o")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "Swift proxy is unavailable") {
		t.Errorf("upstream down: %d %q", resp.StatusCode, body)
	}
}

func TestHealthcheck(t *testing.T) {
	disable := filepath.Join(t.TempDir(), "disabled")
	hs := newHarness(t, nil, func(c *Config) { c.DisableByFilePath = disable })
	check := func(method string, want int, wantBody string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.filter.URL+"/healthcheck", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || string(body) != wantBody {
			t.Errorf("%s /healthcheck: %d %q, want %d %q", method, resp.StatusCode, body, want, wantBody)
		}
	}
	check("GET", 200, "OK\n")
	check("HEAD", 204, "")
	check("POST", 405, "Method Not Allowed: Only GET and HEAD are allowed on /healthcheck.\n")
	if err := os.WriteFile(disable, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check("GET", 503, "DISABLED BY FILE\n")
	if n := len(hs.up.requests()); n != 0 {
		t.Errorf("healthcheck reached upstream %d times", n)
	}
}

func TestWrapMiddleware(t *testing.T) {
	f, err := New(Config{}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	h := f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = keyIDs(r.Header)
		w.WriteHeader(http.StatusAccepted)
	}))
	req := httptest.NewRequest("PUT", "/v1/AUTH_demo/c/o", nil)
	req.Header.Set("X-Arca-Key-Id", "key-forged")
	req.Header.Set("X-Auth-Token", "tok-demo")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || len(got) != 1 || got[0] != "key-demo" {
		t.Errorf("Wrap: %d, key ids %q", rec.Code, got)
	}
	req = httptest.NewRequest("GET", "/v1/AUTH_demo/c/o", nil)
	req.Header.Set("X-Auth-Token", "tok-bad")
	rec = httptest.NewRecorder()
	got = nil
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("Wrap with a bad token: %d", rec.Code)
	}
}

// TestExpectContinue: the client's 100 Continue comes only once the upstream
// has said 100 Continue, and a refusal before the body means no body is sent.
func TestExpectContinue(t *testing.T) {
	var reject atomic.Bool
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if reject.Load() {
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		}
		// The upstream's 100 Continue, marked so that a relayed copy shows.
		w.Header().Set("X-Upstream-Continue", "1")
		w.WriteHeader(http.StatusContinue)
		w.Header().Del("X-Upstream-Continue")
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Got", fmt.Sprint(n))
		w.WriteHeader(http.StatusCreated)
	}, nil)
	send := func() (first string, conn net.Conn, br *bufio.Reader) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(hs.filter.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() }) // before the harness's, on a failure too
		fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		br = bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return line, conn, br
	}
	// Exactly one 100 Continue, as Swift sends: the upstream's own 100 is
	// not relayed beside the one net/http sends when the body is first
	// read (relayed, it would come first or second, a race: either shows).
	for range 4 {
		line, conn, br := send()
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("first line %q, want 100 Continue", line)
		}
		for {
			h, _ := br.ReadString('\n')
			if strings.Contains(h, "X-Upstream-Continue") {
				t.Fatal("the upstream's 100 Continue was relayed")
			}
			if strings.TrimSpace(h) == "" {
				break
			}
		}
		io.WriteString(conn, "hello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || resp.Header.Get("X-Got") != "5" {
			t.Fatalf("after 100: %d (a second 1xx?), upstream got %q bytes", resp.StatusCode, resp.Header.Get("X-Got"))
		}
		conn.Close()
	}

	reject.Store(true)
	line, conn, _ := send()
	defer conn.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 412") {
		t.Fatalf("refused upload: first line %q, want 412 without 100", line)
	}
}

func TestStreaming(t *testing.T) {
	const size = 32 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	sum := md5.Sum(payload)
	var mu sync.Mutex
	remotes := map[string]bool{} // upstream connections of known-length uploads
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "PUT":
			if r.ContentLength > 0 {
				mu.Lock()
				remotes[r.RemoteAddr] = true
				mu.Unlock()
			}
			h := md5.New()
			n, _ := io.Copy(h, r.Body)
			w.Header().Set("X-Len", fmt.Sprint(n))
			w.Header().Set("Etag", fmt.Sprintf("%x", h.Sum(nil)))
			w.WriteHeader(201)
		case "GET":
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(payload)
		}
	}, nil)

	// Uploads of known length, twice: upstreamConn.ReadFrom copies them, the
	// upstream connection is kept alive between them.
	for range 2 {
		req, _ := http.NewRequest("PUT", hs.filter.URL+"/v1/AUTH_demo/c/big", bytes.NewReader(payload))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Len") != fmt.Sprint(size) || resp.Header.Get("Etag") != fmt.Sprintf("%x", sum) {
			t.Errorf("upload: %v", resp.Header)
		}
		if r := hs.up.requests(); r[len(r)-1].Chunked || r[len(r)-1].Header.Get("Content-Length") != fmt.Sprint(size) {
			t.Errorf("upload did not keep its Content-Length: %v", r[len(r)-1].Header)
		}
	}
	mu.Lock()
	if len(remotes) != 1 {
		t.Errorf("upstream connections for two uploads: %v, want 1 (keep-alive)", remotes)
	}
	mu.Unlock()

	// Chunked upload of unknown length.
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < size; off += 1 << 20 {
			pw.Write(payload[off : off+1<<20])
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", hs.filter.URL+"/v1/AUTH_demo/c/big", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Len") != fmt.Sprint(size) || resp.Header.Get("Etag") != fmt.Sprintf("%x", sum) {
		t.Errorf("chunked upload: %v", resp.Header)
	}
	if r := hs.up.requests(); !r[len(r)-1].Chunked {
		t.Error("upload did not stay chunked")
	}

	resp, err = http.Get(hs.filter.URL + "/v1/AUTH_demo/c/big")
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	n, _ := io.Copy(h, resp.Body)
	resp.Body.Close()
	if n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Errorf("download: %d bytes", n)
	}
}

// TestClientDisconnect: a client going away cancels the upstream request.
func TestClientDisconnect(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.filter.URL+"/v1/AUTH_demo/c/slow", nil)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not cancelled after the client left")
	}
}

func TestNewRejects(t *testing.T) {
	deps := Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}}
	for _, up := range []string{"ftp://x", "http://", "http://h/?q=1", "::"} {
		if _, err := New(Config{Upstream: up}, deps); err == nil {
			t.Errorf("upstream %q accepted", up)
		}
	}
	if _, err := New(Config{}, Deps{Keys: &fakeKeys{}}); err == nil {
		t.Error("no validator accepted")
	}
	if _, err := New(Config{}, Deps{Tokens: &fakeTokens{}}); err == nil {
		t.Error("no resolver accepted")
	}
}

// failConn fails writes after limit bytes.
type failConn struct {
	net.Conn
	got, limit int
	short      bool
}

func (c *failConn) Write(p []byte) (int, error) {
	if c.short {
		return len(p) / 2, nil
	}
	if c.got+len(p) > c.limit {
		return 0, errors.New("write: broken pipe")
	}
	c.got += len(p)
	return len(p), nil
}

// TestUpstreamConnReadFrom: the body copy to the upstream stops at the first
// read or write error and returns it; a short write is an error.
func TestUpstreamConnReadFrom(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 3*bufferSize+5)
	c := &upstreamConn{Conn: &failConn{limit: len(body)}}
	if n, err := c.ReadFrom(bytes.NewReader(body)); n != int64(len(body)) || err != nil {
		t.Errorf("whole body: %d, %v", n, err)
	}
	c = &upstreamConn{Conn: &failConn{limit: bufferSize}}
	if n, err := c.ReadFrom(bytes.NewReader(body)); n != bufferSize || err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("write error: %d, %v", n, err)
	}
	c = &upstreamConn{Conn: &failConn{short: true}}
	if _, err := c.ReadFrom(bytes.NewReader(body)); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("short write: %v", err)
	}
	c = &upstreamConn{Conn: &failConn{limit: len(body)}}
	cut := io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if n, err := c.ReadFrom(cut); n != 10 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("client body cut short: %d, %v", n, err)
	}
}
