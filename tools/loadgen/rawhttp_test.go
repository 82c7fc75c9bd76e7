package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRawConn(t *testing.T) {
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
	c := newRawConn(host, host, 5*time.Second)
	defer c.close()
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
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for keep-alive requests, want 1", n)
	}
	// The server closing: the next request opens a new connection.
	if status, got := do("GET", "/close", ""); status != 200 || got != "bye" {
		t.Errorf("close = %d %q", status, got)
	}
	do("GET", "/length", "")
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections after Connection: close, want 2", n)
	}
	// An idle connection the server dropped is retried on a new one.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if status, got := do("GET", "/length", ""); status != 200 || got != "hello" {
		t.Errorf("after the server dropped the connection: %d %q", status, got)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections after a dropped one, want 3", n)
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:9311": "127.0.0.1:9311", "example.com": "example.com:80", "[::1]": "[::1]:80"} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStoreBody: the hand-written body is what encoding/json makes of it.
func TestStoreBody(t *testing.T) {
	for _, size := range []int{0, 5, 32, 100} {
		e := &Env{PayloadSize: size}
		for _, w := range []int{-1, 0, 15} {
			got := e.storeBody(w, 123456)
			tag := fmt.Sprintf("w%d-%d-", w, 123456)
			want, _ := json.Marshal(map[string]string{
				"name": "loadgen", "payload": tag + strings.Repeat("x", max(size-len(tag), 0)), "payload_content_type": "text/plain",
			})
			if !bytes.Equal(got, want) {
				t.Errorf("size %d worker %d: %s, want %s", size, w, got, want)
			}
		}
	}
}
