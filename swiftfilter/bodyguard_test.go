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

// TestBodyAfterEarlyAnswer: an upload is refused before its body is read,
// by the proxy (as Swift does with 413, 401 or a 503 from the object
// tier) or by the filter itself (its 503 while the key service is away),
// and the client sends the body anyway, then its next request on the same
// connection. Nothing may read the body once the filter has answered:
// net/http would start its background read of the connection just as it
// reads the next request, and panic.
func TestBodyAfterEarlyAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keyDown bool
		token   string
		size    int
	}{
		{name: "proxy refuses", size: 64 << 10},
		{name: "filter refuses", keyDown: true, token: "tok-demo", size: 64 << 10},
		{name: "filter refuses a body over the drain limit", keyDown: true, token: "tok-demo", size: drainMax + 64<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				// Answer at once, body unread, as Swift's eventlet server
				// does (Go's server would otherwise drain the body first).
				// It closes the connection after: a Go server that kept it
				// would itself hit the concurrent-read panic this test is
				// about, 30 stack traces per run in the log of a stand-in.
				_ = http.NewResponseController(w).EnableFullDuplex()
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			keys := &fakeKeys{}
			keys.down.Store(tc.keyDown)
			f, err := New(Config{Upstream: up.URL, ResellerPrefixes: []string{"AUTH"}},
				Deps{Tokens: &fakeTokens{}, Keys: keys, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			var serverLog syncBuffer
			srv := httptest.NewUnstartedServer(f)
			srv.Config.ErrorLog = log.New(&serverLog, "", 0)
			srv.Start()
			t.Cleanup(srv.Close)
			uploadAfterAnswer(t, srv.Listener.Addr().String(), tc.token, strings.Repeat("x", tc.size))
			if s := serverLog.String(); strings.Contains(s, "panic") {
				t.Fatalf("the filter's server panicked:\n%s", s)
			}
		})
	}
}

// uploadAfterAnswer sends uploads whose answer comes before their body,
// then the body, then a HEAD on the same connection.
func uploadAfterAnswer(t *testing.T, addr, token, body string) {
	t.Helper()
	for i := range 30 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o%d HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\nContent-Length: %d\r\n\r\n", i, token, len(body))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("upload %d: no early answer: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("upload %d: %d, want 503", i, resp.StatusCode)
		}
		// The body nobody wanted, then the next request.
		_, _ = io.WriteString(conn, body)
		fmt.Fprintf(conn, "HEAD /v1/AUTH_demo/c/o%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead}); err == nil {
			resp.Body.Close()
		}
		conn.Close()
	}
}
