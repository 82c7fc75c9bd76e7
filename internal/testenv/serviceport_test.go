package testenv

import (
	"net"
	"strconv"
	"testing"
)

// TestServicePort: every port given is below the ephemeral range, free on
// both loopbacks at each offset, and never given twice in one process.
func TestServicePort(t *testing.T) {
	seen := map[int]bool{}
	start := ephemeralStart()
	for range 50 {
		base := ServicePort(t, 0, 10)
		for _, p := range []int{base, base + 10} {
			if seen[p] {
				t.Fatalf("port %d given twice", p)
			}
			seen[p] = true
			if start > 21000 && p >= start {
				t.Fatalf("port %d is in the ephemeral range (from %d)", p, start)
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d is not free: %v", p, err)
			}
			ln.Close()
		}
	}
	// a port in use is never given: hold one and ask until the range
	// would have had to give it (the picks are random, so check the rule)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := ln.Addr().(*net.TCPAddr).Port
	servicePorts.Lock()
	free := portsFree(held, []int{0})
	servicePorts.Unlock()
	if free {
		t.Fatalf("port %d, held by a listener, counted as free", held)
	}
}
