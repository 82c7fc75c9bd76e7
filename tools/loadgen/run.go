package main

import (
	"context"
	"fmt"
	"io"
	"math"
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
	// Lag is, in an open loop, how late each request left after its
	// scheduled start: the load generator's own wait for a CPU or its
	// timer, or its connection still busy with the worker's previous
	// request (one that took longer than Concurrency/Rate). Where it is
	// near Hist, the latency was not spent in the server.
	Lag Histogram
	// Slow counts the open loop's requests that took at least
	// Pace.SlowAfter; SlowLate those of them that left at least half
	// their latency late (Lag): most of their time was not the server's.
	Slow, SlowLate uint64
	Errors         uint64
	ErrorSamples   []string
	// Missed counts the requests an open-loop phase scheduled and never
	// sent: the target fell so far behind that their slots were still
	// waiting at the end of the phase.
	Missed  uint64
	Elapsed time.Duration
	Skipped string
	Load    float64           // highest 1-minute load average after a slice
	CPU     CPUSample         // CPU ticks spent during the measured slices
	SQL     map[string]uint64 // SQL server counters' increase (-mysql)
}

// add merges the slice o into r.
func (r *Result) add(o *Result) {
	r.Hist.Merge(&o.Hist)
	r.Lag.Merge(&o.Lag)
	r.Slow += o.Slow
	r.SlowLate += o.SlowLate
	r.Errors += o.Errors
	r.Missed += o.Missed
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

// Pace is how a phase sends its requests.
type Pace struct {
	// Concurrency is the number of workers, each on its own keep-alive
	// connection.
	Concurrency int
	// Rate, when above 0, makes the phase open-loop: requests start on a
	// fixed schedule of Rate per second in all, each worker taking every
	// Concurrency-th slot (as wrk2 does), and a request's latency is
	// measured from its scheduled start, not from when a worker got to it.
	// A server that stalls is charged for every request that should have
	// started during the stall (no coordinated omission). At 0 the phase
	// is closed-loop: each worker sends its next request when the last
	// one is answered.
	Rate float64
	// SlowAfter, above 0, counts the open loop's requests that took at
	// least this long from their scheduled start (Result.Slow), and Slow,
	// when not nil, is given each of them (-slow-log).
	Slow      func(SlowRequest)
	SlowAfter time.Duration
}

// SlowRequest is one request of an open loop that took at least
// Pace.SlowAfter: when it was due, how late the load generator sent it
// and how long it took from when it was due.
type SlowRequest struct {
	Due          time.Time
	Lag, Latency time.Duration
}

// slot is the scheduled start of the k-th request of worker id.
func (p Pace) slot(start time.Time, id int, k uint64) time.Time {
	n := float64(k)*float64(p.Concurrency) + float64(id)
	return start.Add(time.Duration(n / p.Rate * float64(time.Second)))
}

// Phase runs w at pace p until duration has passed or, when requests > 0,
// until that many requests were sent.
func Phase(ctx context.Context, c *http.Client, w *Workload, p Pace, duration time.Duration, requests uint64) *Result {
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
	hists := make([]Histogram, p.Concurrency)
	lags := make([]Histogram, p.Concurrency)
	workers := make([]phaseWorker, p.Concurrency)
	start := time.Now()
	deadline := start.Add(duration)
	// more reports whether a request due at due is to be sent. An open
	// loop stops at the deadline even with slots left over (Missed): a
	// target that cannot keep the rate would otherwise hold the run for as
	// long as it takes to work through its backlog.
	more := func(due time.Time) bool {
		if requests > 0 {
			return sent.Add(1) <= requests
		}
		if p.Rate > 0 && !time.Now().Before(deadline) {
			return false
		}
		return due.Before(deadline)
	}
	var wg sync.WaitGroup
	for worker := range p.Concurrency {
		wg.Go(func() {
			pw := &workers[worker]
			*pw = phaseWorker{c: c, w: w, id: worker, h: &hists[worker], lag: &lags[worker], fail: fail}
			defer pw.close()
			pw.loop(ctx, p, start, more)
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for i := range hists {
		res.Hist.Merge(&hists[i])
		res.Lag.Merge(&lags[i])
		res.Slow += workers[i].slow
		res.SlowLate += workers[i].slowLate
	}
	if p.Rate > 0 && requests == 0 {
		scheduled := uint64(math.Ceil(duration.Seconds() * p.Rate))
		res.Missed = scheduled - min(scheduled, res.Hist.Count())
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
	lag  *Histogram // open loop: sent this late after the slot
	raw  *rawhttp.Conn
	fail func(msg string)
	// open loop: requests that took at least Pace.SlowAfter, and those
	// of them sent at least half their latency late
	slow, slowLate uint64
}

// loop sends requests while more says so and ctx is live: at once one
// after the other (closed loop), or each at its slot (open loop).
func (pw *phaseWorker) loop(ctx context.Context, p Pace, start time.Time, more func(due time.Time) bool) {
	for i := uint64(0); ; i++ {
		due := time.Now()
		if p.Rate > 0 {
			due = p.slot(start, pw.id, i)
		}
		if !more(due) || ctx.Err() != nil {
			return
		}
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		req, err := pw.w.Build(ctx, pw.id, i)
		if err != nil {
			pw.fail(err.Error())
			return
		}
		var lag time.Duration
		if p.Rate > 0 {
			lag = time.Since(due)
			pw.lag.Record(lag)
		}
		// Plain-http targets are driven by rawhttp: the load generator's
		// CPU per request is taken from the servers'.
		var took time.Duration
		if req.URL.Scheme == "http" {
			took = pw.doRaw(req, due)
		} else {
			took = pw.doHTTP(req, due)
		}
		if p.Rate > 0 && p.SlowAfter > 0 && took >= p.SlowAfter {
			pw.slow++
			if 2*lag >= took {
				pw.slowLate++
			}
			if p.Slow != nil {
				p.Slow(SlowRequest{Due: due, Lag: lag, Latency: took})
			}
		}
	}
}

func (pw *phaseWorker) close() {
	if pw.raw != nil {
		pw.raw.Close()
	}
}

// doRaw sends req on the worker's rawhttp connection, opened (again) when
// the host changes, and records and returns its latency from t0.
func (pw *phaseWorker) doRaw(req *http.Request, t0 time.Time) time.Duration {
	if pw.raw == nil || pw.raw.Host() != req.URL.Host {
		pw.close()
		pw.raw = rawhttp.New(req.URL.Host, rawhttp.HostPort(req.URL.Host), pw.c.Timeout)
	}
	status, body, err := pw.raw.Do(req)
	took := time.Since(t0)
	pw.h.Record(took)
	switch {
	case err != nil:
		pw.fail(fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
	case status/100 != 2:
		pw.fail(fmt.Sprintf("%s %s: %d %s: %.200s", req.Method, req.URL.Path, status, http.StatusText(status), body))
	case pw.w.Keep != nil:
		pw.w.Keep(body)
	}
	return took
}

// doHTTP sends req with net/http and records and returns its latency from
// t0; the body is read only when it is kept or tells why the request failed.
func (pw *phaseWorker) doHTTP(req *http.Request, t0 time.Time) time.Duration {
	resp, err := pw.c.Do(req)
	if err != nil {
		took := time.Since(t0)
		pw.h.Record(took)
		pw.fail(err.Error())
		return took
	}
	ok := resp.StatusCode/100 == 2
	var body []byte
	if !ok || pw.w.Keep != nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	took := time.Since(t0)
	pw.h.Record(took)
	switch {
	case err != nil:
		pw.fail(fmt.Sprintf("%s %s: reading body: %v", req.Method, req.URL.Path, err))
	case !ok:
		pw.fail(fmt.Sprintf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body))
	case pw.w.Keep != nil:
		pw.w.Keep(body)
	}
	return took
}
