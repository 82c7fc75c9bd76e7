package objectserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/ringhash"
)

// memResolver is an in-memory key service for unit tests.
type memResolver struct {
	mu      sync.Mutex
	active  map[string]string            // project -> key id
	keys    map[string]map[string][]byte // project -> id -> material
	down    bool
	destroy map[string]bool
}

func newMemResolver() *memResolver {
	return &memResolver{active: map[string]string{}, keys: map[string]map[string][]byte{}, destroy: map[string]bool{}}
}

func (m *memResolver) rotate(project string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := fmt.Sprintf("key-%s-%d", project, len(m.keys[project])+1)
	if m.keys[project] == nil {
		m.keys[project] = map[string][]byte{}
	}
	k := md5.Sum([]byte(id))
	m.keys[project][id] = append(k[:], k[:]...)
	m.active[project] = id
	return id
}

func (m *memResolver) ActiveKey(_ context.Context, project string) (keyclient.Key, error) {
	m.mu.Lock()
	down := m.down
	id, ok := m.active[project]
	m.mu.Unlock()
	if down {
		return keyclient.Key{}, keyclient.ErrUnavailable
	}
	if !ok {
		id = m.rotate(project)
	}
	return keyclient.Key{ID: id, ProjectID: project, Algorithm: "aes_256_cbc", BitLength: 256}, nil
}

func (m *memResolver) KeyMaterial(_ context.Context, project, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, keyclient.ErrUnavailable
	}
	if m.destroy[id] {
		return nil, keyclient.ErrDestroyed
	}
	k, ok := m.keys[project][id]
	if !ok {
		return nil, keyclient.ErrNotFound
	}
	return k, nil
}

// containerRecorder is a fake container server.
type containerRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	code int
}

func (c *containerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	code := c.code
	c.mu.Unlock()
	if code == 0 {
		code = http.StatusCreated
	}
	w.WriteHeader(code)
}

func (c *containerRecorder) last() *http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		return nil
	}
	return c.reqs[len(c.reqs)-1]
}

type env struct {
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	devices string
	keys    *memResolver
	cont    *containerRecorder
	contURL string
	logs    *bytes.Buffer
	clock   time.Time
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	devices := t.TempDir()
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Devices: devices, Encrypt: true, Algorithm: 2, SegmentSize: 4096, StoredEtag: true,
		ReclaimAge: 7 * 24 * time.Hour, ContainerUpdateTimeout: 2 * time.Second, ReplicationServer: true,
	}
	for _, f := range mutate {
		f(&cfg)
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "pre", Suffix: "suf"}, Policies: map[int]ringhash.Policy{
		0: {Index: 0, Type: "replication"}, 1: {Index: 1, Type: "replication"}, 2: {Index: 2, Type: "erasure_coding", ECFragments: 6},
	}}
	keys := newMemResolver()
	logs := &bytes.Buffer{}
	var lmu sync.Mutex
	srv, err := New(cfg, swift, keys, zerolog.New(lockedWriter{&lmu, logs}))
	if err != nil {
		t.Fatal(err)
	}
	srv.disk.NoFsync = true
	e := &env{t: t, srv: srv, devices: devices, keys: keys, cont: &containerRecorder{}, logs: logs}
	e.clock = time.Now()
	e.ts = httptest.NewServer(srv)
	cs := httptest.NewServer(e.cont)
	e.contURL = strings.TrimPrefix(cs.URL, "http://")
	t.Cleanup(func() {
		e.ts.Close()
		srv.Wait()
		cs.Close()
	})
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// next returns a fresh X-Timestamp.
func (e *env) next() string {
	e.clock = e.clock.Add(time.Second)
	return diskfile.FromTime(e.clock).Internal()
}

