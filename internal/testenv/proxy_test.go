package testenv

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// TestTCPProxyCutHoldsPort checks what fault tests rely on: a cut proxy
// refuses connections, keeps its port out of other hands, and forwards
// again on the same port after Restore.
func TestTCPProxyCutHoldsPort(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()
	proxy := StartTCPProxy(t, backend.Addr().String())

	echo := func() (string, error) {
		c, err := net.Dial("tcp", proxy.Addr)
		if err != nil {
			return "", err
		}
		defer func() { _ = c.Close() }()
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	// Cut before any connection went through, so that no connection in
	// TIME_WAIT holds the port and only the proxy can be keeping it.
	proxy.Cut()
	if err := bindWithoutReuse(proxy.Addr); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("binding the cut proxy's port: %v, want address in use (the port must stay held)", err)
	}
	if _, err := echo(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while cut: %v, want connection refused", err)
	}

	proxy.Restore(t)
	if got, err := echo(); err != nil || got != "echo hello\n" {
		t.Fatalf("after restore: %q, %v", got, err)
	}
	proxy.Cut()
	if _, err := echo(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("cut again: %v, want connection refused", err)
	}
	proxy.Restore(t)
	if got, err := echo(); err != nil || got != "echo hello\n" {
		t.Fatalf("restored again: %q, %v", got, err)
	}
}

// bindWithoutReuse binds (and releases) a plain TCP socket to addr, as a
// program that never set SO_REUSEADDR would.
func bindWithoutReuse(addr string) error {
	ap := netip.MustParseAddrPort(addr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = syscall.Close(fd) }()
	return syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
}
