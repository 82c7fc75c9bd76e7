package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
)

// StackMissing is the one switch for "the real stack must be there": every
// test that finds a part of the stack missing (a service, an environment
// variable, a tool that tools/stack.sh install provides) calls it, saying
// why. The test fails when ARCA_REQUIRE_STACK=1 (make test, CI: the stack is
// supposed to be up, so a missing part is a defect) and is skipped
// otherwise, so that a plain go test on a bare machine still runs the rest.
func StackMissing(t testing.TB, why string) {
	t.Helper()
	if stackRequired() {
		t.Fatalf("real stack required (ARCA_REQUIRE_STACK=1) but %s; run tools/stack.sh up", why)
	}
	t.Skipf("skipping: %s; run tools/stack.sh up and eval \"$(tools/stack.sh env)\" (ARCA_REQUIRE_STACK=1 makes this a failure)", why)
}

// stackRequired reports whether ARCA_REQUIRE_STACK=1: whether a missing
// part of the stack fails the test rather than skipping it.
func stackRequired() bool { return os.Getenv("ARCA_REQUIRE_STACK") == "1" }

// SwiftDir is the stack's Swift configuration folder (rings and
// *-server.conf), ARCA_TEST_SWIFT_DIR; StackMissing when it is not set.
func SwiftDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ARCA_TEST_SWIFT_DIR")
	if dir == "" {
		StackMissing(t, "ARCA_TEST_SWIFT_DIR is not set")
	}
	return dir
}

// RequireTools calls StackMissing unless every tool is found in PATH (or,
// given as a path, exists): tools/stack.sh install provides them.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			StackMissing(t, tool+" is not installed")
		}
	}
}

// RandomHex is n random bytes in hex: a tag that keeps the names of one
// test's regions, users, databases and containers apart from another's.
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
