package swiftfilter

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// spliceSize is above DefaultSpliceMinSize.
const spliceSize = 4 << 20

var splicePayload = bytes.Repeat([]byte("0123456789abcdef"), spliceSize/16)

// bodyUpstream answers PUT with the length and hash of the body it got
// (and the read error, if any) and GET with splicePayload.
func bodyUpstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Trans-Id", "txupstream")
	w.Header().Set("X-Openstack-Request-Id", "txupstream")
	switch r.Method {
	case http.MethodPut:
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		w.Header().Set("X-Len", fmt.Sprint(n))
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		if err != nil {
			w.Header().Set("X-Err", err.Error())
		}
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet, http.MethodHead:
		size := spliceSize
		if r.URL.Path == "/v1/AUTH_demo/c/small" {
			size = 1000
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "hop")
		if r.Method == http.MethodGet {
			_, _ = w.Write(splicePayload[:size])
		}
	}
}

func sum256(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// rawPut sends a PUT with the given extra header lines and body on a new
// connection and returns the answer (1xx skipped) and the connection.
func rawPut(t *testing.T, addr, path string, body []byte, lines ...string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: swift.test\r\nContent-Length: %d\r\n%s\r\n", path, len(body), strings.Join(append(lines, ""), "\r\n"))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = conn.Write(body) }()
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: "PUT"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 200 {
			return resp, conn
		}
	}
}

func spliced(hs *harness) (puts, gets int64) {
	if hs.f.splice == nil {
		return 0, 0
	}
	return hs.f.splice.puts.Load(), hs.f.splice.gets.Load()
}

