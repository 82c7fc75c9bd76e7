package swiftfilter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/logging"
	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
)

// Benchmarks compare client → filter → upstream with client → upstream in
// one run, with warm caches. The client and the upstream run in the test
// process; the filter runs in a process of its own (this test binary,
// re-executed as TestBenchFilterProcess), as arca-swift-filter does in
// production, so that its CPU is measured on its own (ARCA_BENCH_FILTER_INPROC=1
// serves it from the test process instead, as the first harness did).
// Reported per request: p50 and p99 latency (p50-µs, p99-µs), the CPU of
// every process involved (cpu-µs/op: client and upstream, plus the filter's
// process when there is one), the filter process's own CPU
// (filter-cpu-µs/op, and filter-cpu-ns/B for the large bodies; for the 1 KiB
// requests also its context switches, filter-switches/op), and MB/s for the
// large bodies. tools/bench-filter.sh runs them and prints the
// comparison. ARCA_BENCH_FILTER_CPUPROFILE=FILE writes the filter process's
// CPU profile; ARCA_BENCH_FILTER_MAX_PROCS=N runs the filter process with
// [DEFAULT] max_procs = N.

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// benchFiltered is a filter for a benchmark: its URL and, when it runs in a
// process of its own, that process's CPU time so far.
type benchFiltered struct {
	URL string
	cpu func() time.Duration // nil: the filter shares the test process
	pid int                  // the filter's process; 0: the test process
}

// benchFilter puts a filter (warm token and key caches: fakes, or Keystone
// when keystone is set) in front of upstream.
func benchFilter(b *testing.B, upstream string, keystone bool) benchFiltered {
	b.Helper()
	if os.Getenv("ARCA_BENCH_FILTER_INPROC") == "1" {
		srv := httptest.NewServer(newBenchFilter(b, benchSettings(b, upstream), keystone, io.Discard))
		b.Cleanup(srv.Close)
		return benchFiltered{URL: srv.URL}
	}
	env := []string{"ARCA_BENCH_FILTER_CHILD=" + upstream}
	if keystone {
		env = append(env, "ARCA_BENCH_FILTER_KEYSTONE=1")
	}
	child := testenv.StartChild(b, "TestBenchFilterProcess", "filter-addr", env...)
	return benchFiltered{URL: "http://" + child.Addr, cpu: childCPU(b, child.In, child.Lines), pid: child.Cmd.Process.Pid}
}

// childCPU reads the CPU time so far of a benchmark's middle process (the
// filter's, or the baseline proxy's): it writes "cpu" to the process's
// standard input and reads its "filter-cpu-ns N" answer.
func childCPU(b testing.TB, in io.Writer, lines *bufio.Scanner) func() time.Duration {
	var mu sync.Mutex
	return func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(in, "cpu\n"); err != nil {
			b.Fatal(err)
		}
		// The answer is the next line: anything else is a broken reply,
		// not something to read past (waiting for another line would hang
		// on a process that waits for the next command).
		if !lines.Scan() {
			b.Fatalf("the process went away: %v", lines.Err())
		}
		v, ok := strings.CutPrefix(lines.Text(), "filter-cpu-ns ")
		ns, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			b.Fatalf("answer to cpu: %q, want \"filter-cpu-ns N\"", lines.Text())
		}
		return time.Duration(ns)
	}
}

// benchGoProxy starts the baseline of the filter benchmark in front of
// upstream: $ARCA_BENCH_FILTER_BASELINE, the command of testdata/goproxy
// (a net/http server with httputil.ReverseProxy and nothing else) that
// tools/bench-filter.sh builds, in a process of its own as the filter's,
// its CPU read the same way. With ARCA_BENCH_FILTER_MAX_PROCS=N it runs
// with GOMAXPROCS=N, as the filter with max_procs = N. ok is false when the
// variable is not set (the baseline is then not measured).
func benchGoProxy(b testing.TB, upstream string) (p benchFiltered, ok bool) {
	b.Helper()
	bin := os.Getenv("ARCA_BENCH_FILTER_BASELINE")
	if bin == "" {
		return benchFiltered{}, false
	}
	cmd := exec.Command(bin, upstream)
	cmd.Env = os.Environ()
	if n := os.Getenv("ARCA_BENCH_FILTER_MAX_PROCS"); n != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+n)
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close() // it exits at EOF
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	var addr string
	for addr == "" && lines.Scan() {
		addr, _ = strings.CutPrefix(lines.Text(), "goproxy-addr ")
	}
	if addr == "" {
		b.Fatalf("%s did not start: %v", bin, lines.Err())
	}
	return benchFiltered{URL: "http://" + addr, cpu: childCPU(b, in, lines), pid: cmd.Process.Pid}, true
}

