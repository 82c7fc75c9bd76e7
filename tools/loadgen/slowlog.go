package main

import (
	"bufio"
	"fmt"
	"os"
	"sync"
)

// slowLog is -slow-log: the open loop's slow requests, one line each, with
// the wall-clock time each was due so that they can be lined up with a
// server's garbage collections (GODEBUG=gctrace=1), MariaDB's log or
// /proc samples taken beside the run.
type slowLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func openSlowLog(path string) (*slowLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644) //nolint:gosec // a path the operator names
	if err != nil {
		return nil, fmt.Errorf("-slow-log: %w", err)
	}
	return &slowLog{f: f, w: bufio.NewWriter(f)}, nil
}

// recorder returns the Pace.Slow of one measured phase.
func (l *slowLog) recorder(scenario, target string) func(SlowRequest) {
	return func(r SlowRequest) {
		l.mu.Lock()
		defer l.mu.Unlock()
		// due as Unix seconds with microseconds: what date +%s.%6N and
		// bash's $EPOCHREALTIME print
		fmt.Fprintf(l.w, "%d.%06d %s %s lag_us=%d latency_us=%d\n", r.Due.Unix(), r.Due.Nanosecond()/1000,
			scenario, target, r.Lag.Microseconds(), r.Latency.Microseconds())
	}
}

// Close flushes and closes the log; a nil log is a no-op.
func (l *slowLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		_ = l.f.Close()
		return fmt.Errorf("-slow-log: %w", err)
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("-slow-log: %w", err)
	}
	return nil
}
