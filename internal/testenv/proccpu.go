package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcCPU is the CPU time the process pid (all its threads) has used so
// far, from the scheduler's nanosecond counters: for benchmarks that
// report a server's CPU per request apart from the client's.
func ProcCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, f := range tasks {
		b, err := os.ReadFile(f) //nolint:gosec // G304: a /proc file of a process the benchmark started
		if err != nil {
			continue
		}
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				sum += n
			}
		}
	}
	return time.Duration(sum)
}

// ProcSwitches is the context switches (voluntary and involuntary) of
// every thread of the process pid so far: a goroutine that parks on a
// socket or a thread woken for a blocking system call shows here.
func ProcSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var sum int64
	for _, f := range tasks {
		b, err := os.ReadFile(f) //nolint:gosec // G304: a /proc file of a process the benchmark started
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					sum += n
				}
			}
		}
	}
	return sum
}
