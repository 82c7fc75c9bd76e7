package swiftfilter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// BenchmarkPipelineSwift compares, through the real Swift proxy on one
// tier of Arca object servers, the three ways a client's request can go:
// plain (the proxy with no arca at all), pipeline (the arca middleware in
// the proxy's pipeline and arca-swift-filter's decision socket) and
// reverse-proxy (arca-swift-filter in front of the plain proxy). It
// reports p50, the server side's CPU per request (filter-cpu-µs/op: the
// proxy and filter processes; the object servers are the same in all
// three) and MB/s of 16 MiB PUTs and GETs. tools/bench-pipeline.sh prints
// them side by side.
//
// The CPU arca itself adds is measured directly, since the proxy's own
// 6–9 ms per small request drowns it: arca-mw-cpu-µs/op is the pipeline
// middleware's own CPU per request inside the proxy (its bench CPU meter,
// testenv.BenchFactory, read before and after), arca-go-cpu-µs/op the Go
// side's (the decision socket's process, or the reverse proxy's) from
// /proc.
func BenchmarkPipelineSwift(b *testing.B) {
	work := b.TempDir()
	// Key caches as deployed (the samples' 60 s; arca-api's destroy guard
	// the same): the middleware keeps a key id as long as the guard
	// allows, so a test-sized 1 s guard would measure a decision every
	// few writes where a deployment asks once a minute.
	s := testenv.StartObjectStack(b, testenv.ClusterOptions{Work: work, PartPower: 4, Object: testenv.ObjectServerConfig{CacheTTL: 60}})
	ks := testenv.LoadKeystone(b)
	swiftDir := testenv.SwiftDir(b)
	dec, sock := testenv.StartDecisionSocket(b, ks, testenv.DecisionSocketOptions{Work: work, KeyServiceURL: s.API.URL, CacheTTL: 60})
	pp, purl := testenv.StartPipelineProxyWith(b, swiftDir, s.RingDir, work, "pipeline-proxy", sock, testenv.ProxyOptions{Factory: testenv.BenchFactory})
	wp, wurl := testenv.StartWholePathProxy(b, swiftDir, s.RingDir, work, "plain-proxy")
	// A second plain proxy: the paired control's other process.
	wp2, wurl2 := testenv.StartWholePathProxy(b, swiftDir, s.RingDir, work, "plain-proxy-2")
	wp2.WaitHealthy(b, wurl2+"/healthcheck")
	pp.WaitHealthy(b, purl+"/healthcheck")
	wp.WaitHealthy(b, wurl+"/healthcheck")
	fp, furl := testenv.StartSwiftFilter(b, ks, testenv.SwiftFilterOptions{Work: work, Upstream: wurl, KeyServiceURL: s.API.URL, CacheTTL: 60})
	c := benchClient()
	shapes := []struct {
		name string
		url  string
		pids []int
		// arca are the meters of arca's own CPU in the shape.
		arca func(method string) []meter
	}{
		{"plain", wurl, []int{wp.Pid()}, func(string) []meter { return nil }},
		{"pipeline", purl, []int{pp.Pid(), dec.Pid()}, func(method string) []meter {
			return []meter{&middlewareMeter{c: c, url: purl + "/arca-bench-cpu", method: method}, &procMeter{pid: dec.Pid()}, &askMeter{log: dec.Log}}
		}},
		{"reverse-proxy", furl, []int{fp.Pid(), wp.Pid()}, func(string) []meter {
			return []meter{&procMeter{pid: fp.Pid()}}
		}},
	}
	acct := "/v1/AUTH_" + s.Project
	cont := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	small := bytes.Repeat([]byte("s"), 1024)
	large := bytes.Repeat([]byte("L"), 16<<20)
	req, _ := http.NewRequest("PUT", wurl+acct+"/"+cont, nil)
	req.Header.Set("X-Auth-Token", s.Token)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("container PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, sh := range shapes {
		cpu := func() time.Duration {
			var sum time.Duration
			for _, pid := range sh.pids {
				sum += testenv.ProcCPU(pid)
			}
			return sum
		}
		base := sh.url + acct + "/" + cont
		b.Run("PUT/"+sh.name, func(b *testing.B) {
			runLatencyMeters(b, c, "PUT", base+"/small-"+sh.name, s.Token, small, cpu, 0, sh.arca("PUT")...)
		})
		b.Run("GET/"+sh.name, func(b *testing.B) {
			runLatencyMeters(b, c, "GET", base+"/small-"+sh.name, s.Token, nil, cpu, 0, sh.arca("GET")...)
		})
		b.Run("LargePUT/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(large)))
			runLatencyMeters(b, c, "PUT", base+"/large-"+sh.name, s.Token, large, cpu, int64(len(large)), sh.arca("PUT")...)
		})
		b.Run("LargeGET/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(large)))
			runLatencyMeters(b, c, "GET", base+"/large-"+sh.name, s.Token, nil, cpu, int64(len(large)), sh.arca("GET")...)
		})
	}
	// Added latency, paired: each round sends one request through plain
	// and one through the pipeline (in turn first), so that the disk's
	// fsync latency, which moves by more than the target between runs a
	// minute apart, weighs on both alike; added-p50-µs is the median of
	// the per-pair differences. Both write and read the same object, so
	// that both reach the same object servers and devices.
	// The control pairs the plain proxy with a second plain proxy process
	// on the same configuration: what the method reads where nothing is
	// added but the process.
	for _, method := range []string{"PUT", "GET"} {
		b.Run("Paired"+method+"/pipeline", func(b *testing.B) {
			runPaired(b, c, method, s.Token, small,
				shapes[0].url+acct+"/"+cont+"/paired", shapes[1].url+acct+"/"+cont+"/paired")
		})
		b.Run("Paired"+method+"/control", func(b *testing.B) {
			runPaired(b, c, method, s.Token, small,
				shapes[0].url+acct+"/"+cont+"/paired", wurl2+acct+"/"+cont+"/paired")
		})
	}
	// The Go side alone (after the PUTs above keyed the project):
	// decisions asked back to back on one connection, as the middleware
	// asks them: the decision socket's CPU per decision, without the
	// wake-ups and idle time of requests a proxy spaces out.
	b.Run("Decision/pipeline", func(b *testing.B) {
		benchDecisions(b, sock, acct+"/"+cont+"/decided", s.Project, dec.Pid())
	})
}

