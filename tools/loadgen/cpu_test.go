package main

import (
	"os"
	"strings"
	"testing"
)

// TestRunqPerRequest: run-queue wait (nanoseconds) is reported per request
// for each watched process that has it, then the load generator; CPU ticks
// of the same names are not mistaken for it.
func TestRunqPerRequest(t *testing.T) {
	watches := []Watch{{Name: "arca", PID: 2}, {Name: "mariadbd", PID: 3}}
	for _, tc := range []struct {
		s        CPUSample
		requests uint64
		want     string
	}{
		{CPUSample{"arca": 100, runqPrefix + "arca:10": 2_000_000, runqPrefix + "arca:11": 1_000_000, runqPrefix + "mariadbd:7": 1_000_000, runqPrefix + cpuSelf + ":5": 500_000}, 1000, "arca 3µs, mariadbd 1µs, loadgen 0µs"},
		{CPUSample{"arca": 100, runqPrefix + "mariadbd:7": 20_000_000}, 100, "mariadbd 200µs"},
		{CPUSample{"arca": 100}, 100, ""},
		{CPUSample{runqPrefix + "arca:10": 1}, 0, ""},
	} {
		if got := tc.s.RunqPerRequest(watches, tc.requests); got != tc.want {
			t.Errorf("%v over %d requests: %q, want %q", tc.s, tc.requests, got, tc.want)
		}
	}
}

// TestRunqWaitReadsSchedstat: the load generator's own threads have a
// schedstat line each on Linux; a process that does not exist has none.
func TestRunqWaitReadsSchedstat(t *testing.T) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skip("no /proc/PID/schedstat on this kernel (CONFIG_SCHED_INFO off or not Linux)")
	}
	s := CPUSample{}
	addRunqWait(s, "self", os.Getpid())
	if len(s) == 0 {
		t.Error("no run-queue wait read for this process's threads")
	}
	none := CPUSample{}
	addRunqWait(none, "none", 1<<30)
	if len(none) != 0 {
		t.Errorf("run-queue wait read for a process that does not exist: %v", none)
	}
	if line := SampleCPU(nil).RunqPerRequest(nil, 1); !strings.HasPrefix(line, cpuSelf+" ") {
		t.Errorf("SampleCPU has no run-queue wait of the load generator: %q", line)
	}
}

// TestSubThreads: a thread's run-queue wait counts from 0 when it started
// between the samples, and is left out when it ended; CPU ticks of a name
// missing before are left out as before.
func TestSubThreads(t *testing.T) {
	before := CPUSample{"arca": 10, runqPrefix + "db:1": 100, runqPrefix + "db:2": 50}
	after := CPUSample{"arca": 15, "new": 7, runqPrefix + "db:1": 180, runqPrefix + "db:3": 40}
	d := after.Sub(before)
	want := CPUSample{"arca": 5, runqPrefix + "db:1": 80, runqPrefix + "db:3": 40}
	if len(d) != len(want) {
		t.Fatalf("Sub = %v, want %v", d, want)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("Sub[%q] = %d, want %d", k, d[k], v)
		}
	}
}
