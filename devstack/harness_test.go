package devstack_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPhaseTimeoutEndsItsChildren: a phase that outlives its timeout ends
// with its children, here a go command that hangs holding the phase's
// output. Before bounded, the test waited for the child (400 s here; a
// go build on a loaded machine, half an hour) and go test's timeout then
// skipped every cleanup of the real-stack test.
func TestPhaseTimeoutEndsItsChildren(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "go-started")
	goCmd := filepath.Join(dir, "bin", "go")
	writeExec(t, goCmd, "#!/bin/sh\ntouch "+marker+"\nexec sleep 400\n")
	p := &plugin{t: t, repo: repoRoot(t), dir: dir, timeout: 30 * time.Second}
	for k, v := range map[string]string{
		"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "ARCA_BIN_DIR": filepath.Join(dir, "arca-bin"),
		"ENABLED_SERVICES": "key,mysql", "DISABLED_SERVICES": "", "ARCA_BUILD": "True", "ARCA_GO": goCmd,
	} {
		p.set(k, v)
	}
	start := time.Now()
	out, err := p.run("stack", "install")
	took := time.Since(start)
	if _, serr := os.Stat(marker); serr != nil {
		t.Fatalf("the phase did not reach its go command within %s: %v\n%s", p.timeout, serr, out)
	}
	if err == nil {
		t.Errorf("stack install with a hanging go succeeded:\n%s", out)
	}
	// The timeout, bounded's 10 s WaitDelay, and room for a loaded machine.
	if took > p.timeout+60*time.Second {
		t.Errorf("stack install returned after %s: the hanging child kept the test waiting", took.Round(time.Second))
	}
}
