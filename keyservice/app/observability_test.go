package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/metrics/metricstest"
	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/internal/testdb"
)

// TestObservabilityRealServer drives a real arca-api on MariaDB and checks
// /metrics (parsed with expfmt) moved by exactly the requests made, the
// disable file, and that dropping the database fails the detailed health
// check while the plain one keeps answering.
func TestObservabilityRealServer(t *testing.T) {
	db, dsn := testdb.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("the test server is reached over %s", cfg.Net)
	}
	dbURL := url.URL{Scheme: "mysql+pymysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr,
		Path: "/" + cfg.DBName, RawQuery: "connect_timeout=2&read_timeout=5&write_timeout=5"}
	if cfg.Passwd == "" {
		dbURL.User = url.User(cfg.User)
	}
	disable := filepath.Join(t.TempDir(), "arca-api.disabled")
	srv := testapi.Start(t, testapi.Options{DatabaseURL: dbURL.String(),
		Extra: "\n[healthcheck]\ndisable_by_file_path = " + disable + "\n"})

	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Project-Id", "obsproject")
		req.Header.Set("X-User-Id", "obsuser")
		req.Header.Set("X-Roles", "admin")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	before := metricstest.Scrape(t, srv.URL+"/metrics")
	var ids []string
	for range 3 {
		code, body := call("POST", "/v1/secrets", `{"name":"m","payload":"metrics-payload","payload_content_type":"text/plain"}`)
		if code != 201 {
			t.Fatalf("POST: %d %s", code, body)
		}
		var c struct {
			SecretRef string `json:"secret_ref"`
		}
		_ = json.Unmarshal(body, &c)
		ids = append(ids, c.SecretRef[strings.LastIndex(c.SecretRef, "/")+1:])
	}
	for _, id := range ids[:2] {
		if code, _ := call("GET", "/v1/secrets/"+id, ""); code != 200 {
			t.Fatalf("GET secret: %d", code)
		}
	}
	if code, _ := call("GET", "/v1/secrets/"+ids[0]+"/payload", ""); code != 200 {
		t.Fatal("payload")
	}
	if code, _ := call("GET", "/v1/secrets/00000000-0000-4000-8000-000000000000", ""); code != 404 {
		t.Fatal("unknown secret")
	}
	if code, _ := call("GET", "/v1/project-keys/active", ""); code != 200 {
		t.Fatal("active key")
	}
	if code, _ := call("GET", "/no/such/route/"+ids[0], ""); code != 404 {
		t.Fatal("unknown route")
	}
	after := metricstest.Scrape(t, srv.URL+"/metrics")

	delta := func(name string, labels ...string) float64 {
		return after.Value(name, labels...) - before.Value(name, labels...)
	}
	want := []struct {
		labels []string
		n      float64
	}{
		{[]string{"route=/v1/secrets", "method=POST", "code=201"}, 3},
		{[]string{"route=/v1/secrets/:id", "method=GET", "code=200"}, 2},
		{[]string{"route=/v1/secrets/:id", "method=GET", "code=404"}, 1},
		{[]string{"route=/v1/secrets/:id/payload", "method=GET", "code=200"}, 1},
		{[]string{"route=/v1/project-keys/active", "method=GET", "code=200"}, 1},
		{[]string{"route=unmatched", "code=404"}, 1},
		// the first scrape itself is the only /metrics request in between
		{[]string{"route=/metrics"}, 1},
	}
	for _, w := range want {
		if got := delta("arca_http_requests_total", w.labels...); got != w.n {
			t.Errorf("arca_http_requests_total%v moved by %v, want %v", w.labels, got, w.n)
		}
	}
	if got := delta("arca_http_request_duration_seconds", "route=/v1/secrets", "method=POST", "status_class=2xx"); got != 3 {
		t.Errorf("latency histogram count moved by %v, want 3", got)
	}
	if after.Value("go_sql_max_open_connections", "db_name=arca") <= 0 {
		t.Error("DB pool stats missing")
	}
	if after.Value("arca_build_info", "service=arca-api") != 1 {
		t.Error("build info missing")
	}
	for _, v := range after.LabelValues() {
		for _, id := range ids {
			if strings.Contains(v, id) {
				t.Errorf("a label carries a secret id: %q", v)
			}
		}
		if strings.Contains(v, "obsproject") {
			t.Errorf("a label carries the project id although project_labels is off: %q", v)
		}
	}
	if slices.Contains(after.LabelNames(), "project_id") {
		t.Error("project_id label present")
	}

	// The disable file drains the node.
	if code, body := call("GET", "/healthcheck", ""); code != 200 || string(body) != "OK" {
		t.Fatalf("healthcheck: %d %q", code, body)
	}
	if code, body := call("HEAD", "/healthcheck", ""); code != 204 || len(body) != 0 {
		t.Fatalf("HEAD healthcheck: %d", code)
	}
	if err := os.WriteFile(disable, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := call("GET", "/healthcheck", ""); code != 503 || !strings.Contains(string(body), "DISABLED") {
		t.Fatalf("healthcheck with the disable file: %d %q", code, body)
	}
	if code, _ := call("HEAD", "/healthcheck", ""); code != 503 {
		t.Fatalf("HEAD healthcheck with the disable file: %d", code)
	}
	_ = os.Remove(disable)
	code, body := call("GET", "/healthcheck/detailed", "")
	if code != 200 || !strings.Contains(string(body), `"database":{"ok":true`) {
		t.Fatalf("detailed healthcheck: %d %s", code, body)
	}

	// The database goes away: the detailed check fails, naming the
	// database and nothing of its URL; the plain check keeps answering.
	if _, err := db.Exec("DROP DATABASE " + cfg.DBName); err != nil {
		t.Fatal(err)
	}
	code, body = call("GET", "/healthcheck/detailed", "")
	if code != 503 || !strings.Contains(string(body), `"database":{"ok":false`) {
		t.Fatalf("detailed healthcheck without the database: %d %s", code, body)
	}
	for _, leak := range []string{cfg.DBName, cfg.Addr, "mysql", cfg.User + "@"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("detailed healthcheck leaks %q: %s", leak, body)
		}
	}
	if code, body := call("GET", "/healthcheck", ""); code != 200 {
		t.Fatalf("plain healthcheck without the database: %d %s", code, body)
	}
}
