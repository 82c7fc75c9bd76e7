package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/tools/internal/rawhttp"
)

// The object-server report's load: workers, each with one keep-alive
// connection per server, sending PUTs and GETs of one object each.

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

// runLoad runs op with concurrency workers until total requests or the
// time is up, measuring the CPU of the processes in group and of this
// process around it.
func runLoad(group, concurrency, total int, maxDur time.Duration, op func(i, worker int) (int64, error)) (loadResult, error) {
	var n, bytesDone atomic.Int64
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
	for w := range concurrency {
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

// objectBody is n bytes of noise (1 MiB of it, repeated).
func objectBody(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b[:min(n, 1<<20)])
	for i := 1 << 20; i < n; i += 1 << 20 {
		copy(b[i:], b[:1<<20])
	}
	return b
}

var tsCounter atomic.Int64

// nextTS is a Swift timestamp for a PUT, never the same one twice.
func nextTS() string {
	base := time.Now().UnixNano() / 10000
	n := tsCounter.Add(1)
	return diskfile.Timestamp{Raw: base + n}.Internal()
}

// doPut and doGet are one request on net/http: the warm-up, and objects
// larger than rawhttp keeps in memory.
func doPut(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Timestamp", nextTS())
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(body))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d", url, resp.StatusCode)
	}
	return nil
}

func doGet(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return n, err
}

// rawWorkers are the report's raw keep-alive connections to one server,
// one per worker, and each worker's PUT headers.
type rawWorkers struct {
	conns []*rawhttp.Conn
	hdrs  []http.Header
}

func newRawWorkers(base string, concurrency int) *rawWorkers {
	host := strings.TrimPrefix(base, "http://")
	r := &rawWorkers{}
	for range concurrency {
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