// TestSpliceBodies: large bodies go through the splice path whole, with the
// request the upstream would have got from ReverseProxy's path (the key id
// attached, forged ones and hop-by-hop headers removed, X-Forwarded-For);
// the rest takes ReverseProxy's path.
func TestSpliceBodies(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		path       string
		body       []byte
		lines      []string
		status     int
		wantBody   []byte // GET
		puts, gets int64  // bodies spliced
	}{
		{"large PUT", "PUT", "/v1/AUTH_demo/c/big", splicePayload, nil, 201, nil, 1, 0},
		{"large PUT, Expect", "PUT", "/v1/AUTH_demo/c/big", splicePayload, []string{"Expect: 100-continue"}, 201, nil, 1, 0},
		{"large PUT, query", "PUT", "/v1/AUTH_demo/c/big?multipart-manifest=put&x=%2F", splicePayload, nil, 201, nil, 1, 0},
		{"PUT below the threshold", "PUT", "/v1/AUTH_demo/c/o", splicePayload[:DefaultSpliceMinSize-1], nil, 201, nil, 0, 0},
		{"large container PUT", "PUT", "/v1/AUTH_demo/c", splicePayload, nil, 201, nil, 0, 0},
		{"large PUT, odd Expect", "PUT", "/v1/AUTH_demo/c/big", splicePayload, []string{"Expect: 100-continue", "Expect: 100-continue"}, 201, nil, 0, 0},
		{"large GET", "GET", "/v1/AUTH_demo/c/big", nil, nil, 200, splicePayload, 0, 1},
		{"small GET", "GET", "/v1/AUTH_demo/c/small", nil, nil, 200, splicePayload[:1000], 0, 0},
		{"HEAD", "HEAD", "/v1/AUTH_demo/c/big", nil, nil, 200, []byte{}, 0, 0},
	}
	for _, splice := range []bool{true, false} {
		hs := newHarness(t, bodyUpstream, func(c *Config) {
			if !splice {
				c.SpliceMinSize = -1
			}
		})
		addr := strings.TrimPrefix(hs.filter.URL, "http://")
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/splice=%v", tc.name, splice), func(t *testing.T) {
				puts0, gets0 := spliced(hs)
				before := len(hs.up.requests())
				forged := []string{"X-Auth-Token: tok-demo", "X-Arca-Key-Id: key-forged", "x_arca_key_id: key-forged2",
					"Connection: X-Arca-Key-Id, X-Drop", "X-Drop: 1", "Keep-Alive: 1", "Te: trailers", "X-Forwarded-For: 192.0.2.1"}
				var resp *http.Response
				var conn net.Conn
				if tc.method == "PUT" {
					resp, conn = rawPut(t, addr, tc.path, tc.body, append(forged, tc.lines...)...)
				} else {
					var err error
					conn, err = net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: swift.test\r\n%s\r\n\r\n", tc.method, tc.path, strings.Join(forged, "\r\n"))
					if resp, err = http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: tc.method}); err != nil {
						t.Fatal(err)
					}
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if resp.Header.Get("X-Trans-Id") != "txupstream" || resp.Header.Get("X-Openstack-Request-Id") != "txupstream" {
					t.Errorf("transaction ids not passed: %v", resp.Header)
				}
				if resp.Header.Get("X-Hop") != "" {
					t.Errorf("hop-by-hop header of the answer passed: %v", resp.Header)
				}
				if tc.wantBody != nil && sum256(got) != sum256(tc.wantBody) {
					t.Errorf("GET body: %d bytes, want %d", len(got), len(tc.wantBody))
				}
				reqs := hs.up.requests()[before:]
				if len(reqs) != 1 {
					t.Fatalf("%d upstream requests", len(reqs))
				}
				up := reqs[0]
				if up.RequestURI != tc.path {
					t.Errorf("upstream request target %q, want %q", up.RequestURI, tc.path)
				}
				ids := keyIDs(up.Header)
				wantKey := tc.method == "PUT" && tc.path != "/v1/AUTH_demo/c"
				if wantKey && (len(ids) != 1 || ids[0] != "key-demo") || !wantKey && len(ids) != 0 {
					t.Errorf("key ids at the upstream: %q", ids)
				}
				for _, h := range []string{"X-Drop", "Keep-Alive", "Connection"} {
					if v, ok := up.Header[h]; ok && !(h == "Connection" && splice && tc.puts == 1) {
						t.Errorf("hop-by-hop %s reached the upstream: %q", h, v)
					}
				}
				if up.Header.Get("Te") != "trailers" || up.Header.Get("X-Forwarded-For") != "192.0.2.1, 127.0.0.1" || up.Header.Get("X-Auth-Token") != "tok-demo" {
					t.Errorf("upstream headers: %v", up.Header)
				}
				if tc.method == "PUT" {
					if resp.Header.Get("X-Len") != fmt.Sprint(len(tc.body)) || resp.Header.Get("X-Sum") != sum256(tc.body) {
						t.Errorf("upstream got %s bytes (%s), want %d", resp.Header.Get("X-Len"), resp.Header.Get("X-Err"), len(tc.body))
					}
					if got := up.Header.Get("Content-Length"); got != fmt.Sprint(len(tc.body)) || up.Chunked {
						t.Errorf("upstream Content-Length %q, chunked %v", got, up.Chunked)
					}
				}
				puts, gets := spliced(hs)
				wantPuts, wantGets := tc.puts, tc.gets
				if !splice {
					wantPuts, wantGets = 0, 0
				}
				if puts-puts0 != wantPuts || gets-gets0 != wantGets {
					t.Errorf("spliced %d PUT, %d GET bodies; want %d, %d", puts-puts0, gets-gets0, wantPuts, wantGets)
				}
				// The access line: the upstream's status and transaction id,
				// the bytes of the answer's body.
				line := fmt.Sprintf(`"method":%q,"path":%q,"status":%d,"bytes_out":%d,`, tc.method, strings.SplitN(tc.path, "?", 2)[0], tc.status, len(got))
				if !waitLog(hs.logs, line) || !waitLog(hs.logs, `"request_id":"txupstream"`) {
					t.Errorf("no access line %s in\n%s", line, hs.logs)
				}
				if wantPuts == 1 {
					// A hijacked connection cannot go back to net/http.
					if !resp.Close {
						t.Error("spliced PUT answered without Connection: close")
					}
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
						t.Errorf("connection of a spliced PUT not closed: %d, %v", n, err)
					}
				}
			})
		}
	}
}

