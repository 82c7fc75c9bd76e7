package main

import (
	"os"
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
		{CPUSample{"arca": 100, runqPrefix + "arca": 3_000_000, runqPrefix + "mariadbd": 1_000_000, runqPrefix + cpuSelf: 500_000}, 1000, "arca 3µs, mariadbd 1µs, loadgen 0µs"},
		{CPUSample{"arca": 100, runqPrefix + "mariadbd": 20_000_000}, 100, "mariadbd 200µs"},
		{CPUSample{"arca": 100}, 100, ""},
		{CPUSample{runqPrefix + "arca": 1}, 0, ""},
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
	if _, ok := runqWait(os.Getpid()); !ok {
		t.Error("no run-queue wait read for this process")
	}
	if _, ok := runqWait(1 << 30); ok {
		t.Error("run-queue wait read for a process that does not exist")
	}
	if _, ok := SampleCPU(nil)[runqPrefix+cpuSelf]; !ok {
		t.Error("SampleCPU has no run-queue wait of the load generator")
	}
}
