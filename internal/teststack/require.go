package teststack

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
)

// RequireStack reports that the real stack is not there, saying why: the
// test fails when ARCA_REQUIRE_STACK=1, and is skipped otherwise.
func RequireStack(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("ARCA_REQUIRE_STACK") == "1" {
		t.Fatalf("real stack required (ARCA_REQUIRE_STACK=1) but %s", why)
	}
	t.Skipf("skipping: %s; run tools/stack.sh up and eval \"$(tools/stack.sh env)\"", why)
}

// SwiftDir is the stack's Swift configuration folder (rings and
// *-server.conf), ARCA_TEST_SWIFT_DIR; RequireStack when it is not set.
func SwiftDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ARCA_TEST_SWIFT_DIR")
	if dir == "" {
		RequireStack(t, "ARCA_TEST_SWIFT_DIR is not set")
	}
	return dir
}

// RequireTools calls RequireStack unless every tool is found in PATH (or,
// given as a path, exists): tools/stack.sh install provides them.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			RequireStack(t, tool+" is not installed")
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
