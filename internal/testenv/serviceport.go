package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// servicePorts are the ports ServicePort handed out in this process, so
// that two calls never give the same one before either is bound.
var servicePorts struct {
	sync.Mutex
	given map[int]bool
}

// ServicePort returns a loopback TCP port base for a service the test
// starts later, possibly minutes later (a DevStack phase): base+offset is
// free on 127.0.0.1 and on ::1 (where the host has it) for each offset (0
// when none is given). FreePort's port comes from the kernel's ephemeral
// range, from which every outgoing connection of every test running
// meanwhile takes its local port; a port held back that long was seen
// taken when the service came to bind it. ServicePort picks below that
// range (between 20000 and its start), where only listeners go.
func ServicePort(t testing.TB, offsets ...int) int {
	t.Helper()
	if len(offsets) == 0 {
		offsets = []int{0}
	}
	span := 0
	for _, o := range offsets {
		span = max(span, o)
	}
	lo, hi := 20000, ephemeralStart()-1
	if hi-span-lo < 1000 {
		lo, hi = 10000, 32767 // an unusual ephemeral range: no room below it
	}
	servicePorts.Lock()
	defer servicePorts.Unlock()
	if servicePorts.given == nil {
		servicePorts.given = map[int]bool{}
	}
	for range 500 {
		base := lo + rand.IntN(hi-span-lo+1)
		if portsFree(base, offsets) {
			for _, o := range offsets {
				servicePorts.given[base+o] = true
			}
			return base
		}
	}
	t.Fatalf("no free loopback port base in %d-%d for offsets %v", lo, hi, offsets)
	return 0
}

// portsFree reports whether base+offset is free on both loopbacks for
// every offset, and was not handed out already.
func portsFree(base int, offsets []int) bool {
	for _, o := range offsets {
		p := base + o
		if servicePorts.given[p] {
			return false
		}
		for _, host := range []string{"127.0.0.1", "::1"} {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				if host == "::1" && !hasIPv6Loopback() {
					continue
				}
				return false
			}
			ln.Close()
		}
	}
	return true
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default 32768 where it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 1024 {
		return 32768
	}
	return n
}

var ipv6Loopback = sync.OnceValue(func() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
})

// hasIPv6Loopback reports whether the host can listen on ::1.
func hasIPv6Loopback() bool { return ipv6Loopback() }
