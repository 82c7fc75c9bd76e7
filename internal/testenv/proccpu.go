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
	return time.Duration(sumThreads(pid, "schedstat", func(text string) int64 {
		if fields := strings.Fields(text); len(fields) > 0 {
			return parseCount(fields[0])
		}
		return 0
	}))
}

// ProcSwitches is the context switches (voluntary and involuntary) of
// every thread of the process pid so far: a goroutine that parks on a
// socket or a thread woken for a blocking system call shows here.
func ProcSwitches(pid int) int64 {
	return sumThreads(pid, "status", func(text string) int64 {
		var n int64
		for line := range strings.SplitSeq(text, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n += parseCount(strings.TrimSpace(v))
			}
		}
		return n
	})
}

// sumThreads adds up value of the /proc file name of every thread of the
// process pid. A thread that exits between the listing and the read is
// left out: its counts are gone with it, as the benchmarks expect.
func sumThreads(pid int, name string, value func(text string) int64) int64 {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/%s", pid, name))
	var sum int64
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // G304: a /proc file of a process the benchmark started
		if err == nil {
			sum += value(string(b))
		}
	}
	return sum
}

// parseCount reads a /proc counter; anything else counts as zero.
func parseCount(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
