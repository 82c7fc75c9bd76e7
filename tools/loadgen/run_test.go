package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallingServer answers at once, except request number stallAt, which it
// holds for stall: a server pausing (a GC, a lock, a fsync) once.
func stallingServer(t *testing.T, stallAt int64, stall time.Duration) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == stallAt {
			time.Sleep(stall)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getWorkload(url string) *Workload {
	return &Workload{Build: func(ctx context.Context, _ int, _ uint64) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}}
}

// TestOpenLoopCountsTheStall: one 400 ms stall of a server answered at 200
// req/s on one connection. Open loop, the ~80 requests scheduled during the
// stall all wait for it, and their latencies (from their scheduled starts)
// show it: a p90 of tens of ms. Closed loop, the one worker simply waits,
// and only the one stalled request shows (coordinated omission): this is
// the difference the open-loop mode exists for, and what wrk2 and vegeta
// measure. The bounds are far from the expected values so that a busy
// machine does not decide the outcome.
func TestOpenLoopCountsTheStall(t *testing.T) {
	const stall = 400 * time.Millisecond
	for _, tc := range []struct {
		name     string
		pace     Pace
		wantSlow bool // p90 above 50 ms
	}{
		{"open loop", Pace{Concurrency: 1, Rate: 200}, true},
		{"closed loop", Pace{Concurrency: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := stallingServer(t, 20, stall)
			res := Phase(context.Background(), newClient(1, 10*time.Second), getWorkload(srv.URL), tc.pace, 1500*time.Millisecond, 0)
			if res.Errors > 0 {
				t.Fatalf("errors: %v", res.ErrorSamples)
			}
			p90, worst := res.Hist.Quantile(0.90), res.Hist.Max()
			if worst < stall {
				t.Fatalf("max %v: the stall of %v was not measured", worst, stall)
			}
			if slow := p90 > 50*time.Millisecond; slow != tc.wantSlow {
				t.Errorf("p90 = %v over %d requests (max %v); want above 50ms: %v", p90, res.Hist.Count(), worst, tc.wantSlow)
			}
		})
	}
}

// TestOpenLoopKeepsTheSchedule: an open-loop phase sends what its schedule
// says, not what the server could take: 100 req/s for 1 s on 4 connections
// is about 100 requests, where a closed loop would send thousands.
func TestOpenLoopKeepsTheSchedule(t *testing.T) {
	srv := stallingServer(t, -1, 0)
	res := Phase(context.Background(), newClient(4, 10*time.Second), getWorkload(srv.URL), Pace{Concurrency: 4, Rate: 100}, time.Second, 0)
	if n := res.Hist.Count(); n < 90 || n > 110 || res.Errors > 0 {
		t.Errorf("%d requests, %d errors; want 100 scheduled in 1 s", n, res.Errors)
	}
}

// TestPaceSlots: worker id takes every Concurrency-th slot of the schedule.
func TestPaceSlots(t *testing.T) {
	p := Pace{Concurrency: 4, Rate: 1000}
	start := time.Unix(0, 0)
	for _, tc := range []struct {
		id   int
		k    uint64
		want time.Duration
	}{
		{0, 0, 0}, {1, 0, time.Millisecond}, {3, 0, 3 * time.Millisecond},
		{0, 1, 4 * time.Millisecond}, {2, 10, 42 * time.Millisecond},
	} {
		if got := p.slot(start, tc.id, tc.k).Sub(start); got != tc.want {
			t.Errorf("slot(%d, %d) = %v, want %v", tc.id, tc.k, got, tc.want)
		}
	}
}

// TestOpenLoopStopsAtTheDeadline: a target that cannot keep the schedule
// (here it stalls for longer than the phase) does not hold the run past
// its deadline to work through the backlog; the slots it never got to are
// counted as unsent, which fails the run for an Arca target.
func TestOpenLoopStopsAtTheDeadline(t *testing.T) {
	srv := stallingServer(t, 1, 1500*time.Millisecond)
	start := time.Now()
	res := Phase(context.Background(), newClient(1, 10*time.Second), getWorkload(srv.URL), Pace{Concurrency: 1, Rate: 100}, time.Second, 0)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the phase took %v: it worked through the backlog", took)
	}
	if res.Missed < 50 || res.Hist.Count()+res.Missed != 100 {
		t.Errorf("%d sent, %d unsent; want most of the 100 scheduled unsent", res.Hist.Count(), res.Missed)
	}
}

// TestOpenLoopSendLagAndSlowLog: one 300 ms stall at 100 req/s on one
// connection. The stalled request left on time (little send lag) and is
// slow; the ~30 scheduled during the stall left late, their connection
// busy, and are slow by their lag. Every request has its send lag
// recorded, and only requests at least SlowAfter from their scheduled
// start reach Slow.
func TestOpenLoopSendLagAndSlowLog(t *testing.T) {
	srv := stallingServer(t, 10, 300*time.Millisecond)
	var mu sync.Mutex
	var slow []SlowRequest
	p := Pace{Concurrency: 1, Rate: 100, SlowAfter: 100 * time.Millisecond, Slow: func(r SlowRequest) {
		mu.Lock()
		slow = append(slow, r)
		mu.Unlock()
	}}
	start := time.Now()
	res := Phase(context.Background(), newClient(1, 10*time.Second), getWorkload(srv.URL), p, time.Second, 0)
	if res.Lag.Count() != res.Hist.Count() || res.Hist.Count() == 0 {
		t.Fatalf("%d send lags for %d requests", res.Lag.Count(), res.Hist.Count())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slow) < 10 || len(slow) > 40 {
		t.Fatalf("%d slow requests logged; want the stalled one and those due during its stall", len(slow))
	}
	onTime, late := 0, 0
	for _, r := range slow {
		if r.Latency < p.SlowAfter || r.Due.Before(start) || r.Lag > r.Latency {
			t.Errorf("logged %+v: below SlowAfter, due before the phase, or lag above latency", r)
		}
		if r.Lag < 50*time.Millisecond && r.Latency >= 300*time.Millisecond {
			onTime++
		}
		if r.Lag >= 100*time.Millisecond {
			late++
		}
	}
	if onTime != 1 || late < 5 {
		t.Errorf("%d stalled requests sent on time (want 1), %d sent 100 ms or more late (want most)", onTime, late)
	}
	if worst := res.Lag.Max(); worst < 200*time.Millisecond {
		t.Errorf("largest send lag %v; the requests due during the 300 ms stall left late", worst)
	}
}
