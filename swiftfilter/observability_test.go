package swiftfilter

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/metrics/metricstest"
)

// TestMetricsAndHealth drives requests through the filter and scrapes its
// /metrics with expfmt: every counter moved by exactly what was sent. The
// filter serves /metrics itself here as with [metrics] bind set empty
// (Deps.MetricsHandler); by default it is not on the service port at all
// (TestMetricsForwardedByDefault).
func TestMetricsAndHealth(t *testing.T) {
	up := newUpstream(t, nil)
	reg := metrics.New("arca-swift-filter", "test", metrics.Config{Enabled: true})
	disable := filepath.Join(t.TempDir(), "disabled")
	hh, err := health.New(health.Config{DisableByFilePath: disable}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tokens := &fakeTokens{}
	f, err := New(Config{Upstream: up.URL}, Deps{Tokens: tokens, Keys: &fakeKeys{}, Log: zerolog.Nop(),
		Metrics: reg, MetricsHandler: reg.Handler(), Health: hh})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	send := func(method, path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("data"))
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := metricstest.Scrape(t, srv.URL+"/metrics")
	for range 3 {
		send("PUT", "/v1/AUTH_demo/c/secret-object-name", "tok-demo")
	}
	send("GET", "/v1/AUTH_demo/c/secret-object-name", "tok-demo")
	send("GET", "/v1/AUTH_demo/c", "tok-demo")
	send("HEAD", "/v1/AUTH_demo", "tok-demo")
	send("GET", "/v1/AUTH_demo/c/o", "tok-forged")                         // 401
	if code := send("PUT", "/v1/AUTH_gone/c/o", "tok-gone"); code != 403 { // key destroyed
		t.Fatalf("PUT under a destroyed key: %d", code)
	}
	if code := send("PUT", "/v1/AUTH_new/c/o", "tok-new"); code != 201 { // no key yet: forwarded, not refused
		t.Fatalf("PUT for a project without a key yet: %d", code)
	}
	send("GET", "/info", "")
	after := metricstest.Scrape(t, srv.URL+"/metrics")
	delta := func(name string, labels ...string) float64 {
		return after.Value(name, labels...) - before.Value(name, labels...)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"arca_http_requests_total", []string{"route=object", "method=PUT"}, 5},
		{"arca_http_requests_total", []string{"route=object", "method=PUT", "code=403"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET", "code=401"}, 1},
		{"arca_http_requests_total", []string{"route=object", "method=GET"}, 2},
		{"arca_http_requests_total", []string{"route=container", "method=GET"}, 1},
		{"arca_http_requests_total", []string{"route=account", "method=HEAD"}, 1},
		{"arca_http_requests_total", []string{"route=info"}, 1},
		{"arca_token_validations_total", []string{"result=valid"}, 8},
		{"arca_token_validations_total", []string{"result=invalid"}, 1},
		{"arca_objects_refused_no_key_total", []string{"reason=destroyed"}, 1},
		{"arca_objects_refused_no_key_total", []string{"reason=not_found"}, 0},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, v := range after.LabelValues() {
		if strings.Contains(v, "tok-") || strings.Contains(v, "key-") || strings.Contains(v, "AUTH_") || strings.Contains(v, "secret-object") {
			t.Errorf("a label carries a token, key id, account or object name: %q", v)
		}
	}
	if slices.Contains(after.LabelNames(), "project_id") {
		t.Error("project_id label although project_labels is off")
	}
	// /metrics and /healthcheck never reach Swift.
	for _, r := range up.requests() {
		if r.RequestURI == "/metrics" || strings.HasPrefix(r.RequestURI, "/healthcheck") {
			t.Errorf("%s reached the upstream", r.RequestURI)
		}
	}
	if code := send("GET", "/healthcheck", ""); code != 200 {
		t.Fatalf("healthcheck: %d", code)
	}
	if err := os.WriteFile(disable, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := send("GET", "/healthcheck", ""); code != 503 {
		t.Fatalf("healthcheck with the disable file: %d", code)
	}
}

// TestMetricsForwardedByDefault: without Deps.MetricsHandler (the default:
// /metrics on a loopback listener of its own), GET /metrics on the service
// port is an ordinary Swift path, forwarded to the upstream, and never
// answers with the filter's counters.
func TestMetricsForwardedByDefault(t *testing.T) {
	up := newUpstream(t, nil)
	reg := metrics.New("arca-swift-filter", "test", metrics.Config{Enabled: true})
	f, err := New(Config{Upstream: up.URL}, Deps{Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Log: zerolog.Nop(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	reqs := up.requests()
	if resp.StatusCode != http.StatusCreated || strings.Contains(string(body), "arca_") ||
		len(reqs) != 1 || reqs[0].RequestURI != "/metrics" {
		t.Errorf("GET /metrics: %d %.100q, upstream saw %+v; want it forwarded", resp.StatusCode, body, reqs)
	}
}