func (e *env) do(method, path string, body io.Reader, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

const objPath = "/sda/1/AUTH_p1/c/o/bj"

func (e *env) put(path, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	h := map[string]string{
		"X-Timestamp": e.next(), "Content-Type": "text/plain",
		"X-Container-Host": e.contURL, "X-Container-Device": "cd", "X-Container-Partition": "9",
	}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do("PUT", path, strings.NewReader(body), h)
}

// walk returns every regular file under the devices.
func (e *env) files() []string {
	var out []string
	_ = filepath.WalkDir(e.devices, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func (e *env) assertNoPlaintext(plain string) {
	e.t.Helper()
	for _, f := range e.files() {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(plain)) {
			e.t.Fatalf("plaintext found in %s", f)
		}
	}
}

func TestPutGetHeadPostDelete(t *testing.T) {
	e := newEnv(t)
	body := strings.Repeat("secret plaintext! ", 1000)
	resp := e.put(objPath, body, map[string]string{
		"X-Object-Meta-Color": "blue", "Etag": md5hex(body),
		"X-Object-Sysmeta-Arca-Key-Id": "forged", "X-Object-Sysmeta-Arca-Plaintext-Length": "1",
		"Content-Disposition": "inline", "X-Unknown-Header": "dropped",
	})
	readBody(t, resp)
	if resp.StatusCode != 201 || resp.Header.Get("Etag") != `"`+md5hex(body)+`"` {
		t.Fatalf("PUT %d etag %s", resp.StatusCode, resp.Header.Get("Etag"))
	}
	e.assertNoPlaintext("secret plaintext")
	cu := e.cont.last()
	if cu == nil || cu.Method != "PUT" || cu.URL.Path != "/cd/9/AUTH_p1/c/o/bj" ||
		cu.Header.Get("X-Size") != strconv.Itoa(len(body)) || e.openListing(listPath, "etag", cu.Header.Get("X-Etag")) != md5hex(body) ||
		cu.Header.Get("X-Content-Type") != "text/plain" {
		t.Fatalf("container update %+v", cu)
	}

	resp = e.do("GET", objPath, nil, nil)
	got := readBody(t, resp)
	if resp.StatusCode != 200 || got != body {
		t.Fatalf("GET %d, %d bytes", resp.StatusCode, len(got))
	}
	for k, want := range map[string]string{
		"Content-Length": strconv.Itoa(len(body)), "Etag": `"` + md5hex(body) + `"`, "X-Object-Meta-Color": "blue",
		"Content-Disposition": "inline", "Content-Type": "text/plain",
	} {
		if resp.Header.Get(k) != want {
			t.Errorf("GET %s = %q, want %q", k, resp.Header.Get(k), want)
		}
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-object-sysmeta-arca") || k == "X-Unknown-Header" {
			t.Errorf("GET shows %s", k)
		}
	}
	if resp.Header.Get("X-Backend-Timestamp") == "" || resp.Header.Get("Last-Modified") == "" {
		t.Errorf("missing timestamps: %v", resp.Header)
	}

	resp = e.do("HEAD", objPath, nil, nil)
	readBody(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("HEAD %d %v", resp.StatusCode, resp.Header)
	}

	// POST replaces user metadata
	resp = e.do("POST", objPath, nil, map[string]string{"X-Timestamp": e.next(), "X-Object-Meta-Size": "L", "Content-Type": "image/png",
		"X-Container-Host": e.contURL, "X-Container-Device": "cd", "X-Container-Partition": "9"})
	readBody(t, resp)
	if resp.StatusCode != 202 || resp.Header.Get("X-Backend-Content-Type") != "image/png" {
		t.Fatalf("POST %d %v", resp.StatusCode, resp.Header)
	}
	if cu := e.cont.last(); cu.Header.Get("X-Size") != strconv.Itoa(len(body)) || cu.Header.Get("X-Meta-Timestamp") == "" {
		t.Fatalf("POST container update %v", cu.Header)
	}
	resp = e.do("GET", objPath, nil, nil)
	got = readBody(t, resp)
	if got != body || resp.Header.Get("X-Object-Meta-Color") != "" || resp.Header.Get("X-Object-Meta-Size") != "L" ||
		resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("after POST: %v", resp.Header)
	}

	// an older PUT is refused
	old := diskfile.FromTime(time.Now().Add(-time.Hour)).Internal()
	resp = e.put(objPath, "x", map[string]string{"X-Timestamp": old})
	readBody(t, resp)
	if resp.StatusCode != 409 || resp.Header.Get("X-Backend-Timestamp") == "" {
		t.Fatalf("old PUT %d", resp.StatusCode)
	}
	resp = e.put(objPath, "x", map[string]string{"If-None-Match": "*"})
	readBody(t, resp)
	if resp.StatusCode != 412 {
		t.Fatalf("If-None-Match PUT %d", resp.StatusCode)
	}

	delTS := e.next()
	resp = e.do("DELETE", objPath, nil, map[string]string{"X-Timestamp": delTS,
		"X-Container-Host": e.contURL, "X-Container-Device": "cd", "X-Container-Partition": "9"})
	readBody(t, resp)
	if resp.StatusCode != 204 || e.cont.last().Method != "DELETE" {
		t.Fatalf("DELETE %d", resp.StatusCode)
	}
	resp = e.do("GET", objPath, nil, nil)
	readBody(t, resp)
	if resp.StatusCode != 404 || resp.Header.Get("X-Backend-Timestamp") != delTS {
		t.Fatalf("GET after DELETE %d %v", resp.StatusCode, resp.Header)
	}
	resp = e.do("DELETE", objPath, nil, map[string]string{"X-Timestamp": e.next()})
	readBody(t, resp)
	if resp.StatusCode != 404 {
		t.Fatalf("second DELETE %d", resp.StatusCode)
	}
}

