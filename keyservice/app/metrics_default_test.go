package app_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
)

// TestMetricsNotOnServicePort: the real arca-api, with no [metrics]
// section, does not serve /metrics on its API port (anyone who reaches the
// Barbican API would read every route's traffic and the build), but on its
// own listener on loopback, at the port metrics.DefaultBind derives.
func TestMetricsNotOnServicePort(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) (int, string) {
		t.Helper()
		c := http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(srv.URL + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "arca_") {
		t.Errorf("GET /metrics on the API port: %d %.200q, want 404 and no metrics", code, body)
	}
	bind := metrics.DefaultBind(port)
	host, _, _ := net.SplitHostPort(bind)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("default metrics listener %s is not on loopback", bind)
	}
	code, body := get("http://" + bind + "/metrics")
	if code != http.StatusOK || !strings.Contains(body, `arca_build_info{`) || !strings.Contains(body, `service="arca-api"`) {
		t.Errorf("GET /metrics on %s: %d %.300q, want arca-api's metrics", bind, code, body)
	}
}
