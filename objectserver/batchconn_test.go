package objectserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// countingListener counts the write(2)s of the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestSmallAnswerOneWrite: a GET or HEAD answered whole from its first
// window goes out in one write(2) on ServeListener's connections, headers
// and body together, keep-alive answer after keep-alive answer; the
// bytes are the object's. Larger answers stream as before.
func TestSmallAnswerOneWrite(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.srv.ServeListener(ctx, countingListener{ln, &writes}) }()
	t.Cleanup(func() { cancel(); <-errc })
	base := "http://" + ln.Addr().String()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	// The objects below are written through e.srv directly. Before it
	// serves, the server removes every temp file older than its start (a
	// dead writer's): a PUT racing that sweep lost its temp file and
	// failed with 500. Any answer through the listener means the sweep is
	// over.
	resp, err := c.Head(base + "/sda/1/AUTH_p1/c/none")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()

	for _, tc := range []struct {
		name       string
		size       int
		method     string
		rangeHdr   string
		wantStatus int
		wantBody   int  // bytes of body
		oneWrite   bool // the answer in one write(2)
	}{
		{"empty", 0, "GET", "", 200, 0, true},
		{"100 B", 100, "GET", "", 200, 100, true},
		{"4 KiB", 4 << 10, "GET", "", 200, 4 << 10, true},
		{"4 KiB HEAD", 4 << 10, "HEAD", "", 200, 0, true},
		{"4 KiB range", 4 << 10, "GET", "bytes=10-1033", 206, 1024, true},
		{"12 KiB", 12 << 10, "GET", "", 200, 12 << 10, true},
		{"300 KiB", 300 << 10, "GET", "", 200, 300 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("0123456789abcdef", tc.size/16+1)[:tc.size]
			path := "/sda/1/AUTH_p1/c/" + strings.ReplaceAll(tc.name, " ", "_")
			if r := e.put(path, body, nil); r.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %s %s", r.Status, readBody(t, r))
			}
			for round := range 2 { // the second on the kept-alive connection
				req, _ := http.NewRequest(tc.method, base+path, nil)
				if tc.rangeHdr != "" {
					req.Header.Set("Range", tc.rangeHdr)
				}
				w0 := writes.Load()
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got := readBody(t, resp)
				n := writes.Load() - w0
				want := body
				if tc.rangeHdr != "" {
					want = body[10:1034]
				}
				if tc.method == "HEAD" {
					want = ""
				}
				if resp.StatusCode != tc.wantStatus || len(got) != tc.wantBody || got != want {
					t.Fatalf("round %d: %s, %d bytes (want %d, %d bytes, the object's)", round, resp.Status, len(got), tc.wantStatus, tc.wantBody)
				}
				if resp.Header.Get("Content-Length") != fmt.Sprint(tc.wantBody) && tc.method != "HEAD" {
					t.Fatalf("Content-Length %q, want %d", resp.Header.Get("Content-Length"), tc.wantBody)
				}
				if tc.oneWrite && n != 1 {
					t.Fatalf("round %d: the answer took %d write(2)s, want 1", round, n)
				}
				if !tc.oneWrite && n < 2 {
					t.Fatalf("round %d: %d write(2)s for %d bytes", round, n, tc.wantBody)
				}
			}
		})
	}
}