// runPaired sends b.N pairs of method requests, one to base and one to
// other, alternating which goes first, and reports each one's p50 and the
// median of other's latency less base's within a pair (added-p50-µs).
func runPaired(b *testing.B, c *http.Client, method, token string, body []byte, base, other string) {
	b.Helper()
	do := func(url string) time.Duration {
		var rd io.Reader
		if body != nil && method == http.MethodPut {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		req.Header.Set("X-Auth-Token", token)
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
		}
		return time.Since(t0)
	}
	if method != http.MethodPut {
		for _, url := range []string{base, other} {
			req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
			req.Header.Set("X-Auth-Token", token)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				b.Fatalf("PUT %s: %v %v", url, resp, err)
			}
			resp.Body.Close()
		}
	}
	for range 20 {
		do(base) // warm connections and caches
		do(other)
	}
	baseLat := make([]time.Duration, 0, b.N)
	otherLat := make([]time.Duration, 0, b.N)
	diff := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		var lb, lo time.Duration
		if i%2 == 0 {
			lb, lo = do(base), do(other)
		} else {
			lo, lb = do(other), do(base)
		}
		baseLat, otherLat, diff = append(baseLat, lb), append(otherLat, lo), append(diff, lo-lb)
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds()) / 1e3
	}
	b.ReportMetric(median(baseLat), "base-p50-µs")
	b.ReportMetric(median(otherLat), "p50-µs")
	b.ReportMetric(median(diff), "added-p50-µs")
}

// procMeter reports a process's CPU per timed request from /proc
// (arca-go-cpu-µs/op): the decision socket's, or the reverse proxy's.
type procMeter struct {
	pid int
	t0  time.Duration
}

func (m *procMeter) start(*testing.B) { m.t0 = testenv.ProcCPU(m.pid) }

func (m *procMeter) report(b *testing.B) {
	d := testenv.ProcCPU(m.pid) - m.t0
	b.ReportMetric(float64(d.Nanoseconds())/1e3/float64(b.N), "arca-go-cpu-µs/op")
}

// askMeter reports the decisions the socket answered per timed request
// (decisions/op, from its access lines): below 1 for PUTs when the
// middleware keeps key ids (reuse_ms), so the Go side's CPU per request
// is that of one decision spread over the writes that reused it.
type askMeter struct {
	log *testenv.LogBuffer
	n0  int
}

// count reads the access lines in either log_format (text: "... INF
// decision key=value ...", json: "message":"decision").
func (m *askMeter) count() int {
	l := m.log.String()
	return strings.Count(l, " INF decision ") + strings.Count(l, `"message":"decision"`)
}

func (m *askMeter) start(*testing.B) { m.n0 = m.count() }

func (m *askMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.count()-m.n0)/float64(b.N), "decisions/op")
}

// middlewareMeter reports the pipeline middleware's own CPU per request
// of method (arca-mw-cpu-µs/op) from its bench CPU meter
// (arca_swift.bench), whose totals url answers.
type middlewareMeter struct {
	c           *http.Client
	url, method string
	n0, ns0     int64
}

func (m *middlewareMeter) read(b *testing.B) (n, ns int64) {
	b.Helper()
	resp, err := m.c.Get(m.url)
	if err != nil {
		b.Fatalf("the middleware's CPU meter: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Ops map[string][2]int64 `json:"ops"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("the middleware's CPU meter: %d %v", resp.StatusCode, err)
	}
	return out.Ops[m.method][0], out.Ops[m.method][1]
}

func (m *middlewareMeter) start(b *testing.B) { m.n0, m.ns0 = m.read(b) }

func (m *middlewareMeter) report(b *testing.B) {
	n, ns := m.read(b)
	if n-m.n0 != int64(b.N) {
		b.Fatalf("the middleware's CPU meter counted %d %s requests, want %d", n-m.n0, m.method, b.N)
	}
	b.ReportMetric(float64(ns-m.ns0)/1e3/float64(b.N), "arca-mw-cpu-µs/op")
}

// benchDecisions asks the decision socket at sock b.N times, one at a
// time on one connection, for the PUT of path by project, and reports
// the socket process's CPU per decision (arca-go-cpu-µs/op) and p50.
func benchDecisions(b *testing.B, sock, path, project string, pid int) {
	conn, err := (&net.Dialer{}).DialContext(b.Context(), "unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	line, err := json.Marshal(map[string]any{"v": DecisionProtocol, "method": "PUT", "path": path, "project_id": project})
	if err != nil {
		b.Fatal(err)
	}
	line = append(line, '\n')
	rd := bufio.NewReader(conn)
	ask := func() {
		if _, err := conn.Write(line); err != nil {
			b.Fatal(err)
		}
		ans, err := rd.ReadBytes('\n')
		if err != nil || bytes.Contains(ans, []byte(`"error"`)) || bytes.Contains(ans, []byte(`"status"`)) {
			b.Fatalf("decision: %q %v", ans, err)
		}
	}
	for range 100 {
		ask() // the key id cached
	}
	lat := make([]time.Duration, 0, b.N)
	m := &procMeter{pid: pid}
	m.start(b)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		ask()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	m.report(b)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
}
