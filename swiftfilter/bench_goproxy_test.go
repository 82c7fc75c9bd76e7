package swiftfilter

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBenchGoProxy: the filter benchmark's baseline (testdata/goproxy)
// builds, proxies GET and PUT to its upstream with their bodies and status,
// and answers its CPU time, as benchGoProxy starts it.
func TestBenchGoProxy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "goproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/goproxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut {
			w.Header().Set("X-Got", string(body))
			w.WriteHeader(http.StatusCreated)
			return
		}
		_, _ = io.WriteString(w, "object "+r.URL.Path)
	}))
	defer up.Close()
	t.Setenv("ARCA_BENCH_FILTER_BASELINE", bin)
	p, ok := benchGoProxy(t, up.URL)
	if !ok {
		t.Fatal("benchGoProxy did not start the baseline")
	}
	cpu0 := p.cpu()
	for _, tc := range []struct {
		method, body, wantHeader, wantBody string
		wantStatus                         int
	}{
		{"GET", "", "", "object /v1/AUTH_demo/c/o", http.StatusOK},
		{"PUT", "data", "data", "", http.StatusCreated},
	} {
		req, _ := http.NewRequest(tc.method, p.URL+"/v1/AUTH_demo/c/o", bytes.NewReader([]byte(tc.body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || string(got) != tc.wantBody || resp.Header.Get("X-Got") != tc.wantHeader {
			t.Errorf("%s: %d %q X-Got %q, want %d %q %q", tc.method, resp.StatusCode, got, resp.Header.Get("X-Got"), tc.wantStatus, tc.wantBody, tc.wantHeader)
		}
	}
	if cpu1 := p.cpu(); cpu0 <= 0 || cpu1 < cpu0 || p.pid == 0 {
		t.Errorf("cpu %v then %v, pid %d: want a positive, growing CPU time and the process's id", cpu0, cpu1, p.pid)
	}
}
