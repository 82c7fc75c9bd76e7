package swiftfilter

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/testenv"
)

// wireLog records what the filter sends to the Swift proxy: the requests
// that reached it, with every header Swift would read as X-Arca-Key-Id.
type wireLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []wireReq
}

type wireReq struct {
	Method, Path string
	KeyIDs       []string
}

func (w *wireLog) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.reqs = append(w.reqs, wireReq{Method: r.Method, Path: r.URL.Path, KeyIDs: keyIDs(r.Header)})
	w.mu.Unlock()
	return w.base.RoundTrip(r)
}

func (w *wireLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reqs)
}

func (w *wireLog) since(n int) []wireReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireReq(nil), w.reqs[n:]...)
}

// swiftProxy is a private swift-proxy-server on the stack's rings and
// servers, with tempurl and formpost added to the stack's pipeline.
type swiftProxy struct {
	conf, log string
	port      int
	cmd       *exec.Cmd
	done      chan struct{}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newSwiftProxy(t *testing.T, swiftDir string) *swiftProxy {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(swiftDir, "proxy-server.conf"))
	if err != nil {
		testenv.StackMissing(t, "no Swift proxy configuration in ARCA_TEST_SWIFT_DIR")
	}
	testenv.RequireTools(t, "swift-proxy-server")
	p := &swiftProxy{port: freePort(t)}
	dir := t.TempDir()
	conf := regexp.MustCompile(`(?m)^bind_port = \d+$`).ReplaceAllString(string(src), fmt.Sprintf("bind_port = %d", p.port))
	conf = strings.Replace(conf, " bulk authtoken ", " bulk tempurl formpost authtoken ", 1)
	if !strings.Contains(conf, " tempurl formpost ") {
		t.Fatalf("unexpected pipeline in the stack's proxy-server.conf")
	}
	conf += "\n[filter:tempurl]\nuse = egg:swift#tempurl\n[filter:formpost]\nuse = egg:swift#formpost\n"
	p.conf = filepath.Join(dir, "proxy-server.conf")
	p.log = filepath.Join(dir, "proxy.log")
	if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start(t)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *swiftProxy) url() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *swiftProxy) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("swift-proxy-server", p.conf, "-v")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url() + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			t.Fatalf("swift-proxy-server exited:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("swift-proxy-server on %d not healthy", p.port)
}

// stop ends the proxy this test started (its own process group only).
func (p *swiftProxy) stop(t *testing.T) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

type realEnv struct {
	ks              *testenv.KeystoneEnv
	proxy           *swiftProxy
	wire            *wireLog
	filter          *httptest.Server
	logs            *syncBuffer
	demoTok, altTok string
	demo, alt       string // project ids
}

// startReal is the filter, as the arca-filter service user, in front of a
// private Swift proxy of the stack, resolving key ids with fakeKeys.
func startReal(t *testing.T) *realEnv {
	t.Helper()
	return startRealWith(t, testenv.LoadKeystone(t), &fakeKeys{})
}

// startRealWith is startReal with the key resolver given.
func startRealWith(t *testing.T, ks *testenv.KeystoneEnv, keys keyclient.Resolver) *realEnv {
	t.Helper()
	swiftDir := testenv.SwiftDir(t)
	e := &realEnv{ks: ks, logs: &syncBuffer{}}
	e.proxy = newSwiftProxy(t, swiftDir)
	// The filter validates tokens as its own service user (service and
	// key-manager:swift-filter, nothing else), as deployed.
	kcfg := ks.UserConfig(testenv.UserArcaFilter)
	v, err := keystone.NewValidator(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 10 * time.Second
	e.wire = &wireLog{base: tr}
	f, err := New(Config{Upstream: e.proxy.url(), WWWAuthenticate: keystone.WWWAuthenticate(kcfg), AccessLog: true},
		Deps{Tokens: v, Keys: keys, Log: zerolog.New(e.logs), Transport: e.wire})
	if err != nil {
		t.Fatal(err)
	}
	e.filter = httptest.NewServer(f)
	t.Cleanup(e.filter.Close)
	e.demoTok, e.altTok = ks.Token(t, testenv.UserDemo), ks.Token(t, testenv.UserAlt)
	for tok, id := range map[string]*string{e.demoTok: &e.demo, e.altTok: &e.alt} {
		kt, err := v.Validate(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		*id = kt.ProjectID
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(e.proxy.log)
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("filter log:\n%s\nproxy log (tail):\n%s", e.logs.String(), out)
		}
	})
	return e
}

