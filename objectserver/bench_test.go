package objectserver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/rawhttp"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/ringhash"
)

// benchServer is an in-process arca-object-server over loopback HTTP.
func benchServer(b testing.TB, encrypt bool) (url string, cleanup func()) {
	b.Helper()
	devices := b.TempDir()
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		b.Fatal(err)
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	keys := newMemResolver()
	srv, err := New(Config{Devices: devices, Encrypt: encrypt, Algorithm: objcrypt.AES128CBC, StoredEtag: true,
		ReclaimAge: time.Hour}, swift, keys, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL + "/sda/1", ts.Close
}

var benchSizes = []int{4 << 10, 1 << 20, 64 << 20}

func benchBody(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b[:min(n, 1<<20)])
	for i := 1 << 20; i < n; i += 1 << 20 {
		copy(b[i:], b[:1<<20])
	}
	return b
}

var tsCounter atomic.Int64

func nextTS() string {
	base := time.Now().UnixNano() / 10000
	n := tsCounter.Add(1)
	return diskfile.Timestamp{Raw: base + n}.Internal()
}

func doPut(c *http.Client, url string, body []byte) error {
	req, _ := http.NewRequest("PUT", url, bytes.NewReader(body))
	req.Header.Set("X-Timestamp", nextTS())
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(body))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("PUT %d", resp.StatusCode)
	}
	return nil
}

func doGet(c *http.Client, url string) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return n, fmt.Errorf("GET %d", resp.StatusCode)
	}
	return n, err
}

