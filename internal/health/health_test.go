package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/health"
)

func do(t *testing.T, h http.Handler, method, target, remote string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestPlainAndDisableFile(t *testing.T) {
	disable := filepath.Join(t.TempDir(), "disabled")
	failing := health.Check{Name: "database", Run: func(context.Context) error { return errors.New("down") }}
	h, err := health.New(health.Config{DisableByFilePath: disable}, []health.Check{failing}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// A failing dependency does not fail the plain check.
	if code, body := do(t, h, http.MethodGet, "/healthcheck", ""); code != 200 || body != "OK" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, body := do(t, h, http.MethodHead, "/healthcheck", ""); code != 204 || body != "" {
		t.Fatalf("HEAD: %d %q", code, body)
	}
	if code, _ := do(t, h, http.MethodPost, "/healthcheck", ""); code != 405 {
		t.Fatalf("POST: %d", code)
	}
	if err := os.WriteFile(disable, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, h, http.MethodGet, "/healthcheck", ""); code != 503 || body != "DISABLED BY FILE" {
		t.Fatalf("GET disabled: %d %q", code, body)
	}
	if code, _ := do(t, h, http.MethodHead, "/healthcheck", ""); code != 503 {
		t.Fatalf("HEAD disabled: %d", code)
	}
	if err := os.Remove(disable); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, h, http.MethodGet, "/healthcheck", ""); code != 200 {
		t.Fatalf("GET after removing the file: %d", code)
	}
}

func TestDetailed(t *testing.T) {
	secret := "mysql://arca:s3cr3t@db/arca"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(300) }))
	defer up.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer broken.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	checks := []health.Check{
		{Name: "database", Run: func(context.Context) error { return errors.New("dial " + secret + ": refused") }},
		{Name: "slow", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		health.HTTPCheck("keystone", up.URL, nil),
		health.HTTPCheck("key_service", broken.URL, nil),
		health.HTTPCheck("closed", closed, nil),
	}
	h, err := health.New(health.Config{Timeout: 200 * time.Millisecond}, checks, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/healthcheck/detailed", "/healthcheck?detailed=1"} {
		code, body := do(t, h, http.MethodGet, target, "127.0.0.1:5555")
		if code != 503 {
			t.Fatalf("%s: %d %s", target, code, body)
		}
		if strings.Contains(body, "s3cr3t") || strings.Contains(body, "mysql") || strings.Contains(body, "127.0.0.1") {
			t.Fatalf("detailed answer leaks: %s", body)
		}
		var rep health.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatal(err)
		}
		want := map[string]health.Result{
			"database": {Reason: "failed"}, "slow": {Reason: "timeout"}, "keystone": {OK: true},
			"key_service": {Reason: "HTTP 503"}, "closed": {Reason: "unreachable"},
		}
		for name, w := range want {
			got := rep.Checks[name]
			if got.OK != w.OK || got.Reason != w.Reason {
				t.Errorf("%s: %+v, want %+v", name, got, w)
			}
		}
		if rep.Status != "FAIL" {
			t.Errorf("status %q", rep.Status)
		}
	}
	// Not from an allowed network.
	if code, body := do(t, h, http.MethodGet, "/healthcheck/detailed", "192.0.2.7:4000"); code != 403 || strings.Contains(body, "database") {
		t.Fatalf("from outside: %d %s", code, body)
	}
	ok, _ := health.New(health.Config{DetailedAllowed: []string{"192.0.2.0/24"}}, checks[2:3], zerolog.Nop())
	if code, body := do(t, ok, http.MethodGet, "/healthcheck/detailed", "192.0.2.7:4000"); code != 200 || !strings.Contains(body, `"status":"OK"`) {
		t.Fatalf("allowed network: %d %s", code, body)
	}
	if _, err := health.New(health.Config{DetailedAllowed: []string{"nonsense"}}, nil, zerolog.Nop()); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestConfig(t *testing.T) {
	f, _ := config.Parse([]byte("[healthcheck]\ndisable_by_file_path = /run/arca/disabled\ndetailed_allowed_networks = 10.0.0.0/8, ::1/128\n"))
	c := health.LoadConfig(f)
	if c.DisableByFilePath != "/run/arca/disabled" || len(c.DetailedAllowed) != 2 || c.DetailedAllowed[0] != "10.0.0.0/8" || f.Err() != nil {
		t.Fatalf("%+v %v", c, f.Err())
	}
}