// benchSettings are arca-swift-filter's settings as LoadSettings reads them
// from a file that names only the upstream and a Keystone URL: every other
// value (client_timeout, access_log, log_format, the upstream pool, the
// timeouts) is the command's default, so that the benchmarks' filter is
// served as a default arca-swift-filter serves. Keystone is never asked
// (the filter's validator is a fake, or one of its own in keystone mode).
// ARCA_BENCH_FILTER_MAX_PROCS=N adds max_procs = N, for a comparison: the
// shipped configurations leave it unset.
func benchSettings(t testing.TB, upstream string) Settings {
	t.Helper()
	conf := "[upstream]\nurl = " + upstream + "\n[keystone_authtoken]\nauth_url = http://127.0.0.1:9/v3\n"
	if n := os.Getenv("ARCA_BENCH_FILTER_MAX_PROCS"); n != "" {
		conf += "[DEFAULT]\nmax_procs = " + n + "\n"
	}
	f, err := config.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newBenchFilter is the filter of s with warm fakes for tokens (or
// Keystone) and keys, reporting to a metrics registry and logging through
// the command's logger, as Build wires them; the log goes to log (the
// command writes it to stderr).
func newBenchFilter(t testing.TB, s Settings, withKeystone bool, log io.Writer) *Filter {
	t.Helper()
	var tokens TokenValidator = &fakeTokens{}
	if withKeystone {
		v, err := keystone.NewValidator(testenv.LoadKeystone(t).UserConfig(testenv.UserArcaFilter))
		if err != nil {
			t.Fatal(err)
		}
		tokens = v
	}
	logger := logging.New(logging.Options{Debug: s.Debug, Format: s.LogFormat, Service: "arca-swift-filter", Output: log})
	deps := Deps{Tokens: tokens, Keys: &benchKeys{}, Log: logger, Metrics: metrics.New("arca-swift-filter", Version, s.Metrics)}
	f, err := New(s.Filter, deps)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBenchFilterProcess is the filter process of the benchmarks (it skips
// unless a benchmark started it): it serves a filter in front of
// $ARCA_BENCH_FILTER_CHILD on a free port, prints "filter-addr HOST:PORT",
// answers each "cpu" line on stdin with its CPU time so far
// ("filter-cpu-ns N") and exits at the end of stdin.
func TestBenchFilterProcess(t *testing.T) {
	upstream := os.Getenv("ARCA_BENCH_FILTER_CHILD")
	if upstream == "" {
		t.Skip("the filter process of the benchmarks")
	}
	if file := os.Getenv("ARCA_BENCH_FILTER_CPUPROFILE"); file != "" {
		prof, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); prof.Close() }()
	}
	// The access log is written, one line per request as the command
	// writes it, to /dev/null rather than the benchmark's output.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	s := benchSettings(t, upstream)
	s.SetMaxProcs() // as the command does, before serving
	f := newBenchFilter(t, s, os.Getenv("ARCA_BENCH_FILTER_KEYSTONE") == "1", devNull)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen(tcp) // the command's listener and server (header and idle timeouts)
	if err != nil {
		t.Fatal(err)
	}
	srv := s.HTTPServer(f)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("filter-addr %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			fmt.Printf("filter-cpu-ns %d\n", cpuNow().Nanoseconds())
		}
	}
}

// runLatency runs b.N requests one after the other and reports their latency
// and CPU; size > 0 reports the filter's CPU per byte too.
func runLatency(b *testing.B, c *http.Client, method, url, token string, body []byte, filterCPU func() time.Duration, size int64) {
	b.Helper()
	runLatencyMeters(b, c, method, url, token, body, filterCPU, size)
}

// meter is a measure of its own around a benchmark's timed requests:
// start is called just before them, report just after, both outside the
// CPU windows runLatency reads.
type meter interface {
	start(b *testing.B)
	report(b *testing.B)
}

// runLatencyMeters is runLatency with meters read around the timed loop.
func runLatencyMeters(b *testing.B, c *http.Client, method, url, token string, body []byte, filterCPU func() time.Duration, size int64, meters ...meter) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	do := func() {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
		}
	}
	if conc := benchConcurrency(b); conc > 1 {
		runConcurrent(conc*10, conc, do) // warm as many connections as clients
	}
	for range min(50, max(b.N/10, 2)) {
		do() // warm connections and caches
	}
	for _, m := range meters {
		m.start(b)
	}
	var fcpu0 time.Duration
	if filterCPU != nil {
		fcpu0 = filterCPU()
	}
	cpu0 := cpuNow()
	b.ResetTimer()
	start := time.Now()
	if conc := benchConcurrency(b); conc > 1 {
		lat = runConcurrent(b.N, conc, do)
	} else {
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			do()
			lat = append(lat, time.Since(t0))
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuNow() - cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	if filterCPU != nil {
		fcpu := filterCPU() - fcpu0
		cpu += fcpu
		b.ReportMetric(float64(fcpu.Nanoseconds())/1e3/float64(b.N), "filter-cpu-µs/op")
		if size > 0 {
			b.ReportMetric(float64(fcpu.Nanoseconds())/float64(size)/float64(b.N), "filter-cpu-ns/B")
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	for _, m := range meters {
		m.report(b)
	}
}

// benchConcurrency is $ARCA_BENCH_FILTER_CONCURRENCY, the number of clients
// sending requests at once (1, one after the other, when unset).
// tools/bench-filter.sh runs BenchmarkFilterSmall both ways: one request
// at a time, and with 8 clients for issue 21.3's verdict.
func benchConcurrency(b *testing.B) int {
	v := os.Getenv("ARCA_BENCH_FILTER_CONCURRENCY")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("ARCA_BENCH_FILTER_CONCURRENCY=%q: not a positive number", v)
	}
	return n
}

// runConcurrent runs do n times from conc goroutines at once and returns
// each call's latency.
func runConcurrent(n, conc int, do func()) []time.Duration {
	var next atomic.Int64
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				do()
				lats[g] = append(lats[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lats...)
}

// BenchmarkFilterSmall: 1 KiB GET and PUT with a token against a Go upstream.
func BenchmarkFilterSmall(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Length", "1024")
		_, _ = w.Write(payload)
	}))
	b.Cleanup(up.Close)
	via := benchFilter(b, up.URL, false)
	type benchPath struct {
		name, base string
		cpu        func() time.Duration
		meters     []meter
	}
	middle := []benchPath{{"filter", via.URL, via.cpu, switchMeters(via.pid)}}
	// The baseline: a minimal Go reverse proxy in a process of its own; its
	// rows (GET/goproxy, PUT/goproxy) report its CPU and context switches
	// under the filter's metric names (filter-cpu-µs/op, filter-switches/op:
	// the process in the middle's). Which of the two goes
	// first alternates with the round (ARCA_BENCH_FILTER_ROUND, odd: the
	// filter), so that neither always follows the direct run.
	if gp, ok := benchGoProxy(b, up.URL); ok {
		middle = append(middle, benchPath{"goproxy", gp.URL, gp.cpu, switchMeters(gp.pid)})
		if r, _ := strconv.Atoi(os.Getenv("ARCA_BENCH_FILTER_ROUND")); r > 0 && r%2 == 0 {
			slices.Reverse(middle)
		}
	}
	for _, m := range []struct {
		method string
		body   []byte
	}{{"GET", nil}, {"PUT", payload}} {
		for _, path := range append([]benchPath{{"direct", up.URL, nil, nil}}, middle...) {
			b.Run(m.method+"/"+path.name, func(b *testing.B) {
				runLatencyMeters(b, benchClient(), m.method, path.base+"/v1/AUTH_demo/c/o", "tok-demo", m.body, path.cpu, 0, path.meters...)
			})
		}
	}
}

