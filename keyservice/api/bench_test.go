package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// BenchmarkSecretRequests drives the real HTTP handler (the middleware,
// policy, metrics, the text access and audit logs, to io.Discard) over a
// real MariaDB database, without the network: the per-request cost of
// arca-api's own code and its SQL round trips (issue 21). Profile with
// -cpuprofile; allocs/op and gc/1000op (garbage collections per thousand
// requests: run it with GOGC=400, arca-api's default) are the figures that
// do not move with the load.
func BenchmarkSecretRequests(b *testing.B) {
	_, store := openStore(b, dbconn.MySQL)
	log := logging.New(logging.Options{Format: "text", Service: "arca-api", Output: io.Discard})
	svc, err := keyservice.New(store, testKeyring(b), keyservice.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	reg := metrics.New("arca-api", "bench", metrics.Config{Enabled: true})
	h, err := api.New(svc, api.Options{Logger: log, Build: "bench", Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	do := func(method, path, body, accept string) *httptest.ResponseRecorder {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, path, r)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("X-Project-Id", "benchproj")
		req.Header.Set("Accept", accept)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	store1 := func(i int) string {
		return fmt.Sprintf(`{"name":"loadgen","payload":"w0-%d-xxxxxxxxxxxxxxxxxxxxxxxx","payload_content_type":"text/plain"}`, i)
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for i := 0; b.Loop(); i++ {
			if w := do(http.MethodPost, "/v1/secrets", store1(i), "application/json"); w.Code != http.StatusCreated {
				b.Fatalf("store: %d %s", w.Code, w.Body)
			}
		}
	})
	w := do(http.MethodPost, "/v1/secrets", store1(-1), "application/json")
	var created struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || w.Code != http.StatusCreated {
		b.Fatalf("store: %d %s", w.Code, w.Body)
	}
	path := created.Ref[strings.Index(created.Ref, "/v1/"):] + "/payload"
	b.Run("get-payload", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if w := do(http.MethodGet, path, "", "text/plain"); w.Code != http.StatusOK {
				b.Fatalf("get: %d %s", w.Code, w.Body)
			}
		}
	})
}

// reportCPU reports the process's CPU time (user and system, from
// getrusage) per operation from now until the returned function runs:
// the handler's own work and its syscalls, not the wall time spent waiting
// for MariaDB (which runs in a process of its own).
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcs := ms.NumGC
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.NumGC-gcs)*1000/float64(b.N), "gc/1000op")
		}
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
