// ReleaseBinaries builds the commands of an earlier commit of this
// repository, for tests that run an older release beside this one (the
// rolling upgrade): the commit's tree is exported with git archive into a
// temporary folder and built there with the same Go toolchain and module
// cache, so that nothing but the source differs.

package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	releaseMu   sync.Mutex
	releaseBins = map[string]string{}
)

// ReleaseBinaries returns the folder of the commands (cmd/...) built from
// commit, building them once per test binary. A checkout without the
// commit's history (a release tarball, a shallow clone) cannot run such a
// test: it goes through StackMissing, skipped unless ARCA_REQUIRE_STACK=1.
func ReleaseBinaries(t testing.TB, commit string) string {
	t.Helper()
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if dir, ok := releaseBins[commit]; ok {
		return dir
	}
	root := repoRoot()
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		StackMissing(t, fmt.Sprintf("commit %s is not in the history of %s: %v %s", commit, root, err, out))
	}
	// Not t.TempDir: the binaries serve every test of the binary that asks.
	dir, err := os.MkdirTemp("", "arca-release-")
	if err != nil {
		t.Fatal(err)
	}
	src, bin := filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	tarball := filepath.Join(dir, "src.tar")
	steps := []*exec.Cmd{
		exec.Command("git", "-C", root, "archive", "--format=tar", "-o", tarball, commit),
		exec.Command("mkdir", "-p", src, bin),
		exec.Command("tar", "-xf", tarball, "-C", src),
		exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/..."),
	}
	steps[3].Dir = src
	for _, cmd := range steps {
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building release %s: %s: %v\n%s", commit, cmd.String(), err, out)
		}
	}
	// Only the binaries are kept.
	if err := os.RemoveAll(src); err != nil {
		t.Logf("removing %s: %v", src, err)
	}
	if err := os.Remove(tarball); err != nil {
		t.Logf("removing %s: %v", tarball, err)
	}
	releaseBins[commit] = bin
	return bin
}
