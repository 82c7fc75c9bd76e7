package testenv

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Child is a test of this test binary run as a process of its own, so that
// a benchmark can measure that process's CPU apart from its own: the child
// serves, prints "<ready> HOST:PORT" on its stdout and exits at the end of
// its stdin.
type Child struct {
	Cmd *exec.Cmd
	// Addr is the HOST:PORT the child printed.
	Addr string
	// In is the child's stdin and Lines its stdout after the address line,
	// for a benchmark that talks with it further.
	In    io.WriteCloser
	Lines *bufio.Scanner
}

// StartChild runs the test named test of this binary (it should skip
// unless one of env, NAME=value, is set) with env added to this process's
// environment, and waits for its line "<ready> HOST:PORT". When tb ends,
// the child's stdin closes; a child still there 10 seconds later is killed.
func StartChild(tb testing.TB, test, ready string, env ...string) *Child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close() // the child exits at EOF
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := bufio.NewScanner(out)
	var addr string
	for addr == "" && lines.Scan() {
		addr, _ = strings.CutPrefix(lines.Text(), ready+" ")
	}
	if addr == "" {
		tb.Fatalf("%s did not start: %v", test, lines.Err())
	}
	return &Child{Cmd: cmd, Addr: addr, In: in, Lines: lines}
}