// waitLog waits for the access line of a request the client has its
// answer to (the line is written after).
func waitLog(logs *syncBuffer, want string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(logs.String(), want) {
			return true
		}
	}
	return false
}

// TestSpliceSameRequest: the upstream gets the same request head from the
// splice path as from ReverseProxy's (but "Connection: close").
func TestSpliceSameRequest(t *testing.T) {
	var heads []http.Header
	var uris []string
	var mu sync.Mutex
	for _, splice := range []bool{true, false} {
		hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			heads = append(heads, r.Header.Clone())
			uris = append(uris, r.Host+" "+r.RequestURI)
			mu.Unlock()
			bodyUpstream(w, r)
		}, func(c *Config) {
			if !splice {
				c.SpliceMinSize = -1
			}
		})
		addr := strings.TrimPrefix(hs.filter.URL, "http://")
		resp, _ := rawPut(t, addr, "/v1/AUTH_demo/c/a%2Fb?x=1;y=2", splicePayload, "X-Object-Meta-A: b", "X-Object-Meta-A: c",
			"User-Agent: ua", "Expect: 100-continue", "X-Arca-Key-Id: forged", "Trailer: X-Foo", "Proxy-Authorization: x")
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("splice=%v: %d", splice, resp.StatusCode)
		}
	}
	if len(heads) != 2 {
		t.Fatalf("%d requests", len(heads))
	}
	if heads[0].Get("Connection") != "close" {
		t.Errorf("splice path: Connection %q", heads[0].Get("Connection"))
	}
	heads[0].Del("Connection")
	if fmt.Sprint(heads[0]) != fmt.Sprint(heads[1]) || uris[0] != uris[1] {
		t.Errorf("splice path sent\n%s %v\nReverseProxy's\n%s %v", uris[0], heads[0], uris[1], heads[1])
	}
}

// TestSpliceExpectFinal: with Expect: 100-continue, a final answer of the
// upstream before the body goes to the client instead of 100 Continue, and
// no body byte reaches the upstream.
func TestSpliceExpectFinal(t *testing.T) {
	for _, status := range []int{401, 413} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			got := make(chan int64, 1)
			hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Trans-Id", "txupstream")
				w.Header().Set("Content-Length", "0") // the answer is complete at once
				w.WriteHeader(status)
				w.(http.Flusher).Flush()
				// No 100 Continue after a final answer: the body can only
				// come from a filter that sends it anyway.
				n, _ := io.Copy(io.Discard, r.Body)
				got <- n
			}, nil)
			conn, err := net.Dial("tcp", strings.TrimPrefix(hs.filter.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", spliceSize)
			resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "PUT"})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != status || resp.Header.Get("X-Trans-Id") != "txupstream" || !resp.Close {
				t.Errorf("answer %d %v, want %d with Connection: close", resp.StatusCode, resp.Header, status)
			}
			if n := <-got; n != 0 {
				t.Errorf("the upstream got %d body bytes", n)
			}
			if puts, _ := spliced(hs); puts != 0 {
				t.Errorf("%d bodies spliced", puts)
			}
		})
	}
}

// TestSpliceEarlyAnswer: an upstream answering in the middle of the body
// (Swift's 413, or its client_timeout's 408) ends the upload: the client
// gets the answer, nothing hangs.
func TestSpliceEarlyAnswer(t *testing.T) {
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(hs.filter.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 64<<20)
	// The client sends 2 MiB, then stalls as if the network were slow.
	go func() { _, _ = conn.Write(make([]byte, 2<<20)) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "PUT"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("answer %d, want 413", resp.StatusCode)
	}
}

