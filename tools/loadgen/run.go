package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"opendev.org/x/arca/tools/internal/rawhttp"
)

// newClient is a keep-alive client with an idle pool large enough that no
// worker ever waits for, or throws away, a connection. Servers that answer
// "Connection: close" (Barbican and Keystone under uwsgi) get a new one
// per request, as any client of theirs would.
func newClient(concurrency int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // never through an HTTP(S)_PROXY from the environment
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Result is one measured phase.
type Result struct {
	Scenario, Target string
	Hist             Histogram
	Errors           uint64
	ErrorSamples     []string
	Elapsed          time.Duration
	Skipped          string
	Load             float64           // highest 1-minute load average after a slice
	CPU              CPUSample         // CPU ticks spent during the measured slices
	SQL              map[string]uint64 // SQL server counters' increase (-mysql)
}

// add merges the slice o into r.
func (r *Result) add(o *Result) {
	r.Hist.Merge(&o.Hist)
	r.Errors += o.Errors
	for _, s := range o.ErrorSamples {
		if len(r.ErrorSamples) < 5 {
			r.ErrorSamples = append(r.ErrorSamples, s)
		}
	}
	r.Elapsed += o.Elapsed
	r.Load = max(r.Load, loadAverage())
	if r.CPU == nil {
		r.CPU = CPUSample{}
	}
	r.CPU.Add(o.CPU)
	if o.SQL != nil {
		if r.SQL == nil {
			r.SQL = map[string]uint64{}
		}
		for k, v := range o.SQL {
			r.SQL[k] += v
		}
	}
}

// RPS is completed requests (errors included) per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Hist.Count()) / r.Elapsed.Seconds()
}

// Phase runs w on concurrency workers until duration has passed or, when
// requests > 0, until that many requests were sent.
func Phase(ctx context.Context, c *http.Client, w *Workload, concurrency int, duration time.Duration, requests uint64) *Result {
	res := &Result{}
	var mu sync.Mutex
	fail := func(msg string) {
		mu.Lock()
		res.Errors++
		if len(res.ErrorSamples) < 5 {
			res.ErrorSamples = append(res.ErrorSamples, msg)
		}
		mu.Unlock()
	}
	var sent atomic.Uint64
	hists := make([]Histogram, concurrency)
	start := time.Now()
	deadline := start.Add(duration)
	more := func() bool {
		if requests > 0 {
			return sent.Add(1) <= requests
		}
		return time.Now().Before(deadline)
	}
	var wg sync.WaitGroup
	for worker := range concurrency {
		wg.Go(func() {
			pw := &phaseWorker{c: c, w: w, id: worker, h: &hists[worker], fail: fail}
			defer pw.close()
			pw.loop(ctx, more)
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for i := range hists {
		res.Hist.Merge(&hists[i])
	}
	return res
}

// phaseWorker is one of Phase's workers: its own histogram and, for
// plain-http targets, its own rawhttp connection; fail counts an error in
// the phase's result.
type phaseWorker struct {
	c    *http.Client
	w    *Workload
	id   int
	h    *Histogram
	raw  *rawhttp.Conn
	fail func(msg string)
}

// loop sends requests while more says so and ctx is live.
func (pw *phaseWorker) loop(ctx context.Context, more func() bool) {
	for i := uint64(0); ; i++ {
		if !more() || ctx.Err() != nil {
			return
		}
		req, err := pw.w.Build(ctx, pw.id, i)
		if err != nil {
			pw.fail(err.Error())
			return
		}
		// Plain-http targets are driven by rawhttp: the load generator's
		// CPU per request is taken from the servers'.
		if req.URL.Scheme == "http" {
			pw.doRaw(req)
		} else {
			pw.doHTTP(req)
		}
	}
}

func (pw *phaseWorker) close() {
	if pw.raw != nil {
		pw.raw.Close()
	}
}

// doRaw sends req on the worker's rawhttp connection, opened (again) when
// the host changes.
func (pw *phaseWorker) doRaw(req *http.Request) {
	if pw.raw == nil || pw.raw.Host() != req.URL.Host {
		pw.close()
		pw.raw = rawhttp.New(req.URL.Host, rawhttp.HostPort(req.URL.Host), pw.c.Timeout)
	}
	t0 := time.Now()
	status, body, err := pw.raw.Do(req)
	pw.h.Record(time.Since(t0))
	switch {
	case err != nil:
		pw.fail(fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
	case status/100 != 2:
		pw.fail(fmt.Sprintf("%s %s: %d %s: %.200s", req.Method, req.URL.Path, status, http.StatusText(status), body))
	case pw.w.Keep != nil:
		pw.w.Keep(body)
	}
}

// doHTTP sends req with net/http; the body is read only when it is kept
// or tells why the request failed.
func (pw *phaseWorker) doHTTP(req *http.Request) {
	t0 := time.Now()
	resp, err := pw.c.Do(req)
	if err != nil {
		pw.h.Record(time.Since(t0))
		pw.fail(err.Error())
		return
	}
	ok := resp.StatusCode/100 == 2
	var body []byte
	if !ok || pw.w.Keep != nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	pw.h.Record(time.Since(t0))
	switch {
	case err != nil:
		pw.fail(fmt.Sprintf("%s %s: reading body: %v", req.Method, req.URL.Path, err))
	case !ok:
		pw.fail(fmt.Sprintf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body))
	case pw.w.Keep != nil:
		pw.w.Keep(body)
	}
}
