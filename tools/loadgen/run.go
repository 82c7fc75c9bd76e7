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

	"opendev.org/x/arca/internal/rawhttp"
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
	var sent atomic.Uint64
	hists := make([]Histogram, concurrency)
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for worker := range concurrency {
		wg.Go(func() {
			h := &hists[worker]
			fail := func(msg string) {
				mu.Lock()
				res.Errors++
				if len(res.ErrorSamples) < 5 {
					res.ErrorSamples = append(res.ErrorSamples, msg)
				}
				mu.Unlock()
			}
			// Plain-http targets are driven by rawhttp: the load
			// generator's CPU per request is taken from the servers'.
			var raw *rawhttp.Conn
			defer func() {
				if raw != nil {
					raw.Close()
				}
			}()
			for i := uint64(0); ; i++ {
				if requests > 0 {
					if sent.Add(1) > requests {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if ctx.Err() != nil {
					return
				}
				req, err := w.Build(ctx, worker, i)
				if err != nil {
					fail(err.Error())
					return
				}
				if req.URL.Scheme == "http" {
					if raw == nil || raw.Host() != req.URL.Host {
						if raw != nil {
							raw.Close()
						}
						raw = rawhttp.New(req.URL.Host, rawhttp.HostPort(req.URL.Host), c.Timeout)
					}
					t0 := time.Now()
					status, body, err := raw.Do(req)
					h.Record(time.Since(t0))
					switch {
					case err != nil:
						fail(fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
					case status/100 != 2:
						fail(fmt.Sprintf("%s %s: %d %s: %.200s", req.Method, req.URL.Path, status, http.StatusText(status), body))
					case w.Keep != nil:
						w.Keep(body)
					}
					continue
				}
				t0 := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					h.Record(time.Since(t0))
					fail(err.Error())
					continue
				}
				ok := resp.StatusCode/100 == 2
				var body []byte
				if !ok || w.Keep != nil {
					body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				} else {
					_, err = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
				h.Record(time.Since(t0))
				switch {
				case err != nil:
					fail(fmt.Sprintf("%s %s: reading body: %v", req.Method, req.URL.Path, err))
				case !ok:
					fail(fmt.Sprintf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body))
				case w.Keep != nil:
					w.Keep(body)
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for i := range hists {
		res.Hist.Merge(&hists[i])
	}
	return res
}