// switchMeter reports the filter process's context switches per request
// (filter-switches/op, every thread's, voluntary and involuntary): each
// goroutine hand-off that wakes a parked thread shows here, whatever the
// machine's load does to the CPU figures.
type switchMeter struct {
	pid int
	n0  int64
}

func (m *switchMeter) start(*testing.B) { m.n0 = testenv.ProcSwitches(m.pid) }

func (m *switchMeter) report(b *testing.B) {
	b.ReportMetric(float64(testenv.ProcSwitches(m.pid)-m.n0)/float64(b.N), "filter-switches/op")
}

// switchMeters is a switchMeter for the filter's process pid, none when
// the filter runs in the test process (pid 0).
func switchMeters(pid int) []meter {
	if pid == 0 {
		return nil
	}
	return []meter{&switchMeter{pid: pid}}
}

// BenchmarkFilterLarge: 64 MiB PUT and GET throughput against a Go upstream
// (discarding, serving from memory).
func BenchmarkFilterLarge(b *testing.B) {
	const size = 64 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = w.Write(payload)
	}))
	b.Cleanup(up.Close)
	via := benchFilter(b, up.URL, false)
	for _, method := range []string{"PUT", "GET"} {
		for _, path := range []struct {
			name, base string
			cpu        func() time.Duration
		}{{"direct", up.URL, nil}, {"filter", via.URL, via.cpu}} {
			b.Run(method+"/"+path.name, func(b *testing.B) {
				b.SetBytes(size)
				var body []byte
				if method == "PUT" {
					body = payload
				}
				runLatency(b, benchClient(), method, path.base+"/v1/AUTH_demo/c/big", "tok-demo", body, path.cpu, size)
			})
		}
	}
}

