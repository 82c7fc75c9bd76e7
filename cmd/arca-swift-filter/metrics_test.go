package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
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
	get := httpGet
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

// TestMaxProcs: [DEFAULT] max_procs sets how many threads run the filter's
// Go code (its go_sched_gomaxprocs_threads metric); unset, the filter keeps
// Go's default, the one this test process has.
func TestMaxProcs(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	goDefault := runtime.GOMAXPROCS(0)
	set := 1
	if goDefault == 1 {
		set = 2 // a value the default is not, so that the check can fail
	}
	for _, c := range []struct {
		name string
		conf string
		want int
	}{
		{"unset", "", goDefault},
		{fmt.Sprintf("max_procs = %d", set), fmt.Sprintf("[DEFAULT]\nmax_procs = %d\n", set), set},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newRecorder(t)
			port, metricsAddr := freePorts(t)
			main, secrets := filterConf(ks, port, up.URL)
			p := start(t, writeFile(t, filepath.Join(t.TempDir(), "f.conf"), main+secrets+c.conf, 0o600))
			p.WaitHealthy(t, healthURL(port))
			if got := gaugeValue(t, "http://"+metricsAddr+"/metrics", "go_sched_gomaxprocs_threads"); got != c.want {
				t.Errorf("go_sched_gomaxprocs_threads %d, want %d", got, c.want)
			}
		})
	}
}

// gaugeValue reads the integer value of the unlabelled series name from a
// Prometheus text exposition at url.
func gaugeValue(t *testing.T, url, name string) int {
	t.Helper()
	_, body, _ := httpGet(t, url)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return n
		}
	}
	t.Fatalf("%s: no series %s", url, name)
	return 0
}

// httpGet GETs url (10 s at most) and returns the status, body and
// headers; a request that gets no answer fails the test.
func httpGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}
