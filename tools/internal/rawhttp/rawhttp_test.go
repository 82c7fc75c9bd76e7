package rawhttp

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/chunked":
			_, _ = io.WriteString(w, "chu")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "nked")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(append([]byte(r.Method+" "+r.URL.RawQuery+" "+r.Header.Get("X-Test")+" "), b...))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			_, _ = w.Write(make([]byte, 3000))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(host, host, 5*time.Second)
	defer c.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = bytes.NewReader([]byte(body))
		}
		req, err := http.NewRequest(method, srv.URL+path, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test", "yes")
		status, b, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return status, string(b)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/length", "", 200, "hello"},
		{"GET", "/chunked", "", 200, "chunked"},
		{"POST", "/echo?a=b", `{"x":1}`, 201, `POST a=b yes {"x":1}`},
		{"DELETE", "/empty", "", 204, ""},
		{"GET", "/missing", "", 404, "404 page not found\n"},
		{"GET", "/length", "", 200, "hello"},
	} {
		if status, got := do(tc.method, tc.path, tc.body); status != tc.status || got != tc.want {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, status, got, tc.status, tc.want)
		}
	}
	// Send: headers and bodies from slices, small ones behind the head
	// and large ones written from the caller's slice.
	large := bytes.Repeat([]byte("0123456789abcdef"), 2*inlineBody/16+3)
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		want   string
	}{
		{"no body", "GET", nil, "GET  yes "},
		{"empty body", "PUT", []byte{}, "PUT  yes "},
		{"small body", "PUT", []byte("four"), "PUT  yes four"},
		{"large body", "PUT", large, "PUT  yes " + string(large)},
	} {
		status, got, err := c.Send(tc.method, "/echo", http.Header{"X-Test": {"yes"}}, tc.body)
		if err != nil || status != 201 || string(got) != tc.want {
			t.Errorf("Send %s: %d, %d bytes, %v; want 201, %d bytes", tc.name, status, len(got), err, len(tc.want))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for keep-alive requests, want 1", n)
	}
	// An answer larger than MaxBody is an error (and drops the connection,
	// which is left mid-answer).
	c.MaxBody = 2000
	if _, _, err := c.Send("GET", "/big", nil, nil); err == nil || !strings.Contains(err.Error(), "3000 bytes") {
		t.Errorf("answer over MaxBody: %v", err)
	}
	c.MaxBody = 0
	if status, got := do("GET", "/big", ""); status != 200 || len(got) != 3000 {
		t.Errorf("big = %d, %d bytes", status, len(got))
	}
	// The server closing: the next request opens a new connection.
	if status, got := do("GET", "/close", ""); status != 200 || got != "bye" {
		t.Errorf("close = %d %q", status, got)
	}
	do("GET", "/length", "")
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections after Connection: close, want 3", n)
	}
	// An idle connection the server dropped is retried on a new one.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if status, got := do("GET", "/length", ""); status != 200 || got != "hello" {
		t.Errorf("after the server dropped the connection: %d %q", status, got)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections after a dropped one, want 4", n)
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:9311": "127.0.0.1:9311", "example.com": "example.com:80", "[::1]": "[::1]:80", "[::1]:8080": "[::1]:8080"} {
		if got := HostPort(in); got != want {
			t.Errorf("HostPort(%q) = %q, want %q", in, got, want)
		}
	}
}
