package objectserver

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

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

// loadResult is one load-generator run.
type loadResult struct {
	reqs  int
	bytes int64
	dur   time.Duration
}

func (r loadResult) String() string {
	s := r.dur.Seconds()
	return fmt.Sprintf("%9.0f req/s %9.1f MB/s", float64(r.reqs)/s, float64(r.bytes)/s/1e6)
}

// runLoad runs op with concurrency 8 until total requests or the time is up.
func runLoad(total int, maxDur time.Duration, op func(i, worker int) (int64, error)) (loadResult, error) {
	var n atomic.Int64
	var bytesDone atomic.Int64
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
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
		}(w)
	}
	wg.Wait()
	return loadResult{reqs: int(n.Load()), bytes: bytesDone.Load(), dur: time.Since(start)}, firstErr
}

func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}

// startPythonObjectServer runs Debian's swift-object-server (2 workers).
func startPythonObjectServer(t *testing.T) (url string, pids func() []int) {
	t.Helper()
	if _, err := exec.LookPath("swift-object-server"); err != nil {
		t.Skip("swift-object-server not installed")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node", "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf("[DEFAULT]\nuser = root\nbind_ip = 127.0.0.1\nbind_port = %d\nworkers = 2\ndevices = %s/node\nmount_check = false\nlog_address = %s/no-syslog\nlog_level = WARNING\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n", port, dir, dir)
	cpath := filepath.Join(dir, "object-server.conf")
	if err := os.WriteFile(cpath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("swift-object-server", cpath, "-v")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		req, _ := http.NewRequest("OPTIONS", base+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			t.Fatalf("swift-object-server did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base + "/sda/1", func() []int {
		out, _ := exec.Command("pgrep", "-g", strconv.Itoa(cmd.Process.Pid)).Output()
		var ps []int
		for _, f := range strings.Fields(string(out)) {
			if p, err := strconv.Atoi(f); err == nil {
				ps = append(ps, p)
			}
		}
		return ps
	}
}

// TestBenchReport prints the object-server comparison of issue 6 (make
// bench sets ARCA_BENCH=1): arca encrypted, arca unencrypted and Debian's
// Python object server, PUT and GET of 4 KiB, 1 MiB and 64 MiB objects at
// concurrency 8.
func TestBenchReport(t *testing.T) {
	if os.Getenv("ARCA_BENCH") != "1" {
		t.Skip("set ARCA_BENCH=1 for the object-server speed report")
	}
	pyURL, pyPIDs := startPythonObjectServer(t)
	encURL, encDone := benchServer(t, true)
	defer encDone()
	plainURL, plainDone := benchServer(t, false)
	defer plainDone()
	servers := []struct{ name, url string }{{"arca encrypted", encURL}, {"arca plaintext", plainURL}, {"swift (python, 2 workers)", pyURL}}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	var report strings.Builder
	fmt.Fprintf(&report, "\nobject server, concurrency 8, loopback\n%-28s %-6s %-8s %s\n", "server", "op", "size", "result")
	for _, size := range benchSizes {
		body := benchBody(size)
		total, maxDur := 4000, 5*time.Second
		if size >= 64<<20 {
			total, maxDur = 24, 60*time.Second
		} else if size >= 1<<20 {
			total = 400
		}
		for _, sv := range servers {
			res, err := runLoad(total, maxDur, func(_, w int) (int64, error) {
				return int64(len(body)), doPut(c, fmt.Sprintf("%s/AUTH_b/c/o%d", sv.url, w), body)
			})
			if err != nil {
				t.Fatalf("%s PUT: %v", sv.name, err)
			}
			fmt.Fprintf(&report, "%-28s %-6s %-8s %s\n", sv.name, "PUT", sizeName(size), res)
			res, err = runLoad(total, maxDur, func(_, w int) (int64, error) {
				return doGet(c, fmt.Sprintf("%s/AUTH_b/c/o%d", sv.url, w))
			})
			if err != nil {
				t.Fatalf("%s GET: %v", sv.name, err)
			}
			fmt.Fprintf(&report, "%-28s %-6s %-8s %s\n", sv.name, "GET", sizeName(size), res)
		}
	}
	fmt.Fprintf(&report, "peak RSS: arca (this test process, both arca servers) %s; python workers:", vmHWM(os.Getpid()))
	for _, p := range pyPIDs() {
		fmt.Fprintf(&report, " %s", vmHWM(p))
	}
	t.Log(report.String())
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
