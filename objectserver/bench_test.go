package objectserver

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/ringhash"
	"opendev.org/x/arca/objectserver/sysmeta"
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

var benchSizes = []int{4 << 10, 1 << 20}

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
	req.Header.Set("X-Object-Meta-Color", "blue") // user metadata to open on HEAD and GET
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

// doHead answers an error unless HEAD is 200.
func doHead(c *http.Client, url string) error {
	resp, err := c.Head(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkObjectServer measures PUT, HEAD and GET through loopback HTTP, with and
// without encryption (b.SetBytes gives MB/s).
func BenchmarkObjectServer(b *testing.B) {
	for _, enc := range []bool{true, false} {
		url, done := benchServer(b, enc)
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		for _, size := range benchSizes {
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
			b.Run("HEAD/"+name, func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := doHead(c, url+"/AUTH_b/c/get"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
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

// toLegacyFormat rewrites the metadata of an object's .data under devices
// as a release before metadata encryption wrote it: the plaintext ETag in
// sysmeta and the user metadata in the clear, nothing sealed. The server
// serves it without opening anything but the data key: the baseline of
// BenchmarkMetadataDecryption.
func toLegacyFormat(b testing.TB, keys *memResolver, devices, name, etag string) {
	b.Helper()
	found := false
	err := filepath.WalkDir(devices, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".data") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		raw, err := diskfile.ReadRawMetadata(f)
		if err != nil || raw.Values["name"] != name {
			return err
		}
		um, _, err := sysmeta.OpenUserMeta(raw.Values, name, sysmeta.DataSet, func(id string) (*objcrypt.MetaKey, error) {
			k, err := keys.KeyMaterial(context.Background(), "b", id)
			if err != nil {
				return nil, err
			}
			return objcrypt.NewMetaKey(objcrypt.ProjectKey{ID: id, Key: k})
		})
		if err != nil {
			return err
		}
		want := maps.Clone(raw.Values)
		for _, k := range []string{sysmeta.Etag, sysmeta.EtagMac, sysmeta.UserMeta, sysmeta.MetaKeyID} {
			delete(want, sysmeta.Prefix+k)
		}
		maps.Copy(want, um)
		want[sysmeta.Prefix+sysmeta.PlaintextEtag] = etag
		np, err := pickle.Encode(want)
		if err != nil {
			return err
		}
		_, err = diskfile.ReplacePickle(f, raw, np)
		found = true
		return err
	})
	if err != nil || !found {
		b.Fatalf("rewriting %s in the old format: %v (found %v)", name, err, found)
	}
}

// BenchmarkMetadataDecryption: HEAD and 4 KiB GET of an encrypted object
// whose ETag and user metadata are sealed (opened on every request), beside
// the same object in the format before metadata encryption (nothing to
// open but the data key), on one server running in a process of its own
// (TestBenchServerProcess), so that its CPU per request (server-cpu-µs/op)
// is apart from the client's. Goal (issue 16): sealed loses at most 10 % of
// req/s. tools/bench-objectserver.sh runs it in alternating rounds.
func BenchmarkMetadataDecryption(b *testing.B) {
	devices := b.TempDir()
	url, pid := benchServerProcess(b, devices)
	keys := newMemResolver() // the child's keys: memResolver derives them from the id
	if _, err := keys.ActiveKey(context.Background(), "b"); err != nil {
		b.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := benchBody(4 << 10)
	sum := md5.Sum(body)
	for _, o := range []string{"sealed", "legacy"} {
		if err := doPut(c, url+"/AUTH_b/c/"+o, body); err != nil {
			b.Fatal(err)
		}
	}
	toLegacyFormat(b, keys, devices, "/AUTH_b/c/legacy", hex.EncodeToString(sum[:]))
	for _, verb := range []string{"HEAD", "GET"} {
		for _, o := range []string{"sealed", "legacy"} {
			b.Run(verb+"/4KiB/"+o, func(b *testing.B) {
				cpu0, start := testenv.ProcCPU(pid), time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var err error
						if verb == "HEAD" {
							err = doHead(c, url+"/AUTH_b/c/"+o)
						} else {
							_, err = doGet(c, url+"/AUTH_b/c/"+o)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				el, cpu := time.Since(start), testenv.ProcCPU(pid)-cpu0
				b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "server-cpu-µs/op")
			})
		}
	}
}

// benchServerProcess starts TestBenchServerProcess on devices and returns
// its URL (device sda, partition 1) and pid; it stops at the benchmark's end.
func benchServerProcess(b *testing.B, devices string) (string, int) {
	b.Helper()
	c := testenv.StartChild(b, "TestBenchServerProcess", "server-addr", "ARCA_BENCH_OS_CHILD="+devices)
	return "http://" + c.Addr + "/sda/1", c.Cmd.Process.Pid
}

// TestBenchServerProcess is the object server process of
// BenchmarkMetadataDecryption (it skips unless the benchmark started it):
// an encrypting server on $ARCA_BENCH_OS_CHILD with memResolver's keys, on
// a free port it prints ("server-addr HOST:PORT"); it exits at the end of
// its stdin.
func TestBenchServerProcess(t *testing.T) {
	devices := os.Getenv("ARCA_BENCH_OS_CHILD")
	if devices == "" {
		t.Skip("the object server process of BenchmarkMetadataDecryption")
	}
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	srv, err := New(Config{Devices: devices, Encrypt: true, Algorithm: objcrypt.AES128CBC, StoredEtag: true,
		ReclaimAge: time.Hour}, swift, newMemResolver(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: time.Minute}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	fmt.Printf("server-addr %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// discardResponse is an http.ResponseWriter that keeps only the status:
// BenchmarkHandler4KiB counts the handler's allocations, not a recorder's.
type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(code int)        { d.status = code }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHandler4KiB: an encrypted 4 KiB PUT and GET through the
// server's handler alone (no HTTP connection), for its allocations per
// request (allocs/op) apart from net/http's and a client's.
func BenchmarkHandler4KiB(b *testing.B) {
	for _, enc := range []bool{true, false} {
		name := "encrypted"
		if !enc {
			name = "plaintext"
		}
		b.Run(name, func(b *testing.B) { benchHandler4KiB(b, enc) })
	}
}

func benchHandler4KiB(b *testing.B, encrypt bool) {
	devices := b.TempDir()
	if err := os.MkdirAll(filepath.Join(devices, "sda"), 0o755); err != nil {
		b.Fatal(err)
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p", Suffix: "s"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	srv, err := New(Config{Devices: devices, Encrypt: encrypt, Algorithm: objcrypt.AES128CBC, StoredEtag: true,
		ReclaimAge: time.Hour}, swift, newMemResolver(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	srv.disk.NoFsync = true // the handler's own work, not the disk's
	body := benchBody(4 << 10)
	const path = "/sda/1/AUTH_b/c/o"
	put := func() int {
		req := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
		req.Header.Set("X-Timestamp", nextTS())
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Object-Meta-Color", "blue")
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		req.RemoteAddr = "127.0.0.1:40000"
		w := &discardResponse{h: http.Header{}}
		srv.ServeHTTP(w, req)
		return w.status
	}
	if code := put(); code != http.StatusCreated {
		b.Fatalf("PUT %d", code)
	}
	b.Run("PUT", func(b *testing.B) {
		b.ReportAllocs()
		c0 := processCPU()
		for b.Loop() {
			if code := put(); code != http.StatusCreated {
				b.Fatalf("PUT %d", code)
			}
		}
		b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/1e3, "cpu-µs/op")
	})
	if code := put(); code != http.StatusCreated {
		b.Fatalf("PUT %d", code)
	}
	b.Run("GET", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		w := &discardResponse{h: http.Header{}}
		c0 := processCPU()
		for b.Loop() {
			clear(w.h)
			srv.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("GET %d", w.status)
			}
		}
		b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/1e3, "cpu-µs/op")
	})
}

// processCPU is this process's user and system CPU time so far, in ns
// (BenchmarkHandler4KiB's cpu-µs/op: its ns/op is mostly waiting on the
// file system, its CPU is what the handler costs).
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
