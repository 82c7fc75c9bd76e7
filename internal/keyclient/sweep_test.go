package keyclient

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
)

// TestClientSweepsOnlyKeyBytes: an expirable.LRU runs a goroutine that
// wakes every TTL/100 for as long as the process lives, idle or not. For
// the 2 s ErrorTTL that was 50 wake-ups a second in every object server
// and filter (about 13 ms of CPU a second on an idle arca-swift-filter,
// which a benchmark at tens of requests a second reads as hundreds of µs
// per request). Active ids and failures now expire when read; only the two
// caches of key bytes sweep, so that expired key bytes leave memory.
func TestClientSweepsOnlyKeyBytes(t *testing.T) {
	before := sweeps(t)
	if _, err := New(Options{NoAuth: true, Endpoint: "http://127.0.0.1:9/v1/", ErrorTTL: DefaultErrorTTL}); err != nil {
		t.Fatal(err)
	}
	if got := sweeps(t) - before; got != 2 {
		t.Fatalf("a new client started %d cache sweeps, want 2 (key bytes and listing keys)", got)
	}
}

// sweeps counts the goroutines of expirable LRUs in the process; they
// never end, so the count only grows.
func sweeps(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(buf.String(), "created by github.com/hashicorp/golang-lru/v2/expirable.NewLRU")
}
