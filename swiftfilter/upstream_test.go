package swiftfilter

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// closingUpstream is a Swift proxy that closes its keep-alive connections
// as eventlet does when client_timeout runs out on one that sat idle: it
// answers the first request of each connection 204 (keep-alive), and
// closes the connection without an answer when a second request arrives
// on it, after reading that request.
type closingUpstream struct {
	ln net.Listener
	mu sync.Mutex
	// seen is each request received, as "conn#n METHOD" plus whether it
	// carried an Idempotency-Key line on the wire.
	seen  []string
	conns []net.Conn
	wg    sync.WaitGroup
}

func newClosingUpstream(t *testing.T) *closingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &closingUpstream{ln: ln}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			_ = c.Close() // the filter's pool may still hold one open
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *closingUpstream) accept() {
	defer u.wg.Done()
	for n := 0; ; n++ {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.mu.Unlock()
		u.wg.Add(1)
		go u.serve(c, n)
	}
}

func (u *closingUpstream) serve(c net.Conn, conn int) {
	defer u.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		line := fmt.Sprintf("conn%d %s", conn, req.Method)
		if _, marked := req.Header["Idempotency-Key"]; marked {
			line += " idempotency-key"
		}
		u.mu.Lock()
		u.seen = append(u.seen, line)
		u.mu.Unlock()
		if i > 0 {
			return // the idle connection's time ran out: closed, no answer
		}
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-Trans-Id: txclosing\r\nConnection: keep-alive\r\n\r\n")
	}
}

func (u *closingUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// TestUpstreamClosesIdleConnection: a DELETE that goes out on a pooled
// connection the Swift proxy closes as it arrives is sent again on a new
// connection and answered, rather than answered 503 by the filter; the
// Idempotency-Key that lets net/http resend it never reaches the proxy. A
// DELETE with a body, which the transport cannot send twice, is not.
func TestUpstreamClosesIdleConnection(t *testing.T) {
	up := newClosingUpstream(t)
	f, err := New(Config{Upstream: "http://" + up.ln.Addr().String()}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	del := func(body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodDelete, srv.URL+"/v1/AUTH_demo/c/o", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", "tok-demo")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if st := del(""); st != http.StatusNoContent {
		t.Fatalf("first DELETE: %d", st)
	}
	if st := del(""); st != http.StatusNoContent {
		t.Errorf("DELETE on a connection the proxy closed: %d, want the proxy's 204 after a resend", st)
	}
	want := []string{"conn0 DELETE", "conn0 DELETE", "conn1 DELETE"}
	if got := up.requests(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("upstream saw %q, want %q (resent on a new connection, no Idempotency-Key on the wire)", got, want)
	}

	if st := del("x"); st != http.StatusServiceUnavailable {
		t.Errorf("DELETE with a body on a connection the proxy closed: %d, want the filter's 503 (a body is not sent twice)", st)
	}
	if got := up.requests(); len(got) != 4 || got[3] != "conn1 DELETE" {
		t.Errorf("upstream saw %q, want one more DELETE on the pooled connection and no resend", got)
	}
}
