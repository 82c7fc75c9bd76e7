package metrics_test

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/metrics/metricstest"
)

type fakeCache struct{ hits, misses uint64 }

func (f *fakeCache) CacheHits() uint64   { return f.hits }
func (f *fakeCache) CacheMisses() uint64 { return f.misses }

type fakeKeys struct{ s keyclient.Stats }

func (f *fakeKeys) Stats() keyclient.Stats { return f.s }

func scrape(t *testing.T, r *metrics.Registry) metricstest.Families {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	return metricstest.Scrape(t, srv.URL+metrics.Path)
}

func TestRegistry(t *testing.T) {
	r := metrics.New("arca-test", "1.2.3", metrics.Config{Enabled: true})
	r.ObserveHTTP("/v1/secrets/:id", http.MethodGet, 200, 3*time.Millisecond)
	r.ObserveHTTP("/v1/secrets/:id", http.MethodGet, 200, time.Millisecond)
	r.ObserveHTTP("/v1/secrets/:id", "BREW", 404, time.Millisecond)
	r.ObserveHTTP("", http.MethodGet, 404, time.Millisecond)
	r.TokenValidated(metrics.TokenValid)
	r.TokenValidated(metrics.TokenInvalid)
	r.ObserveKeyService("active", 200, 2*time.Millisecond)
	r.ObserveKeyService("payload", 0, time.Second)
	r.AddEncrypted("p1", 100)
	r.AddDecrypted("p1", 40)
	r.AddDecrypted("p1", 0)
	r.RefusedNoKey("p1", metrics.ReasonDestroyed)
	r.IntegrityFailure("p1", metrics.IntegrityTampered)
	cache := &fakeCache{hits: 7, misses: 2}
	r.WatchValidator(cache)
	r.WatchKeyClient(&fakeKeys{keyclient.Stats{Hits: 5, Misses: 3, Requests: 2, Failures: 1}})
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r.WatchDB(db, "arca")

	f := scrape(t, r)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"arca_http_requests_total", []string{"route=/v1/secrets/:id", "method=GET", "code=200"}, 2},
		{"arca_http_requests_total", []string{"method=OTHER", "code=404"}, 1},
		{"arca_http_requests_total", []string{"route=unmatched"}, 1},
		{"arca_http_request_duration_seconds", []string{"route=/v1/secrets/:id", "status_class=2xx"}, 2},
		{"arca_token_validations_total", []string{"result=valid"}, 1},
		{"arca_token_validations_total", []string{"result=invalid"}, 1},
		{"arca_token_cache_hits_total", nil, 7},
		{"arca_token_cache_misses_total", nil, 2},
		{"arca_key_service_request_duration_seconds", []string{"operation=active", "outcome=ok"}, 1},
		{"arca_key_service_request_duration_seconds", []string{"operation=payload", "outcome=error"}, 1},
		{"arca_keyclient_cache_hits_total", nil, 5},
		{"arca_keyclient_cache_misses_total", nil, 3},
		{"arca_keyclient_requests_total", nil, 2},
		{"arca_keyclient_errors_total", nil, 1},
		{"arca_bytes_encrypted_total", nil, 100},
		{"arca_bytes_decrypted_total", nil, 40},
		{"arca_objects_refused_no_key_total", []string{"reason=destroyed"}, 1},
		{"arca_integrity_failures_total", []string{"kind=tampered"}, 1},
		{"arca_build_info", []string{"service=arca-test", "version=1.2.3"}, 1},
		{"go_sql_max_open_connections", []string{"db_name=arca"}, 0},
	}
	for _, c := range checks {
		if _, ok := f[c.name]; !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		if got := f.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if slices.Contains(f.LabelNames(), "project_id") {
		t.Error("project_id label present although project_labels is off")
	}
	cache.hits = 9 // collectors read at scrape time
	if got := scrape(t, r).Value("arca_token_cache_hits_total"); got != 9 {
		t.Errorf("cache hits after change = %v", got)
	}
}

func TestProjectLabels(t *testing.T) {
	r := metrics.New("arca-test", "dev", metrics.Config{Enabled: true, ProjectLabels: true})
	r.AddEncrypted("p1", 10)
	r.AddEncrypted("p2", 5)
	r.RefusedNoKey("bad/project\"", metrics.ReasonNotFound)
	f := scrape(t, r)
	if got := f.Value("arca_bytes_encrypted_total", "project_id=p1"); got != 10 {
		t.Errorf("p1 = %v", got)
	}
	if got := f.Value("arca_bytes_encrypted_total", "project_id=p2"); got != 5 {
		t.Errorf("p2 = %v", got)
	}
	if got := f.Value("arca_objects_refused_no_key_total", "project_id=unknown", "reason=not_found"); got != 1 {
		t.Errorf("a project id that is no id must read as unknown: %v", got)
	}
}

func TestConfig(t *testing.T) {
	f, err := config.Parse([]byte("[metrics]\nbind = 127.0.0.1:9320\nproject_labels = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.LoadConfig(f, 9311)
	if !c.Enabled || c.Bind != "127.0.0.1:9320" || !c.ProjectLabels || c.Check() != nil || f.Err() != nil {
		t.Fatalf("config %+v %v", c, f.Err())
	}
	// By default /metrics has a loopback listener of its own, never the
	// service's (public) port.
	empty, _ := config.Parse(nil)
	for port, want := range map[int]string{9311: "127.0.0.1:19311", 8080: "127.0.0.1:18080", 6200: "127.0.0.1:16200", 60000: "127.0.0.1:50000", 0: "127.0.0.1:0"} {
		if c := metrics.LoadConfig(empty, port); !c.Enabled || c.Bind != want || c.ProjectLabels {
			t.Fatalf("defaults for port %d: %+v, want bind %s", port, c, want)
		}
	}
	// An explicitly empty bind is the operator's choice of the service's listener.
	onService, _ := config.Parse([]byte("[metrics]\nbind =\n"))
	if c := metrics.LoadConfig(onService, 9311); c.Bind != "" {
		t.Fatalf("explicit empty bind: %+v", c)
	}
	if err := (metrics.Config{Bind: "9320"}).Check(); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("bad bind accepted: %v", err)
	}
}

func TestServeSeparateBind(t *testing.T) {
	r := metrics.New("arca-test", "dev", metrics.Config{})
	ctx, cancel := t.Context(), func() {}
	defer cancel()
	ln := httptest.NewUnstartedServer(nil).Listener
	done := make(chan error, 1)
	go func() { done <- metrics.ServeListener(ctx, ln, r.Handler(), testLogger()) }()
	f := metricstest.Scrape(t, "http://"+ln.Addr().String()+metrics.Path)
	if f.Value("arca_build_info") != 1 {
		t.Fatal("build info missing on the separate listener")
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/other on the metrics listener: %d", resp.StatusCode)
	}
}
