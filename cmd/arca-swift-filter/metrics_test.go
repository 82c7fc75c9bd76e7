package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestMetricsNotOnServicePort: by default the filter's /metrics is on its
// own loopback listener (the service port + 10000), and GET /metrics on the
// service port is an ordinary Swift path: forwarded to the Swift proxy like
// any other (Swift answers it, 412 for an invalid version), never the
// filter's counters. With [metrics] bind set empty, the service port serves
// them and Swift never sees the path.
func TestMetricsNotOnServicePort(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	get := func(t *testing.T, url string) (int, string, http.Header) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	t.Run("default: own loopback listener", func(t *testing.T) {
		up := newRecorder(t)
		port, metricsAddr := freePorts(t)
		main, secrets := filterConf(ks, port, up.URL)
		p := start(t, writeFile(t, filepath.Join(t.TempDir(), "f.conf"), main+secrets, 0o600))
		p.WaitHealthy(t, healthURL(port))
		status, body, h := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if status != http.StatusPreconditionFailed || h.Get("X-Upstream") != "swift" || strings.Contains(body, "arca_") {
			t.Errorf("service port /metrics: %d %q (X-Upstream %q), want Swift's answer", status, body, h.Get("X-Upstream"))
		}
		if !up.saw("/metrics") {
			t.Error("GET /metrics on the service port did not reach Swift")
		}
		status, body, _ = get(t, "http://"+metricsAddr+"/metrics")
		if status != http.StatusOK || !strings.Contains(body, "arca_build_info") {
			t.Errorf("metrics listener %s: %d %.200q", metricsAddr, status, body)
		}
	})
	t.Run("bind set empty: the service port", func(t *testing.T) {
		up := newRecorder(t)
		port, metricsAddr := freePorts(t)
		main, secrets := filterConf(ks, port, up.URL)
		p := start(t, writeFile(t, filepath.Join(t.TempDir(), "f.conf"), main+secrets+"\n[metrics]\nbind =\n", 0o600))
		p.WaitHealthy(t, healthURL(port))
		status, body, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if status != http.StatusOK || !strings.Contains(body, "arca_build_info") {
			t.Errorf("service port /metrics with bind empty: %d %.200q", status, body)
		}
		if up.saw("/metrics") {
			t.Error("GET /metrics reached Swift although the filter serves it")
		}
		if c, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
			c.Close()
			t.Errorf("a metrics listener on %s although bind is empty", metricsAddr)
		}
	})
}
