package testenv

import (
	"bytes"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a daemon has to exit on SIGTERM before SIGKILL.
const stopGrace = 15 * time.Second

// healthTimeout bounds WaitHealthy: a loaded machine starts Python daemons
// slowly.
const healthTimeout = 60 * time.Second

// LogEveryLine is the [DEFAULT] line that makes an Arca daemon write each
// log line at once. The daemons hold info lines in memory for up to
// log_flush_interval (logging.NewBuffered); tests read a running
// daemon's log (to count its decisions, or to make sure no token is in
// it), so every daemon they configure writes each line as it logs it.
// keyservice/app's TestLogLinesWaitAndSurviveShutdown runs the default.
const LogEveryLine = "log_flush_interval = 0\n"

// failureTail is how much of a log a failed test shows.
const failureTail = 4000

// LogBuffer is a process's output. It is safe for concurrent use: the
// process writes it from the os/exec copying goroutines while the test
// reads it. The zero value is ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLog returns a LogBuffer whose last lines are shown under label when
// the test fails. Create it before the process that writes it starts: the
// cleanups run in reverse order, so the log is shown after the process has
// stopped and written its last words.
func NewLog(t testing.TB, label string) *LogBuffer {
	l := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", label, l.Tail(failureTail))
		}
	})
	return l
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail is the last n bytes written so far.
func (l *LogBuffer) Tail(n int) string { return Tail(l.String(), n) }

// Tail is the last n bytes of s: the end of a long log or command output,
// where the error usually is.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Proc is a daemon a test started, in a process group of its own so that
// stopping it stops whatever it forked (Swift's workers) too.
type Proc struct {
	// Name is the program's base name, for messages.
	Name string
	// Log receives the daemon's stdout and stderr.
	Log  *LogBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProc runs the program at path with args, its output going to log (a
// NewLog labelled with the program's name when nil). It is stopped when the
// test ends, unless stopped before.
func StartProc(t testing.TB, log *LogBuffer, path string, args ...string) *Proc {
	t.Helper()
	name := filepath.Base(path)
	if log == nil {
		log = NewLog(t, name)
	}
	p := &Proc{Name: name, Log: log, cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	// One goroutine waits, so that Stop and WaitHealthy can both watch done
	// without racing on cmd.Wait.
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	return p
}

// Pid is the daemon's process id (its process group's too).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the daemon has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the daemon's process group, SIGKILL if it is still
// there after stopGrace, and waits for the daemon to end. Stopping an
// ended daemon does nothing.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// WaitHealthy waits until url answers 200, failing the test with the end
// of the daemon's log if the daemon exits first or a minute passes.
func (p *Proc) WaitHealthy(t testing.TB, url string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(healthTimeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before answering %s:\n%s", p.Name, url, p.Log.Tail(failureTail))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no 200 from %s within %s:\n%s", p.Name, url, healthTimeout, p.Log.Tail(failureTail))
}