func TestRangesAndConditionals(t *testing.T) {
	e := newEnv(t)
	body := make([]byte, 20000)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	readBody(t, e.put(objPath, string(body), nil))
	etag := md5hex(string(body))
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		want   string
		cr     string
	}{
		{"single", map[string]string{"Range": "bytes=4090-4200"}, 206, string(body[4090:4201]), "bytes 4090-4200/20000"},
		{"suffix", map[string]string{"Range": "bytes=-10"}, 206, string(body[19990:]), "bytes 19990-19999/20000"},
		{"open", map[string]string{"Range": "bytes=19999-"}, 206, string(body[19999:]), "bytes 19999-19999/20000"},
		{"past end clamps", map[string]string{"Range": "bytes=19000-99999"}, 206, string(body[19000:]), "bytes 19000-19999/20000"},
		{"unsatisfiable", map[string]string{"Range": "bytes=20000-"}, 416, "", "bytes */20000"},
		{"invalid ignored", map[string]string{"Range": "bytes=5-3"}, 200, string(body), ""},
		{"if-match ok", map[string]string{"If-Match": `"` + etag + `"`}, 200, string(body), ""},
		{"if-match fail", map[string]string{"If-Match": `"nope"`}, 412, "", ""},
		{"if-none-match", map[string]string{"If-None-Match": `"` + etag + `"`}, 304, "", ""},
		{"if-modified-since", map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, 304, "", ""},
		{"if-unmodified-since", map[string]string{"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 412, "", ""},
		// swob's order, not RFC 9110's: If-None-Match, If-Match,
		// If-Modified-Since (even after an If-None-Match that did not
		// match), If-Unmodified-Since.
		{"if-none-match miss, if-modified-since future", map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, 304, "", ""},
		{"if-match fail, if-none-match hit", map[string]string{"If-Match": `"nope"`, "If-None-Match": `"` + etag + `"`}, 304, "", ""},
		{"if-modified-since future, if-unmodified-since past", map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 304, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("GET", objPath, nil, tc.hdr)
			got := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d want %d", resp.StatusCode, tc.status)
			}
			if tc.status/100 == 2 && got != tc.want {
				t.Fatalf("body %d bytes, want %d", len(got), len(tc.want))
			}
			if resp.Header.Get("Content-Range") != tc.cr {
				t.Fatalf("Content-Range %q want %q", resp.Header.Get("Content-Range"), tc.cr)
			}
		})
	}
	resp := e.do("GET", objPath, nil, map[string]string{"Range": "bytes=0-9,5000-5009,-5"})
	if resp.StatusCode != 206 {
		t.Fatalf("multi %d", resp.StatusCode)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	raw := readBody(t, resp)
	if strconv.Itoa(len(raw)) != resp.Header.Get("Content-Length") {
		t.Fatalf("multipart length %d vs header %s", len(raw), resp.Header.Get("Content-Length"))
	}
	mr := multipart.NewReader(strings.NewReader(raw), params["boundary"])
	wantParts := []string{string(body[0:10]), string(body[5000:5010]), string(body[19995:])}
	for i, want := range wantParts {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		b, _ := io.ReadAll(p)
		if string(b) != want || p.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("part %d = %q (%v)", i, b, p.Header)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
	}{
		{"no timestamp", "PUT", objPath, map[string]string{"Content-Type": "x"}, 400},
		{"bad timestamp", "DELETE", objPath, map[string]string{"X-Timestamp": "yesterday"}, 400},
		{"unknown policy", "GET", objPath, map[string]string{"X-Backend-Storage-Policy-Index": "7"}, 503},
		{"ec policy, no object", "GET", objPath, map[string]string{"X-Backend-Storage-Policy-Index": "2"}, 404},
		// NUL inside a name: Swift's object server answers 400 (its
		// reserved namespace's rule), as the backend differential shows.
		{"nul in path", "GET", "/sda/1/a/c/o%00x", nil, 400},
		{"bad utf8", "GET", "/sda/1/a/c/o%ff", nil, 412},
		{"short path", "GET", "/sda/1/a/c", nil, 400},
		{"missing device", "GET", "/nope/1/AUTH_a/c/o", nil, 507},
		{"no content type", "PUT", objPath, map[string]string{"X-Timestamp": e.next()}, 400},
		{"options", "OPTIONS", "/", nil, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.method, tc.path, nil, tc.hdr)
			readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestFailClosed(t *testing.T) {
	e := newEnv(t)
	e.keys.down = true
	resp := e.put(objPath, "plaintext-never-on-disk", nil)
	readBody(t, resp)
	if resp.StatusCode != 503 {
		t.Fatalf("PUT with key service down: %d", resp.StatusCode)
	}
	if fs := e.files(); len(fs) != 0 {
		t.Fatalf("files written: %v", fs)
	}
	e.keys.down = false
	resp = e.put("/sda/1/other/c/o", "x", nil)
	readBody(t, resp)
	if resp.StatusCode != 403 {
		t.Fatalf("PUT to a non-project account: %d", resp.StatusCode)
	}
	// A foreign key id in the header is only a hint: the object goes under
	// the project's active key (writekey_test.go).
	resp = e.put(objPath, "abc", map[string]string{KeyIDHeader: "key-of-someone-else"})
	readBody(t, resp)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT with a foreign key id: %d", resp.StatusCode)
	}
	id := e.keys.rotate("p1")
	resp = e.put(objPath, "abc", map[string]string{KeyIDHeader: id})
	readBody(t, resp)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT with the right key id: %d", resp.StatusCode)
	}
	// rotation: old objects still read
	e.keys.rotate("p1")
	if resp := e.do("GET", objPath, nil, nil); readBody(t, resp) != "abc" {
		t.Fatalf("after rotation: %d", resp.StatusCode)
	}
	e.keys.down = true
	resp = e.do("GET", objPath, nil, nil)
	readBody(t, resp)
	if resp.StatusCode != 503 {
		t.Fatalf("GET with key service down: %d", resp.StatusCode)
	}
	e.keys.down = false
	e.keys.destroy[id] = true
	resp = e.do("GET", objPath, nil, nil)
	readBody(t, resp)
	if resp.StatusCode != 410 {
		t.Fatalf("GET with destroyed key: %d", resp.StatusCode)
	}
	delete(e.keys.destroy, id)
	// tamper with the stored bytes: never served
	for _, f := range e.files() {
		if strings.HasSuffix(f, ".data") {
			b, _ := os.ReadFile(f)
			b[len(b)/2] ^= 1
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp = e.do("GET", objPath, nil, nil)
	got := readBody(t, resp)
	if resp.StatusCode != 500 || got == "abc" {
		t.Fatalf("GET of tampered data: %d %q", resp.StatusCode, got)
	}
	if strings.Contains(e.logs.String(), string(e.keys.keys["p1"][id])) {
		t.Fatal("key material in logs")
	}
}

// TestTamperedRangesCleanStatus: a small object whose second segment was
// edited on disk answers a clean 500 whether one range or several ask
// for the edited segment (several once answered 206, sent the first part
// and cut the connection), and ranges inside authentic segments are
// still served.
func TestTamperedRangesCleanStatus(t *testing.T) {
	e := newEnv(t)
	body := strings.Repeat("0123456789abcdef", 3*256) // 12 KiB: three segments
	if r := e.put(objPath, body, nil); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	for _, f := range e.files() {
		if strings.HasSuffix(f, ".data") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1 // inside the second segment
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		rng  string
		want int
	}{
		{"bytes=5000-5009", http.StatusInternalServerError},
		{"bytes=0-9,5000-5009", http.StatusInternalServerError},
		{"bytes=5000-5009,0-9", http.StatusInternalServerError},
		{"bytes=0-9,20-29", http.StatusPartialContent},
	} {
		resp := e.do("GET", objPath, nil, map[string]string{"Range": c.rng})
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != c.want {
			t.Errorf("Range %s: %d, %d bytes, read error %v; want %d and the whole answer", c.rng, resp.StatusCode, len(got), err, c.want)
		}
		if c.want == http.StatusInternalServerError && bytes.Contains(got, []byte("0123")) {
			t.Errorf("Range %s: object bytes in the error answer: %q", c.rng, got)
		}
	}
}

func TestShortBodyLeavesNothing(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nX-Timestamp: %s\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nonly-a-little", objPath, e.next())
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 499 {
			t.Fatalf("short body: %d", resp.StatusCode)
		}
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fs := e.files()
		if len(fs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left on disk: %v", fs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAsyncPendingWhenContainerFails(t *testing.T) {
	e := newEnv(t)
	e.cont.code = 503
	readBody(t, e.put(objPath, "hello", nil))
	e.srv.Wait()
	var found string
	for _, f := range e.files() {
		if strings.Contains(f, "/async_pending/") {
			found = f
		}
	}
	if found == "" {
		t.Fatal("no async_pending written")
	}
	data, _ := os.ReadFile(found)
	v, err := pickle.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	h := m["headers"].(map[string]any)
	if m["op"] != "PUT" || m["obj"] != "o/bj" || h["x-size"] != "5" || e.openListing(listPath, "etag", h["x-etag"].(string)) != md5hex("hello") {
		t.Fatalf("async pending %v", m)
	}
}

func TestFootersAndEtagCheck(t *testing.T) {
	e := newEnv(t)
	body := "footer body"
	resp := e.put(objPath, body, map[string]string{"Etag": md5hex("other")})
	readBody(t, resp)
	if resp.StatusCode != 422 {
		t.Fatalf("bad etag: %d", resp.StatusCode)
	}
	boundary := "0123456789abcdef"
	footer := fmt.Sprintf(`{"Etag": "%s", "X-Object-Sysmeta-Test": "t"}`, md5hex(body))
	mime := "--" + boundary + "\r\nX-Document: object body\r\n\r\n" + body + "\r\n--" + boundary +
		"\r\nX-Document: object metadata\r\nContent-MD5: " + md5hex(footer) + "\r\n\r\n" + footer + "\r\n--" + boundary + "--"
	resp = e.put(objPath, mime, map[string]string{
		"X-Backend-Obj-Metadata-Footer": "yes", "X-Backend-Obj-Multipart-Mime-Boundary": boundary,
		"X-Backend-Obj-Content-Length": strconv.Itoa(len(body)), "Expect": "100-continue",
	})
	readBody(t, resp)
	if resp.StatusCode != 201 {
		t.Fatalf("footer PUT: %d", resp.StatusCode)
	}
	resp = e.do("GET", objPath, nil, nil)
	if got := readBody(t, resp); got != body || resp.Header.Get("X-Object-Sysmeta-Test") != "t" {
		t.Fatalf("GET after footer PUT: %q %v", got, resp.Header)
	}
}

func TestReplicate(t *testing.T) {
	e := newEnv(t)
	readBody(t, e.put(objPath, "x", nil))
	resp := e.do("REPLICATE", "/sda/1", nil, nil)
	data := readBody(t, resp)
	v, err := pickle.Decode([]byte(data))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REPLICATE %d %v", resp.StatusCode, err)
	}
	m := v.(map[string]any)
	if len(m) != 1 {
		t.Fatalf("hashes %v", m)
	}
	resp = e.do("REPLICATE", "/sda/1/abc-def", nil, nil)
	if got := readBody(t, resp); got != "\x80\x02N." {
		t.Fatalf("REPLICATE with suffixes: %q", got)
	}
}

// TestSwiftObjectInfoReadsOurFiles runs Swift's own python tool on a file
// we wrote, when Swift is installed.
func TestSwiftObjectInfoReadsOurFiles(t *testing.T) {
	testenv.RequireTools(t, "swift-object-info")
	tool, err := exec.LookPath("swift-object-info")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	readBody(t, e.put(objPath, "hello swift", map[string]string{"X-Object-Meta-Color": "bl\xc3\xbce"}))
	var data string
	for _, f := range e.files() {
		if strings.HasSuffix(f, ".data") {
			data = f
		}
	}
	out, err := exec.Command(tool, data).CombinedOutput()
	if err != nil {
		t.Fatalf("swift-object-info: %v\n%s", err, out)
	}
	for _, want := range []string{"Path: /AUTH_p1/c/o/bj", "Content-Type: text/plain", "X-Object-Sysmeta-Arca-Key-Id", "(valid)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swift-object-info output lacks %q:\n%s", want, out)
		}
	}
}

