package functional_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/tools/soak"
)

// TestSoak is make soak (tools/soak.sh): ARCA_SOAK_MINUTES of mixed secret
// and object traffic at ARCA_SOAK_CONCURRENCY (32) through the deployment
// of newEnv (arca-api, two arca-object-servers, a private swift-proxy,
// arca-swift-filter). Every answer is checked (status, bytes read back);
// anything else is an unexpected error and fails the run. The RSS of every
// Arca process and its go_goroutines (from /metrics) are sampled every
// ARCA_SOAK_SAMPLE_SECONDS (5); ARCA_SOAK_OUT (docs/) receives soak.md and
// soak-rss.png. Without ARCA_SOAK_MINUTES it is skipped.
func TestSoak(t *testing.T) {
	minutes, err := strconv.ParseFloat(os.Getenv("ARCA_SOAK_MINUTES"), 64)
	if err != nil || minutes <= 0 {
		t.Skip("ARCA_SOAK_MINUTES is not set: run make soak")
	}
	conc := envInt("ARCA_SOAK_CONCURRENCY", 32)
	every := time.Duration(envInt("ARCA_SOAK_SAMPLE_SECONDS", 5)) * time.Second
	out := os.Getenv("ARCA_SOAK_OUT")
	if out == "" {
		out = t.TempDir()
	}
	e := newEnv(t)
	demo := e.users[testenv.UserDemo]
	cont := "soak-" + e.tag
	base := e.storage(demo.project) + "/" + cont

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * conc
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	req := func(method, url string, body []byte, hdr ...string) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		r, err := http.NewRequest(method, url, rd)
		if err != nil {
			return 0, nil, err
		}
		r.Header.Set("X-Auth-Token", demo.token)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(r)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	if code, b, err := req("PUT", base, nil); err != nil || (code != 201 && code != 202) {
		t.Fatalf("container PUT: %d %v %s", code, err, b)
	}
	t.Cleanup(func() { _, _, _ = req("DELETE", base, nil) })

	// The watched processes.
	type watched struct {
		name    string
		pid     int
		metrics string
	}
	procs := []watched{{"arca-api", e.api.Pid(), metricsURL(t, e.apiURL)}}
	for i, p := range e.objServers {
		procs = append(procs, watched{fmt.Sprintf("object-server-%d", i+1), p.Pid(), metricsURL(t, e.objURLs[i])})
	}
	procs = append(procs, watched{"swift-filter", e.filterProc.Pid(), metricsURL(t, e.filter)})
	type sample struct {
		at  float64
		rss []float64 // MiB
		gor []int     // -1: not exposed
	}
	var samples []sample
	start := time.Now()
	take := func() sample {
		s := sample{at: time.Since(start).Seconds()}
		for _, p := range procs {
			s.rss = append(s.rss, rssMiB(p.pid))
			s.gor = append(s.gor, goroutines(client, p.metrics))
		}
		return s
	}

	// The load.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(minutes*float64(time.Minute)))
	defer cancel()
	kinds := []string{"secret store", "secret payload", "secret delete", "object PUT", "object GET", "object DELETE"}
	type stats struct {
		lat  map[string][]time.Duration
		errs []string
	}
	results := make([]stats, conc)
	var nerr atomic.Int64
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &results[w]
			st.lat = map[string][]time.Duration{}
			fail := func(kind string, code int, err error, b []byte) {
				nerr.Add(1)
				if len(st.errs) < 5 {
					st.errs = append(st.errs, fmt.Sprintf("%s: %d %v %.200s", kind, code, err, b))
				}
			}
			timed := func(kind string, f func() bool) bool {
				t0 := time.Now()
				ok := f()
				if ok && ctx.Err() == nil {
					st.lat[kind] = append(st.lat[kind], time.Since(t0))
				}
				return ok
			}
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ctx.Err() == nil; i++ {
				if rng.IntN(2) == 0 {
					payload := fmt.Sprintf("soak-%s-%d-%d-%x", e.tag, w, i, rng.Uint64())
					body, _ := json.Marshal(map[string]string{"name": "soak-" + e.tag, "payload": payload, "payload_content_type": "text/plain"})
					var ref string
					if !timed(kinds[0], func() bool {
						code, b, err := req("POST", e.apiURL+"/v1/secrets", body, "Content-Type", "application/json")
						var r struct {
							Ref string `json:"secret_ref"`
						}
						if err != nil || code != 201 || json.Unmarshal(b, &r) != nil || r.Ref == "" {
							fail(kinds[0], code, err, b)
							return false
						}
						ref = r.Ref
						return true
					}) {
						continue
					}
					timed(kinds[1], func() bool {
						code, b, err := req("GET", ref+"/payload", nil, "Accept", "text/plain")
						if err != nil || code != 200 || string(b) != payload {
							fail(kinds[1], code, err, b)
							return false
						}
						return true
					})
					timed(kinds[2], func() bool {
						code, b, err := req("DELETE", ref, nil)
						if err != nil || code != 204 {
							fail(kinds[2], code, err, b)
							return false
						}
						return true
					})
					continue
				}
				obj := fmt.Sprintf("%s/w%d-%d", base, w, i)
				data := make([]byte, 1+rng.IntN(256<<10))
				_, _ = rand.Read(data)
				if !timed(kinds[3], func() bool {
					code, b, err := req("PUT", obj, data)
					if err != nil || code != 201 {
						fail(kinds[3], code, err, b)
						return false
					}
					return true
				}) {
					continue
				}
				timed(kinds[4], func() bool {
					code, b, err := req("GET", obj, nil)
					if err != nil || code != 200 || !bytes.Equal(b, data) {
						fail(kinds[4], code, err, []byte(fmt.Sprintf("%d bytes, identical %v", len(b), bytes.Equal(b, data))))
						return false
					}
					return true
				})
				timed(kinds[5], func() bool {
					code, b, err := req("DELETE", obj, nil)
					if err != nil || code != 204 {
						fail(kinds[5], code, err, b)
						return false
					}
					return true
				})
			}
		}()
	}
	samples = append(samples, take())
	tick := time.NewTicker(every)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			samples = append(samples, take())
			s := samples[len(samples)-1]
			t.Logf("t=%4.0fs rss MiB %v goroutines %v errors %d", s.at, s.rss, s.gor, nerr.Load())
		}
	}
	tick.Stop()
	wg.Wait()
	loadEnd := samples[len(samples)-1]
	tr.CloseIdleConnections()
	time.Sleep(every)
	settled := take()
	samples = append(samples, settled)

	// Figures.
	lat := map[string][]time.Duration{}
	var errs []string
	for _, r := range results {
		for k, v := range r.lat {
			lat[k] = append(lat[k], v...)
		}
		errs = append(errs, r.errs...)
	}
	warm := samples[0]
	for _, s := range samples {
		if s.at >= minutes*60/10 { // 10% into the run
			warm = s
			break
		}
	}
	var md strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&md, "# Soak run\n\nWritten by `make soak` (tools/soak.sh, `functional.TestSoak`) on %s, %s; %d cores.\n\n", host, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtimeCPUs())
	fmt.Fprintf(&md, "%.1f minutes of mixed traffic at concurrency %d through arca-api, arca-swift-filter, a private swift-proxy and two arca-object-servers (2 replicas), as assembled by `functional/` on the real stack (Keystone, MariaDB). Each worker picks, at random, a secret round trip (store, read the payload back, delete: arca-api directly) or an object round trip (PUT 1 B..256 KiB of random bytes, GET and compare, DELETE: through the filter). Samples every %s.\n\n", minutes, conc, every)
	total := 0
	fmt.Fprintf(&md, "| operation | count | p50 ms | p99 ms |\n| --- | --- | --- | --- |\n")
	for _, k := range kinds {
		v := lat[k]
		total += len(v)
		slices.Sort(v)
		fmt.Fprintf(&md, "| %s | %d | %.1f | %.1f |\n", k, len(v), pct(v, 0.5), pct(v, 0.99))
	}
	fmt.Fprintf(&md, "\n**Unexpected errors: %d** (of %d checked operations; any status other than the expected one, a transport error, or bytes that differ).\n\n", nerr.Load(), total)
	for _, s := range errs {
		fmt.Fprintf(&md, "- `%s`\n", strings.ReplaceAll(s, "`", "'"))
	}
	fmt.Fprintf(&md, "| process | RSS MiB at 10%% | max | end of load | goroutines at 10%% | max | end of load | %s after the load |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n", every)
	var series []soak.Series
	for i, p := range procs {
		var x, y []float64
		rmax, gmax := 0.0, -1
		for _, s := range samples {
			x, y = append(x, s.at), append(y, s.rss[i])
			rmax, gmax = math.Max(rmax, s.rss[i]), max(gmax, s.gor[i])
		}
		series = append(series, soak.Series{Name: p.name, X: x, Y: y})
		fmt.Fprintf(&md, "| %s | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", p.name, warm.rss[i], rmax, loadEnd.rss[i], gs(warm.gor[i]), gs(gmax), gs(loadEnd.gor[i]), gs(settled.gor[i]))
		if loadEnd.rss[i] > 2*warm.rss[i]+64 {
			t.Errorf("%s: RSS grew from %.1f MiB to %.1f MiB", p.name, warm.rss[i], loadEnd.rss[i])
		}
		if warm.gor[i] > 0 && settled.gor[i] > 2*warm.gor[i]+50 {
			t.Errorf("%s: %d goroutines after the load, %d at 10%% of it", p.name, settled.gor[i], warm.gor[i])
		}
	}
	fmt.Fprintf(&md, "\n![RSS over time](soak-rss.png)\n\nRSS is VmRSS from /proc; goroutines are each service's `go_goroutines` from its /metrics.\n")
	f, err := os.Create(filepath.Join(out, "soak-rss.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (soak.Chart{Title: "Arca RSS during the soak", YLabel: "RSS MiB", Series: series}).WritePNG(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "soak.md"), []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\nwritten to %s", md.String(), out)
	if n := nerr.Load(); n != 0 {
		t.Errorf("%d unexpected errors, first ones:\n%s", n, strings.Join(errs, "\n"))
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func runtimeCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "\nprocessor")+boolInt(strings.HasPrefix(string(b), "processor")))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func pct(v []time.Duration, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return float64(v[int(q*float64(len(v)-1))]) / float64(time.Millisecond)
}

func gs(n int) string {
	if n < 0 {
		return "n/a"
	}
	return strconv.Itoa(n)
}

// rssMiB is a process's VmRSS in MiB (0 when it is gone).
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// goroutines reads go_goroutines from a Prometheus text endpoint; -1 when
// it is not exposed.
func goroutines(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return -1
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// metricsURL is the /metrics of the service at serviceURL: its own loopback
// listener at the default port (metrics.DefaultBind), not the service port.
func metricsURL(t *testing.T, serviceURL string) string {
	t.Helper()
	u, err := url.Parse(serviceURL)
	if err != nil {
		t.Fatalf("service URL %q: %v", serviceURL, err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("service URL %q has no port", serviceURL)
	}
	return "http://" + metrics.DefaultBind(port) + metrics.Path
}
