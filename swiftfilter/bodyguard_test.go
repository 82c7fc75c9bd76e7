package swiftfilter

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestBodyAfterEarlyAnswer: the proxy refuses an upload before reading
// its body (as Swift does with 413, 401 or a 503 from the object tier)
// and the client sends the body anyway, then its next request on the same
// connection. The transport's writer must not go on reading the body once
// the filter has answered: net/http would start its background read of
// the connection just as it reads the next request, and panic.
func TestBodyAfterEarlyAnswer(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		// Answer at once, body unread, as Swift's eventlet server does
		// (Go's server would otherwise drain the body first).
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f, err := New(Config{Upstream: up.URL, ResellerPrefixes: []string{"AUTH"}},
		Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var serverLog syncBuffer
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	body := strings.Repeat("x", 64<<10)
	for i := range 40 {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", i, len(body))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("upload %d: no early answer: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("upload %d: %d, want the proxy's 503", i, resp.StatusCode)
		}
		// The body the proxy did not want, then the next request.
		_, _ = io.WriteString(conn, body)
		fmt.Fprintf(conn, "HEAD /v1/AUTH_demo/c/o%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead}); err == nil {
			resp.Body.Close()
		}
		conn.Close()
	}
	if s := serverLog.String(); strings.Contains(s, "panic") {
		t.Fatalf("the filter's server panicked:\n%s", s)
	}
}