func TestRangeParsing(t *testing.T) {
	tests := []struct {
		h      string
		length int64
		ok     bool
		sat    bool
		want   []byteRange
	}{
		{"bytes=0-9", 100, true, true, []byteRange{{0, 10}}},
		{"bytes=-0", 100, true, false, nil},
		{"bytes=-200", 100, true, true, []byteRange{{0, 100}}},
		{"bytes=100-", 100, true, false, nil},
		{"bytes=0-", 0, true, false, nil},
		{"bytes=3-2", 100, false, false, nil},
		{"bytes=-", 100, false, false, nil},
		{"bytes=a-b", 100, false, false, nil},
		{"items=0-1", 100, false, false, nil},
		{"bytes=0-1,1-2,0-3,0-4", 100, true, false, nil}, // more than 2 overlaps
		{"bytes=9-9,8-8,7-7,6-6,5-5,4-4,3-3,2-2", 100, true, false, nil},
		{"bytes=9-9,8-8", 100, true, true, []byteRange{{9, 10}, {8, 9}}},
	}
	for _, tc := range tests {
		specs, ok := parseRange(tc.h)
		if ok != tc.ok {
			t.Errorf("%q: ok %v", tc.h, ok)
			continue
		}
		if !ok {
			continue
		}
		got, sat := rangesForLength(specs, tc.length)
		if sat != tc.sat || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q/%d: %v %v, want %v %v", tc.h, tc.length, got, sat, tc.want, tc.sat)
		}
	}
}

func TestLoadConfigSample(t *testing.T) {
	f, err := config.Load("../etc/arca/object-server.conf.sample")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(f); err == nil {
		t.Fatal("sample without auth_url accepted with encryption on")
	}
	f, _ = config.Parse([]byte("[DEFAULT]\ndevices = /d\nbind_port = 6210\nmount_check = false\n[arca]\ncrypto_protocol = aes_128_cbc\nauth_url = http://k:5000/v3\nusername = arca\npassword = se#cret\nreseller_prefixes = AUTH_, SERVICE_\n"))
	c, err := LoadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Devices != "/d" || c.BindPort != 6210 || c.MountCheck || c.Algorithm.String() != "aes_128_cbc" ||
		c.KeyClient.Credentials.Password != "se#cret" || len(c.ResellerPrefixes) != 2 {
		t.Fatalf("%+v", c)
	}
	f, _ = config.Parse([]byte("[arca]\ncrypto_keystore_driver = sql\n"))
	if _, err := LoadConfig(f); err == nil {
		t.Fatal("sql keystore accepted")
	}
}