func (e *realEnv) do(t *testing.T, method, path, token string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.filter.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func (e *realEnv) must(t *testing.T, want int, method, path, token string, body []byte, hdr map[string]string) []byte {
	t.Helper()
	resp, b := e.do(t, method, path, token, body, hdr)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// lastKeyIDs returns the key ids of the last request with method and path
// that reached the proxy since n.
func (e *realEnv) lastKeyIDs(t *testing.T, n int, method, path string) []string {
	t.Helper()
	reqs := e.wire.since(n)
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && reqs[i].Path == path {
			return reqs[i].KeyIDs
		}
	}
	t.Fatalf("%s %s never reached the proxy (saw %+v)", method, path, reqs)
	return nil
}

func TestRealStackFilter(t *testing.T) {
	e := startReal(t)
	acct := "/v1/AUTH_" + e.demo
	cont := fmt.Sprintf("sf-%d", time.Now().UnixNano())
	e.must(t, 201, "PUT", acct+"/"+cont, e.demoTok, nil, nil)

	t.Run("swift CLI upload download copy", func(t *testing.T) {
		testenv.RequireTools(t, "swift") // python3-swiftclient
		dir := t.TempDir()
		src := filepath.Join(dir, "in.bin")
		data := bytes.Repeat([]byte("arca swift filter "), 100000)
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		swift := func(args ...string) {
			t.Helper()
			cmd := exec.Command("swift", append([]string{"--os-auth-token", e.demoTok, "--os-storage-url", e.filter.URL + acct}, args...)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("swift %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		n := e.wire.count()
		swift("upload", cont, "in.bin", "--object-name", "cli/obj")
		if ids := e.lastKeyIDs(t, n, "PUT", acct+"/"+cont+"/cli/obj"); len(ids) != 1 || ids[0] != "key-"+e.demo {
			t.Errorf("CLI upload reached the proxy with key ids %q", ids)
		}
		swift("copy", cont, "cli/obj", "--destination", "/"+cont+"/cli/copy")
		if ids := e.lastKeyIDs(t, n, "COPY", acct+"/"+cont+"/cli/obj"); len(ids) != 1 || ids[0] != "key-"+e.demo {
			t.Errorf("CLI copy reached the proxy with key ids %q", ids)
		}
		swift("download", cont, "cli/copy", "-o", "out.bin")
		got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("downloaded copy differs (%d bytes, %v)", len(got), err)
		}
	})

	t.Run("forged key id never reaches the proxy", func(t *testing.T) {
		n := e.wire.count()
		forged := map[string]string{"X-Arca-Key-Id": "key-" + e.alt}
		e.must(t, 201, "PUT", acct+"/"+cont+"/forged", e.demoTok, []byte("x"), forged)
		if ids := e.lastKeyIDs(t, n, "PUT", acct+"/"+cont+"/forged"); len(ids) != 1 || ids[0] != "key-"+e.demo {
			t.Errorf("PUT reached the proxy with key ids %q", ids)
		}
		e.must(t, 200, "GET", acct+"/"+cont+"/forged", e.demoTok, nil, forged)
		if ids := e.lastKeyIDs(t, n, "GET", acct+"/"+cont+"/forged"); len(ids) != 0 {
			t.Errorf("GET reached the proxy with key ids %q", ids)
		}
	})

	t.Run("invalid token stops at the filter", func(t *testing.T) {
		n := e.wire.count()
		resp, _ := e.do(t, "PUT", acct+"/"+cont+"/nope", "gAAAAABinvalidtoken", []byte("x"), nil)
		// Swift's realm challenge comes first, then Keystone's.
		if challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), ", "); resp.StatusCode != 401 || !strings.Contains(challenges, e.ks.URL) {
			t.Errorf("invalid token: %d, WWW-Authenticate %q", resp.StatusCode, challenges)
		}
		if got := e.wire.count(); got != n {
			t.Errorf("%d requests reached the proxy", got-n)
		}
	})

	t.Run("SLO upload", func(t *testing.T) {
		seg1, seg2 := bytes.Repeat([]byte("a"), 1<<20), []byte("tail")
		e.must(t, 201, "PUT", acct+"/"+cont+"/slo/1", e.demoTok, seg1, nil)
		e.must(t, 201, "PUT", acct+"/"+cont+"/slo/2", e.demoTok, seg2, nil)
		manifest := fmt.Sprintf(`[{"path":"/%s/slo/1","etag":"%x","size_bytes":%d},{"path":"/%s/slo/2","etag":"%x","size_bytes":%d}]`,
			cont, md5.Sum(seg1), len(seg1), cont, md5.Sum(seg2), len(seg2))
		e.must(t, 201, "PUT", acct+"/"+cont+"/slo/big?multipart-manifest=put", e.demoTok, []byte(manifest), nil)
		got := e.must(t, 200, "GET", acct+"/"+cont+"/slo/big", e.demoTok, nil, nil)
		if !bytes.Equal(got, append(seg1, seg2...)) {
			t.Errorf("SLO GET: %d bytes", len(got))
		}
	})

	t.Run("TempURL GET and PUT without a token", func(t *testing.T) {
		key := "tempurl-key-" + cont
		e.must(t, 204, "POST", acct, e.demoTok, nil, map[string]string{"X-Account-Meta-Temp-URL-Key": key})
		sign := func(method, path string) string {
			exp := time.Now().Add(5 * time.Minute).Unix()
			mac := hmac.New(sha256.New, []byte(key))
			fmt.Fprintf(mac, "%s\n%d\n%s", method, exp, path)
			return fmt.Sprintf("%s?temp_url_sig=%s&temp_url_expires=%d", path, hex.EncodeToString(mac.Sum(nil)), exp)
		}
		path := acct + "/" + cont + "/tmp/obj"
		n := e.wire.count()
		// No token, so no key id: Swift checks the signature, and the object
		// server resolves the account's key itself.
		e.must(t, 201, "PUT", sign("PUT", path), "", []byte("temp data"), map[string]string{"X-Arca-Key-Id": "key-" + e.alt})
		if ids := e.lastKeyIDs(t, n, "PUT", path); len(ids) != 0 {
			t.Errorf("TempURL PUT reached the proxy with key ids %q", ids)
		}
		if got := e.must(t, 200, "GET", sign("GET", path), "", nil, nil); string(got) != "temp data" {
			t.Errorf("TempURL GET: %q", got)
		}
		e.must(t, 401, "GET", path, "", nil, nil) // no token, no signature: Swift says no
	})

	t.Run("public container without a token", func(t *testing.T) {
		pub := cont + "-pub"
		e.must(t, 201, "PUT", acct+"/"+pub, e.demoTok, nil, map[string]string{"X-Container-Read": ".r:*"})
		e.must(t, 201, "PUT", acct+"/"+pub+"/o", e.demoTok, []byte("public"), nil)
		if got := e.must(t, 200, "GET", acct+"/"+pub+"/o", "", nil, nil); string(got) != "public" {
			t.Errorf("public GET: %q", got)
		}
	})

	t.Run("COPY into another account through an ACL", func(t *testing.T) {
		altAcct := "/v1/AUTH_" + e.alt
		shared := cont + "-shared"
		e.must(t, 201, "PUT", altAcct+"/"+shared, e.altTok, nil, map[string]string{"X-Container-Write": e.demo + ":*"})
		e.must(t, 201, "PUT", acct+"/"+cont+"/src", e.demoTok, []byte("shared data"), nil)
		n := e.wire.count()
		e.must(t, 201, "COPY", acct+"/"+cont+"/src", e.demoTok, nil,
			map[string]string{"Destination": shared + "/dst", "Destination-Account": "AUTH_" + e.alt})
		// demo's token does not own alt's account: no key id from the filter
		// (the object server resolves alt's key once Swift allowed the write).
		if ids := e.lastKeyIDs(t, n, "COPY", acct+"/"+cont+"/src"); len(ids) != 0 {
			t.Errorf("COPY to alt reached the proxy with key ids %q, want none", ids)
		}
		e.must(t, 201, "PUT", altAcct+"/"+shared+"/put", e.demoTok, []byte("by demo"), nil)
		if ids := e.lastKeyIDs(t, n, "PUT", altAcct+"/"+shared+"/put"); len(ids) != 0 {
			t.Errorf("ACL PUT reached the proxy with key ids %q, want none", ids)
		}
		if got := e.must(t, 200, "GET", altAcct+"/"+shared+"/dst", e.altTok, nil, nil); string(got) != "shared data" {
			t.Errorf("alt reads %q", got)
		}
	})

	t.Run("Swift proxy stopped and started again", func(t *testing.T) {
		e.proxy.stop(t)
		resp, b := e.do(t, "GET", acct+"/"+cont+"/forged", e.demoTok, nil, nil)
		if resp.StatusCode != 503 {
			t.Fatalf("proxy down: %d %s", resp.StatusCode, b)
		}
		e.proxy.start(t)
		e.must(t, 200, "GET", acct+"/"+cont+"/forged", e.demoTok, nil, nil)
	})

	if logs := e.logs.String(); strings.Contains(logs, e.demoTok) || strings.Contains(logs, e.altTok) || strings.Contains(logs, "temp_url_sig") {
		t.Error("a token or TempURL signature appears in the filter's log")
	}
}