// TestSpliceClientGone: a client that goes away in the middle of its upload
// leaves the upstream with a short body and a closed connection; one that
// goes away in the middle of a download closes the upstream connection.
func TestSpliceClientGone(t *testing.T) {
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	wrote := make(chan error, 1)
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Length", fmt.Sprint(256<<20))
			var err error
			for i := 0; i < 64 && err == nil; i++ {
				_, err = w.Write(splicePayload)
			}
			wrote <- err
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		got <- result{n, err}
		w.WriteHeader(http.StatusBadRequest)
	}, nil)
	addr := strings.TrimPrefix(hs.filter.URL, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", spliceSize)
	if _, err := conn.Write(splicePayload[:spliceSize/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	select {
	case r := <-got:
		if r.n >= spliceSize || r.err == nil {
			t.Errorf("upstream got %d bytes, error %v; want a short body", r.n, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream still waits for the body of a client that left")
	}
	waitLog(hs.logs, `"status":499`)
	if logs := hs.logs.String(); !strings.Contains(logs, `"status":499`) || !strings.Contains(logs, "PUT body cut after") {
		t.Errorf("access log of the cut upload:\n%s", logs)
	}

	conn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("the upstream wrote the whole download to a client that left")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection of a download whose client left stays open")
	}
}

// TestSpliceUpstreamDown: no upstream, or one that closes the connection
// without answering, is 503 on the splice path too.
func TestSpliceUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	rude, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rude.Close()
	go func() {
		for {
			c, err := rude.Accept()
			if err != nil {
				return
			}
			go func() { // read the head, then hang up
				_, _ = bufio.NewReader(c).ReadString('\n')
				c.Close()
			}()
		}
	}()
	for _, tc := range []struct{ name, addr string }{{"down", closed}, {"hangs up", rude.Addr().String()}} {
		for _, method := range []string{"PUT", "GET"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				f, err := New(Config{Upstream: "http://" + tc.addr}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(f)
				defer srv.Close()
				var resp *http.Response
				if method == "PUT" {
					resp, _ = rawPut(t, strings.TrimPrefix(srv.URL, "http://"), "/v1/AUTH_demo/c/o", splicePayload)
				} else if resp, err = http.Get(srv.URL + "/v1/AUTH_demo/c/o"); err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 || !strings.Contains(string(body), "Swift proxy is unavailable") || resp.Header.Get("X-Trans-Id") == "" {
					t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
				}
			})
		}
	}
}

// TestSpliceGETAnswers: GET answers the splice path leaves to ReverseProxy
// (no body, chunked, below the threshold) arrive as the upstream sent them,
// and the pooled connection survives the upstream closing it while idle.
func TestSpliceGETAnswers(t *testing.T) {
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/AUTH_demo/c/304":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/v1/AUTH_demo/c/204":
			w.WriteHeader(http.StatusNoContent)
		case "/v1/AUTH_demo/c/chunked":
			for off := 0; off < spliceSize; off += 1 << 20 {
				_, _ = w.Write(splicePayload[off : off+1<<20])
				w.(http.Flusher).Flush()
			}
		default:
			bodyUpstream(w, r)
		}
	}, nil)
	cases := []struct {
		path   string
		status int
		body   []byte
		gets   int64
	}{
		{"/v1/AUTH_demo/c/304", 304, []byte{}, 0},
		{"/v1/AUTH_demo/c/204", 204, []byte{}, 0},
		{"/v1/AUTH_demo/c/chunked", 200, splicePayload, 0},
		{"/v1/AUTH_demo/c/small", 200, splicePayload[:1000], 0},
		{"/v1/AUTH_demo/c/big", 200, splicePayload, 1},
		{"/v1/AUTH_demo/c/big", 200, splicePayload, 1}, // on the pooled connection
	}
	for i, tc := range cases {
		if i == len(cases)-1 {
			hs.up.CloseClientConnections() // the upstream closes the idle connection
			time.Sleep(50 * time.Millisecond)
		}
		_, gets0 := spliced(hs)
		resp, err := http.Get(hs.filter.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || !bytes.Equal(got, tc.body) {
			t.Errorf("%s: %d, %d bytes, %v", tc.path, resp.StatusCode, len(got), err)
		}
		if _, gets := spliced(hs); gets-gets0 != tc.gets {
			t.Errorf("%s: %d bodies spliced, want %d", tc.path, gets-gets0, tc.gets)
		}
	}
}

