package objectserver

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/metrics/metricstest"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// TestMetrics drives PUT/GET, a destroyed key and tampered data through the
// object server and scrapes its /metrics with expfmt: each counter moved
// by exactly what was done.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reg := metrics.New("arca-object-server", Version, metrics.Config{Enabled: true})
	hh, err := health.New(health.Config{}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// the constructor's option, applied to the server newEnv built
	WithObservability(Observability{Metrics: reg, MetricsHandler: reg.Handler(), Health: hh})(e.srv)
	e.ts.Close()
	e.ts = httptest.NewServer(e.srv) // serves with the hook installed
	before := metricstest.Scrape(t, e.ts.URL+"/metrics")

	body := strings.Repeat("0123456789", 1000) // 10000 bytes, several segments
	for _, p := range []string{objPath + "3", objPath, objPath + "2"} {
		resp := e.put(p, body, nil)
		if readBody(t, resp); resp.StatusCode != 201 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	}
	// objPath+"3" loses its Arca metadata: refused, quarantined, counted
	// as an invalid encrypted object
	df, err := e.srv.disk.Object("sda", "1", 0, "AUTH_p1", "c", "o/bj3")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := filepath.Glob(filepath.Join(df.Dir(), "*.data"))
	if len(data) != 1 {
		t.Fatalf("data files %v", data)
	}
	stripArcaMetadata(t, data[0])
	if resp := e.do("GET", objPath+"3", nil, nil); readBody(t, resp) == body || resp.StatusCode != 404 {
		t.Fatalf("GET of an object without its Arca metadata: %d", resp.StatusCode)
	}
	resp := e.do("GET", objPath, nil, nil)
	if got := readBody(t, resp); got != body {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp = e.do("GET", objPath, nil, map[string]string{"Range": "bytes=10-19"})
	if got := readBody(t, resp); got != "0123456789" {
		t.Fatalf("range GET: %d %q", resp.StatusCode, got)
	}
	resp = e.do("HEAD", objPath, nil, nil)
	readBody(t, resp)
	id := e.keys.active["p1"]
	e.keys.destroy[id] = true
	resp = e.do("GET", objPath, nil, nil)
	if readBody(t, resp); resp.StatusCode != 410 {
		t.Fatalf("GET with a destroyed key: %d", resp.StatusCode)
	}
	delete(e.keys.destroy, id)
	for _, f := range e.files() {
		if strings.HasSuffix(f, ".data") {
			b, _ := os.ReadFile(f)
			b[len(b)/2] ^= 1
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp = e.do("GET", objPath+"2", nil, nil)
	if readBody(t, resp); resp.StatusCode != 500 {
		t.Fatalf("GET of tampered data: %d", resp.StatusCode)
	}
	if code := e.do("GET", "/healthcheck", nil, nil); readBody(t, code) != "OK" {
		t.Fatal("healthcheck")
	}
	after := metricstest.Scrape(t, e.ts.URL+"/metrics")
	delta := func(name string, labels ...string) float64 {
		return after.Value(name, labels...) - before.Value(name, labels...)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"arca_http_requests_total", []string{"route=object", "method=PUT", "code=201"}, 3},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=404"}, 1},
		{"arca_integrity_failures_total", []string{"kind=invalid"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=200"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=206"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=410"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=500"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=HEAD"}, 1},
		{"arca_http_requests_total", []string{"route=healthcheck"}, 1},
		{"arca_http_requests_total", []string{"route=metrics"}, 1},
		{"arca_bytes_encrypted_total", nil, 30000},
		{"arca_bytes_decrypted_total", nil, 10010},
		{"arca_objects_refused_no_key_total", []string{"reason=destroyed"}, 1},
		{"arca_integrity_failures_total", []string{"kind=tampered"}, 1},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, v := range after.LabelValues() {
		if strings.Contains(v, "key-") || strings.Contains(v, "p1") || strings.Contains(v, "/sda") {
			t.Errorf("a label carries a key id, project or path: %q", v)
		}
	}
}

// stripArcaMetadata rewrites the .data file's Swift metadata without its
// X-Object-Sysmeta-Arca-* keys, as a tool that drops them would.
func stripArcaMetadata(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := diskfile.ReadRawMetadata(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{}
	for k, v := range raw.Values {
		if !sysmeta.IsArca(k) {
			kept[k] = v
		}
	}
	p, err := pickle.Encode(kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(path, "user.swift.metadata", p, 0); err != nil {
		t.Fatal(err)
	}
	_ = unix.Removexattr(path, "user.swift.metadata_checksum")
}
