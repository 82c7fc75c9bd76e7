package swiftfilter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/testkeystone"
)

// Benchmarks compare client → filter → upstream with client → upstream in
// one run, with warm caches. Reported per request: p50 latency (p50-µs),
// process CPU (cpu-µs/op: client, filter and, for the Go upstream, the
// upstream too; the filter's own CPU is the difference between the two
// sub-benchmarks), and MB/s for the large bodies. tools/bench-filter.sh
// runs them and prints the comparison.

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// benchFilter puts a filter (fake token and key caches: always warm) in
// front of upstream.
func benchFilter(b *testing.B, upstream string, tokens TokenValidator) *httptest.Server {
	b.Helper()
	if tokens == nil {
		tokens = &fakeTokens{}
	}
	f, err := New(Config{Upstream: upstream}, Deps{Tokens: tokens, Keys: &fakeKeys{}, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(f)
	b.Cleanup(srv.Close)
	return srv
}

func runLatency(b *testing.B, c *http.Client, method, url, token string, body []byte) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	do := func() {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
		}
	}
	for range min(50, max(b.N/10, 2)) {
		do() // warm connections and caches
	}
	cpu0 := cpuNow()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		do()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64((cpuNow()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkFilterSmall: 1 KiB GET and PUT with a token against a Go upstream.
func BenchmarkFilterSmall(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Length", "1024")
		_, _ = w.Write(payload)
	}))
	b.Cleanup(up.Close)
	via := benchFilter(b, up.URL, nil)
	for _, m := range []struct {
		method string
		body   []byte
	}{{"GET", nil}, {"PUT", payload}} {
		for _, path := range []struct{ name, base string }{{"direct", up.URL}, {"filter", via.URL}} {
			b.Run(m.method+"/"+path.name, func(b *testing.B) {
				runLatency(b, benchClient(), m.method, path.base+"/v1/AUTH_demo/c/o", "tok-demo", m.body)
			})
		}
	}
}

// BenchmarkFilterLarge: 64 MiB PUT and GET throughput against a Go upstream
// (discarding, serving from memory).
func BenchmarkFilterLarge(b *testing.B) {
	const size = 64 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = w.Write(payload)
	}))
	b.Cleanup(up.Close)
	via := benchFilter(b, up.URL, nil)
	for _, method := range []string{"PUT", "GET"} {
		for _, path := range []struct{ name, base string }{{"direct", up.URL}, {"filter", via.URL}} {
			b.Run(method+"/"+path.name, func(b *testing.B) {
				b.SetBytes(size)
				var body []byte
				if method == "PUT" {
					body = payload
				}
				runLatency(b, benchClient(), method, path.base+"/v1/AUTH_demo/c/big", "tok-demo", body)
			})
		}
	}
}

// BenchmarkFilterSwift: small object GET/PUT against the stack's real Swift
// proxy, with a real Keystone token (the filter's keystone cache warm).
func BenchmarkFilterSwift(b *testing.B) {
	swiftURL := os.Getenv("ARCA_TEST_SWIFT_URL")
	if swiftURL == "" || os.Getenv("ARCA_TEST_KEYSTONE_URL") == "" {
		b.Skip("no stack: eval \"$(tools/stack.sh env)\"")
	}
	ks := testkeystone.Load(b)
	v, err := keystone.NewValidator(context.Background(), ks.ServiceConfig())
	if err != nil {
		b.Fatal(err)
	}
	tok := ks.Token(b, testkeystone.Demo)
	kt, err := v.Validate(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	via := benchFilter(b, swiftURL, v)
	path := "/v1/AUTH_" + kt.ProjectID + "/sf-bench"
	c := benchClient()
	for _, req := range []struct {
		method, path string
		body         []byte
	}{{"PUT", path, nil}, {"PUT", path + "/o", bytes.Repeat([]byte("x"), 1024)}} {
		r, _ := http.NewRequest(req.method, swiftURL+req.path, bytes.NewReader(req.body))
		r.Header.Set("X-Auth-Token", tok)
		resp, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, base := range []struct{ name, url string }{{"direct", swiftURL}, {"filter", via.URL}} {
		b.Run("GET/"+base.name, func(b *testing.B) {
			runLatency(b, c, "GET", base.url+path+"/o", tok, nil)
		})
	}
	// Large objects: 16 MiB PUT then GET, MB/s.
	const size = 16 << 20
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, method := range []string{"PUT", "GET"} {
		for _, base := range []struct{ name, url string }{{"direct", swiftURL}, {"filter", via.URL}} {
			b.Run("Large"+method+"/"+base.name, func(b *testing.B) {
				b.SetBytes(size)
				var body []byte
				if method == "PUT" {
					body = big
				}
				runLatency(b, c, method, base.url+path+"/big", tok, body)
			})
		}
	}
}
