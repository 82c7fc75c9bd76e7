package testenv

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

func TestProcCPUAndSwitches(t *testing.T) {
	pid := os.Getpid()
	cpu0, sw0 := ProcCPU(pid), ProcSwitches(pid)
	// Burn CPU on this thread, then sleep so that it parks at least once.
	sum := sha256.Sum256(nil)
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
		sum = sha256.Sum256(sum[:])
	}
	time.Sleep(5 * time.Millisecond)
	if got := ProcCPU(pid) - cpu0; got < 10*time.Millisecond {
		t.Errorf("ProcCPU grew by %v over 30 ms of hashing, want at least 10 ms", got)
	}
	if got := ProcSwitches(pid) - sw0; got < 1 {
		t.Errorf("ProcSwitches grew by %d across a sleep, want at least 1", got)
	}
	// A process that does not exist has used nothing.
	if cpu, sw := ProcCPU(1<<30), ProcSwitches(1<<30); cpu != 0 || sw != 0 {
		t.Errorf("absent process: ProcCPU %v, ProcSwitches %d, want 0 and 0", cpu, sw)
	}
}