// BenchmarkFilterSwift: small object GET/PUT against the stack's real Swift
// proxy, with a real Keystone token (the filter's keystone cache warm).
func BenchmarkFilterSwift(b *testing.B) {
	ks := testenv.LoadKeystone(b)
	swiftURL := os.Getenv("ARCA_TEST_SWIFT_URL")
	if swiftURL == "" {
		testenv.StackMissing(b, "ARCA_TEST_SWIFT_URL is not set")
	}
	v, err := keystone.NewValidator(ks.UserConfig(testenv.UserArcaFilter))
	if err != nil {
		b.Fatal(err)
	}
	tok := ks.Token(b, testenv.UserDemo)
	kt, err := v.Validate(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	via := benchFilter(b, swiftURL, true)
	path := "/v1/AUTH_" + kt.ProjectID + "/sf-bench"
	c := benchClient()
	for _, req := range []struct {
		method, path string
		body         []byte
	}{{"PUT", path, nil}, {"PUT", path + "/o", bytes.Repeat([]byte("x"), 1024)}} {
		r, _ := http.NewRequest(req.method, swiftURL+req.path, bytes.NewReader(req.body))
		r.Header.Set("X-Auth-Token", tok)
		resp, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	bases := []struct {
		name, url string
		cpu       func() time.Duration
	}{{"direct", swiftURL, nil}, {"filter", via.URL, via.cpu}}
	for _, base := range bases {
		b.Run("GET/"+base.name, func(b *testing.B) {
			runLatency(b, c, "GET", base.url+path+"/o", tok, nil, base.cpu, 0)
		})
	}
	// Large objects: 16 MiB PUT then GET, MB/s.
	const size = 16 << 20
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, method := range []string{"PUT", "GET"} {
		for _, base := range bases {
			b.Run("Large"+method+"/"+base.name, func(b *testing.B) {
				b.SetBytes(size)
				var body []byte
				if method == "PUT" {
					body = big
				}
				runLatency(b, c, method, base.url+path+"/big", tok, body, base.cpu, size)
			})
		}
	}
}
