package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/metrics/metricstest"
	"opendev.org/x/arca/internal/testenv"
)

// TestObservabilityRealServer drives a real arca-api on MariaDB and checks
// /metrics (parsed with expfmt) moved by exactly the requests made, the
// disable file, and that dropping the database fails the detailed health
// check while the plain one keeps answering.
func TestObservabilityRealServer(t *testing.T) {
	db, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		testenv.StackMissing(t, "the test server is reached over "+cfg.Net+", not TCP")
	}
	dbURL := url.URL{Scheme: "mysql+pymysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr,
		Path: "/" + cfg.DBName, RawQuery: "connect_timeout=2&read_timeout=5&write_timeout=5"}
	if cfg.Passwd == "" {
		dbURL.User = url.User(cfg.User)
	}
	disable := filepath.Join(t.TempDir(), "arca-api.disabled")
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL.String(),
		// /metrics on the service port, which the test scrapes.
		Extra: "\n[healthcheck]\ndisable_by_file_path = " + disable + "\n\n[metrics]\nbind =\n"})

	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		return testenv.Do(t, method, srv.URL+path, body,
			map[string]string{"X-Project-Id": "obsproject", "X-User-Id": "obsuser", "X-Roles": "admin,member,reader"})
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

// TestObservabilityKeystoneRealStack drives arca-api in keystone mode with
// the real Keystone: the token validation and token cache counters move by
// exactly the validations made (a new token, the same again from the
// cache, an invalid token twice, the second time from the negative cache,
// no token at all), and the detailed health check reports Keystone
// reachable, or unreachable when auth_url points nowhere, without leaking
// an address, a credential or a token.
func TestObservabilityKeystoneRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "\n[metrics]\nbind =\n") // /metrics on the service port
	get := func(base, path, token string) (int, []byte) {
		t.Helper()
		return testenv.Do(t, http.MethodGet, base+path, "", map[string]string{"X-Auth-Token": token})
	}
	token := env.Token(t, testenv.UserDemo)
	invalid := "gAAAAABnot-a-real-token-" + testenv.RandomHex(t, 16)

	before := metricstest.Scrape(t, srv.URL+"/metrics")
	for _, r := range []struct {
		token string
		want  int
	}{{token, 200}, {token, 200}, {invalid, 401}, {invalid, 401}, {"", 401}} {
		if code, body := get(srv.URL, "/v1/secrets", r.token); code != r.want {
			t.Fatalf("GET /v1/secrets: %d %s, want %d", code, body, r.want)
		}
	}
	after := metricstest.Scrape(t, srv.URL+"/metrics")
	for _, w := range []struct {
		name   string
		labels []string
		n      float64
	}{
		{"arca_token_validations_total", []string{"result=valid"}, 2},
		{"arca_token_validations_total", []string{"result=invalid"}, 2},
		{"arca_token_validations_total", []string{"result=unavailable"}, 0},
		{"arca_token_cache_hits_total", nil, 2},
		{"arca_token_cache_misses_total", nil, 2},
		{"arca_http_requests_total", []string{"route=/v1/secrets", "method=GET", "code=200"}, 2},
		{"arca_http_requests_total", []string{"route=/v1/secrets", "method=GET", "code=401"}, 3},
	} {
		if got := after.Value(w.name, w.labels...) - before.Value(w.name, w.labels...); got != w.n {
			t.Errorf("%s%v moved by %v, want %v", w.name, w.labels, got, w.n)
		}
	}
	if _, ok := after["arca_token_validations_total"]; !ok {
		t.Error("arca_token_validations_total is not exported")
	}
	for _, v := range after.LabelValues() {
		if strings.Contains(v, token) || strings.Contains(v, invalid) {
			t.Errorf("a label carries a token: %q", v)
		}
	}

	svc := env.ServiceConfig()
	keystoneURL, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	leaks := []string{keystoneURL.Host, keystoneURL.Port(), "127.0.0.1", "http", svc.Password, svc.Username, token, "mysql"}
	detailed := func(srv *testenv.API, wantCode int, wantKeystone bool) {
		t.Helper()
		code, body := get(srv.URL, "/healthcheck/detailed", "")
		var rep health.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatalf("detailed health: %d %s: %v", code, body, err)
		}
		if code != wantCode || rep.Checks["keystone"].OK != wantKeystone || !rep.Checks["database"].OK || len(rep.Checks) != 2 {
			t.Errorf("detailed health: %d %s, want %d with keystone ok=%v and the database ok", code, body, wantCode, wantKeystone)
		}
		for _, leak := range leaks {
			if strings.Contains(string(body), leak) {
				t.Errorf("detailed health leaks %q: %s", leak, body)
			}
		}
	}
	detailed(srv, http.StatusOK, true)

	// A service whose Keystone is out of reach (on SQLite, quicker to set
	// up): auth_url given again, later in the file, wins (as with
	// oslo.config).
	down := testenv.StartAPI(t, testenv.APIOptions{AuthStrategy: "keystone", Extra: "\n" + env.AuthtokenSection() +
		fmt.Sprintf("auth_url = http://127.0.0.1:%d/v3\n", testenv.FreePort(t))})
	detailed(down, http.StatusServiceUnavailable, false)
	if code, body := get(down.URL, "/healthcheck/detailed", ""); !strings.Contains(string(body), `"keystone":{"ok":false,"reason":"unreachable"`) {
		t.Errorf("detailed health without Keystone: %d %s", code, body)
	}
}

// TestMetricsSeparateBind puts /metrics on a listener of its own with
// [metrics] bind: it is served there, counting the main listener's
// requests, and no longer on the main listener.
func TestMetricsSeparateBind(t *testing.T) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	srv := testenv.StartAPI(t, testenv.APIOptions{Extra: "\n[metrics]\nbind = " + metricsAddr + "\n"})
	get := func(u string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("X-Project-Id", "bindproject")
		req.Header.Set("X-Roles", "admin,member,reader")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	metricsURL := "http://" + metricsAddr + "/metrics"
	before := metricstest.Scrape(t, metricsURL)
	if code := get(srv.URL + "/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener: %d, want 404", code)
	}
	if code := get(srv.URL + "/v1/secrets"); code != http.StatusOK {
		t.Fatalf("GET /v1/secrets: %d", code)
	}
	if code := get("http://" + metricsAddr + "/healthcheck"); code != http.StatusNotFound {
		t.Errorf("GET /healthcheck on the metrics listener: %d, want 404 (it serves /metrics only)", code)
	}
	after := metricstest.Scrape(t, metricsURL)
	if after.Value("arca_build_info", "service=arca-api") != 1 {
		t.Error("the metrics listener does not serve arca-api's metrics")
	}
	delta := func(labels ...string) float64 {
		return after.Value("arca_http_requests_total", labels...) - before.Value("arca_http_requests_total", labels...)
	}
	if got := delta("route=/v1/secrets", "method=GET", "code=200"); got != 1 {
		t.Errorf("GET /v1/secrets counted %v times, want 1", got)
	}
	// The main listener's 404 for /metrics is an unmatched route; scrapes
	// of the metrics listener are not requests of the service.
	if got := delta("route=unmatched", "code=404"); got != 1 {
		t.Errorf("unmatched 404s moved by %v, want 1", got)
	}
	if got := delta("route=/metrics"); got != 0 {
		t.Errorf("/metrics counted %v times on the service, want 0", got)
	}
}