// TestSpliceTLS: a TLS client keeps ReverseProxy's path.
func TestSpliceTLS(t *testing.T) {
	up := newUpstream(t, bodyUpstream)
	f, err := New(Config{Upstream: up.URL}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	c := srv.Client()
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/AUTH_demo/c/big", bytes.NewReader(splicePayload))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Sum") != sum256(splicePayload) {
		t.Errorf("PUT: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = c.Get(srv.URL + "/v1/AUTH_demo/c/big")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum256(got) != sum256(splicePayload) {
		t.Errorf("GET: %d bytes", len(got))
	}
	if f.splice.puts.Load() != 0 || f.splice.gets.Load() != 0 {
		t.Errorf("spliced over TLS: %d PUT, %d GET", f.splice.puts.Load(), f.splice.gets.Load())
	}
}

// TestSpliceSmuggling: requests whose length is ambiguous never take the
// splice path (net/http refuses most of them itself).
func TestSpliceSmuggling(t *testing.T) {
	hs := newHarness(t, bodyUpstream, nil)
	addr := strings.TrimPrefix(hs.filter.URL, "http://")
	big := fmt.Sprint(spliceSize)
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"two Content-Lengths", []string{"Content-Length: " + big, "Content-Length: 5"}},
		{"Content-Length and chunked", []string{"Content-Length: " + big, "Transfer-Encoding: chunked"}},
		{"chunked", []string{"Transfer-Encoding: chunked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := fmt.Sprintf("PUT /v1/AUTH_demo/c/o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n\r\n5\r\nhello\r\n0\r\n\r\n", strings.Join(tc.lines, "\r\n"))
			status, body := rawFilter(t, addr, []byte(raw))
			if status != 400 && status != 201 {
				t.Errorf("status %d %q", status, body)
			}
			if puts, _ := spliced(hs); puts != 0 {
				t.Errorf("spliced an ambiguous body")
			}
		})
	}
}

func TestSpliceConfig(t *testing.T) {
	deps := Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}}
	for _, tc := range []struct {
		cfg  Config
		deps Deps
		want int64 // 0: no splice path
	}{
		{Config{Upstream: "http://127.0.0.1:8081"}, deps, DefaultSpliceMinSize},
		{Config{Upstream: "http://127.0.0.1:8081", SpliceMinSize: 8 << 20}, deps, 8 << 20},
		{Config{Upstream: "http://127.0.0.1:8081", SpliceMinSize: -1}, deps, 0},
		{Config{Upstream: "https://127.0.0.1:8081"}, deps, 0},
		{Config{Upstream: "http://127.0.0.1:8081"}, Deps{Tokens: deps.Tokens, Keys: deps.Keys, Transport: http.DefaultTransport}, 0},
	} {
		f, err := New(tc.cfg, tc.deps)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == 0 && f.splice != nil:
			t.Errorf("%+v: splice path on", tc.cfg)
		case tc.want != 0 && (f.splice == nil || f.splice.min != tc.want):
			t.Errorf("%+v: splice path %+v, want min %d", tc.cfg, f.splice, tc.want)
		}
	}
	if got := upstreamAddr("::1", ""); got != "[::1]:80" {
		t.Errorf("upstreamAddr: %q", got)
	}
	if _, err := New(Config{Upstream: "http://x"}, deps); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(fmt.Errorf("x: %w", errServed), errServed) {
		t.Fatal("errServed does not unwrap")
	}
}