// BenchmarkObjectServer measures PUT and GET through loopback HTTP, with and
// without encryption (b.SetBytes gives MB/s).
func BenchmarkObjectServer(b *testing.B) {
	for _, enc := range []bool{true, false} {
		url, done := benchServer(b, enc)
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		for _, size := range benchSizes[:2] {
			body := benchBody(size)
			name := fmt.Sprintf("encrypt=%v/%dKiB", enc, size>>10)
			b.Run("PUT/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				var i atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := doPut(c, fmt.Sprintf("%s/AUTH_b/c/o%d", url, i.Add(1)%64), body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			if err := doPut(c, url+"/AUTH_b/c/get", body); err != nil {
				b.Fatal(err)
			}
			b.Run("GET/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := doGet(c, url+"/AUTH_b/c/get"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		done()
	}
}

// loadResult is one load-generator run, with the CPU the measured server
// (all its processes) and the load generator spent meanwhile.
type loadResult struct {
	reqs      int
	bytes     int64
	dur       time.Duration
	serverCPU time.Duration
	clientCPU time.Duration
}

func (r loadResult) rate() float64 { return float64(r.reqs) / r.dur.Seconds() }

func (r loadResult) String() string {
	perReq := func(d time.Duration) float64 {
		if r.reqs == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(r.reqs)
	}
	return fmt.Sprintf("%9.0f req/s %8.1f MB/s %9.0f µs %9.0f µs", r.rate(), float64(r.bytes)/r.dur.Seconds()/1e6,
		perReq(r.serverCPU), perReq(r.clientCPU))
}

// benchConcurrency is the report's number of workers, each with one
// keep-alive connection per server.
const benchConcurrency = 8

// runLoad runs op with benchConcurrency workers until total requests or
// the time is up, measuring the CPU of the processes in group and of this
// process around it.
func runLoad(group int, total int, maxDur time.Duration, op func(i, worker int) (int64, error)) (loadResult, error) {
	var n atomic.Int64
	var bytesDone atomic.Int64
	var firstErr error
	var mu sync.Mutex
	server0, err := groupCPU(group)
	if err != nil {
		return loadResult{}, err
	}
	client0, err := procCPU("self")
	if err != nil {
		return loadResult{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range benchConcurrency {
		wg.Go(func() {
			for {
				i := int(n.Add(1))
				if i > total || time.Since(start) > maxDur {
					n.Add(-1)
					return
				}
				b, err := op(i, w)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				bytesDone.Add(b)
			}
		})
	}
	wg.Wait()
	res := loadResult{reqs: int(n.Load()), bytes: bytesDone.Load(), dur: time.Since(start)}
	server1, err := groupCPU(group)
	if err != nil {
		return res, err
	}
	client1, err := procCPU("self")
	if err != nil {
		return res, err
	}
	res.serverCPU, res.clientCPU = server1-server0, client1-client0
	return res, firstErr
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU is a process's utime+stime (all its threads) from
// /proc/<pid>/stat; pid may be "self".
func procCPU(pid string) (time.Duration, error) {
	_, cpu, err := procStat(pid)
	return cpu, err
}

// procStat reads a process's group id and CPU time.
func procStat(pid string) (pgrp int, cpu time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("reading the CPU time of process %s: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow are counted from its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("process %s: malformed stat %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): pgrp is field 5, utime 14 and stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("process %s: short stat %q", pid, b)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("process %s: malformed stat: %w", pid, err)
	}
	return pgrp, time.Duration(ut+st) * clockTick, nil
}

// groupMembers lists the processes of process group pgid (a server and
// its workers).
func groupMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, _, err := procStat(e.Name()); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// groupCPU is the CPU time of every process in process group pgid.
func groupCPU(pgid int) (time.Duration, error) {
	pids, err := groupMembers(pgid)
	if err != nil {
		return 0, err
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("process group %d has no processes", pgid)
	}
	var total time.Duration
	for _, p := range pids {
		cpu, err := procCPU(strconv.Itoa(p))
		if err != nil {
			return 0, err
		}
		total += cpu
	}
	return total, nil
}

func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// benchProject is the project (and account AUTH_<project>) of the report.
const benchProject = "be0c4be0c4be0c4be0c4be0c4be0c4b0"

// benchTarget is one object server of the report, in process group pgid.
type benchTarget struct {
	name string
	base string // http://host:port
	pgid int
}

// path is the object path for worker w's object.
func (b benchTarget) path(w int) string {
	return fmt.Sprintf("/sda/1/AUTH_%s/c/o%d", benchProject, w)
}

// startArcaObjectServer runs the real arca-object-server binary in a
// process of its own, as an operator would, keys from keyServiceURL
// (arca-api, noauth). Like the Python server it logs warnings only: no
// access log.
func startArcaObjectServer(t *testing.T, name string, encrypt bool, keyServiceURL string) benchTarget {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node", "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	swiftConf := filepath.Join(dir, "swift.conf")
	if err := os.WriteFile(swiftConf, []byte("[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n\n[storage-policy:0]\nname = gold\ndefault = yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	driver := "none"
	if encrypt {
		driver = "objcrypt"
	}
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "object-server.conf")
	text := fmt.Sprintf(`[DEFAULT]
devices = %s/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
swift_conf = %s
log_level = warning
[app:object-server]
[arca]
crypto_driver = %s
crypto_protocol = aes_128_cbc
key_service_url = %s
key_service_noauth = true
`, dir, port, dir, swiftConf, driver, keyServiceURL)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProc(t, testenv.NewLog(t, name), filepath.Join(testenv.Binaries(t), "arca-object-server"), "--config-file", conf)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.WaitHealthy(t, base+"/healthcheck")
	return benchTarget{name: name, base: base, pgid: p.Pid()}
}

// startPythonObjectServer runs Debian's swift-object-server (2 workers).
func startPythonObjectServer(t *testing.T) benchTarget {
	t.Helper()
	testenv.RequireTools(t, "swift-object-server")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node", "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	conf := fmt.Sprintf("[DEFAULT]\nuser = root\nbind_ip = 127.0.0.1\nbind_port = %d\nworkers = 2\ndevices = %s/node\nmount_check = false\nlog_address = %s/no-syslog\nlog_level = WARNING\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n", port, dir, dir)
	cpath := filepath.Join(dir, "object-server.conf")
	if err := os.WriteFile(cpath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProc(t, nil, "swift-object-server", cpath, "-v")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Without a healthcheck middleware in the pipeline, OPTIONS is the
	// object server's own answer.
	for i := 0; ; i++ {
		req, _ := http.NewRequest("OPTIONS", base+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 || p.Exited() {
			t.Fatalf("swift-object-server did not start:\n%s", p.Log.Tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return benchTarget{name: "swift (python, 2 workers)", base: base, pgid: p.Pid()}
}

// rawWorkers are the report's raw keep-alive connections to one server,
// one per worker, and each worker's PUT headers.
type rawWorkers struct {
	conns []*rawhttp.Conn
	hdrs  []http.Header
}

func newRawWorkers(base string) *rawWorkers {
	host := strings.TrimPrefix(base, "http://")
	r := &rawWorkers{}
	for range benchConcurrency {
		r.conns = append(r.conns, rawhttp.New(host, host, time.Minute))
		r.hdrs = append(r.hdrs, http.Header{"Content-Type": {"application/octet-stream"}, "X-Timestamp": {""}})
	}
	return r
}

func (r *rawWorkers) close() {
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *rawWorkers) put(w int, path string, body []byte) error {
	h := r.hdrs[w]
	h["X-Timestamp"][0] = nextTS()
	status, answer, err := r.conns[w].Send(http.MethodPut, path, h, body)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	if status != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d %.200s", path, status, answer)
	}
	return nil
}

func (r *rawWorkers) get(w int, path string, size int) error {
	c := r.conns[w]
	c.MaxBody = int64(size)
	status, answer, err := c.Send(http.MethodGet, path, nil, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if status != http.StatusOK || len(answer) != size {
		return fmt.Errorf("GET %s: %d, %d bytes (want 200, %d)", path, status, len(answer), size)
	}
	return nil
}

// TestBenchReport prints the object-server comparison of issue 6 (make
// bench sets ARCA_BENCH=1): arca encrypted, arca unencrypted and Debian's
// Python object server, PUT and GET of 4 KiB, 1 MiB and 64 MiB objects at
// concurrency 8. Every server runs in processes of its own, arca's from
// the real binary (keys from a real arca-api), and the figures come with
// each server's CPU time per request. The load generator is rawhttp's
// lean client up to 1 MiB (its CPU is reported too), net/http above.
func TestBenchReport(t *testing.T) {
	if os.Getenv("ARCA_BENCH") != "1" {
		t.Skip("set ARCA_BENCH=1 for the object-server speed report")
	}
	py := startPythonObjectServer(t)
	api := testenv.StartAPI(t, testenv.APIOptions{})
	servers := []benchTarget{
		startArcaObjectServer(t, "arca encrypted", true, api.URL),
		startArcaObjectServer(t, "arca plaintext", false, api.URL),
		py,
	}
	raw := map[string]*rawWorkers{}
	for _, sv := range servers {
		raw[sv.name] = newRawWorkers(sv.base)
		defer raw[sv.name].close()
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	// One round trip per server first: arca's key caches and every
	// server's first-request set-up are not what is measured.
	for _, sv := range servers {
		if err := doPut(c, sv.base+sv.path(0), []byte("warm-up")); err != nil {
			t.Fatalf("%s: warm-up: %v", sv.name, err)
		}
		if _, err := doGet(c, sv.base+sv.path(0)); err != nil {
			t.Fatalf("%s: warm-up: %v", sv.name, err)
		}
	}
	type key struct{ server, op string }
	small := map[key]loadResult{}
	var report strings.Builder
	fmt.Fprintf(&report, "\nobject server, concurrency %d, loopback; each server in its own processes; CPU is per request\n", benchConcurrency)
	fmt.Fprintf(&report, "%-28s %-4s %-6s %9s %14s %12s %12s\n", "server", "op", "size", "req/s", "MB/s", "server CPU", "client CPU")
	for _, size := range benchSizes {
		body := benchBody(size)
		total, maxDur := 20000, 4*time.Second
		switch {
		case size >= 64<<20:
			total, maxDur = 24, 60*time.Second
		case size >= 1<<20:
			total, maxDur = 800, 5*time.Second
		}
		for _, sv := range servers {
			rw := raw[sv.name]
			put := func(_, w int) (int64, error) { return int64(size), rw.put(w, sv.path(w), body) }
			get := func(_, w int) (int64, error) { return int64(size), rw.get(w, sv.path(w), size) }
			if size > rawhttp.DefaultMaxBody {
				// rawhttp keeps answers in memory: 64 MiB goes through net/http.
				put = func(_, w int) (int64, error) { return int64(size), doPut(c, sv.base+sv.path(w), body) }
				get = func(_, w int) (int64, error) { return doGet(c, sv.base+sv.path(w)) }
			}
			for _, phase := range []struct {
				op string
				fn func(i, w int) (int64, error)
			}{{"PUT", put}, {"GET", get}} {
				res, err := runLoad(sv.pgid, total, maxDur, phase.fn)
				if err != nil {
					t.Fatalf("%s %s %s: %v", sv.name, phase.op, sizeName(size), err)
				}
				fmt.Fprintf(&report, "%-28s %-4s %-6s %s\n", sv.name, phase.op, sizeName(size), res)
				if size == 4<<10 {
					small[key{sv.name, phase.op}] = res
				}
			}
		}
	}
	fmt.Fprintf(&report, "peak RSS:")
	for _, sv := range servers {
		pids, _ := groupMembers(sv.pgid)
		fmt.Fprintf(&report, " %s", sv.name)
		for _, p := range pids {
			fmt.Fprintf(&report, " %s", vmHWM(p))
		}
		fmt.Fprintf(&report, ";")
	}
	fmt.Fprintf(&report, "\n")
	for _, op := range []string{"PUT", "GET"} {
		enc, pyRes := small[key{servers[0].name, op}], small[key{py.name, op}]
		ratio := enc.rate() / pyRes.rate()
		verdict := "not met"
		if ratio >= 5 {
			verdict = "met"
		}
		fmt.Fprintf(&report, "goal: 4 KiB %s, arca encrypted >= 5x python's req/s: %.0f vs %.0f req/s = %.1fx, %s\n",
			op, enc.rate(), pyRes.rate(), ratio, verdict)
	}
	t.Log(report.String())
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
