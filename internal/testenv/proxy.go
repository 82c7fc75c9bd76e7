// TCPProxy is a TCP proxy for fault tests: it forwards a loopback
// port to a backend (a database, a service) until the test cuts it, which
// closes the listener and every open connection as a dead network or a
// crashed peer would, and restores it on the same port later. While it is
// cut the port stays bound, so connections to it are refused and no other
// test's server can be given it by the kernel in the meantime; Redirect
// points it at another backend, as a load balancer switched from one
// server to another would. It is a test helper only: nothing outside
// _test.go files should import it.

package testenv

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
)

// TCPProxy forwards connections from Addr to a backend.
type TCPProxy struct {
	// Addr is the proxy's host:port on 127.0.0.1; it stays the same across
	// Cut and Restore.
	Addr string

	mu      sync.Mutex
	backend string
	ln      net.Listener
	held    int // a bound, non-listening socket on Addr while cut; -1 when none
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// StartTCPProxy listens on a free loopback port and forwards to backend; the proxy
// is closed when the test ends.
func StartTCPProxy(t testing.TB, backend string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{Addr: ln.Addr().String(), backend: backend, held: -1, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.Cut()
		p.release()
	})
	return p
}

// Cut closes the listener (new connections are refused) and every
// forwarded connection (both ends see them reset). Cutting twice is fine.
//
// The port is then held by a socket that is bound but not listening: a
// connection to it is refused as before, but the kernel does not hand the
// port to another listener asking for a free one. Without that, a test
// server started in parallel was given the port during a cut and answered
// in the backend's place (seen as a 404 from a stranger where the test
// expected the outage).
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
		p.held = holdPort(p.Addr)
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as a dead peer
		}
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Redirect sends the connections accepted from now on to backend; those
// already forwarded stay with the backend they were opened to, until
// either end closes them (as a draining server does).
func (p *TCPProxy) Redirect(backend string) {
	p.mu.Lock()
	p.backend = backend
	p.mu.Unlock()
}

// Restore listens again on the same address.
func (p *TCPProxy) Restore(t testing.TB) {
	t.Helper()
	p.release()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatalf("tcpproxy: listening again on %s: %v", p.Addr, err)
	}
	p.serve(ln)
}

// release closes the socket that holds the port while the proxy is cut.
func (p *TCPProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held >= 0 {
		_ = syscall.Close(p.held)
		p.held = -1
	}
}

// holdPort binds a TCP socket to addr (an IPv4 loopback host:port) without
// listening on it, and returns its descriptor, or -1 when that fails (the
// cut then works as before, with the port free). SO_REUSEADDR lets it bind
// beside the proxy's connections still in TIME_WAIT and lets Restore's
// listener bind beside it; the kernel still skips a port with any bound
// socket when it picks a free one for a listener.
func holdPort(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		_ = syscall.Close(fd)
		return -1
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = syscall.Close(fd)
		return -1
	}
	return fd
}

func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// track records a forwarded connection and returns the backend that new
// connections go to, or false when the proxy has been cut.
func (p *TCPProxy) track(c net.Conn) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_ = c.Close()
		return "", false
	}
	p.conns[c] = struct{}{}
	return p.backend, true
}

func (p *TCPProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *TCPProxy) forward(client net.Conn) {
	backend, ok := p.track(client)
	if !ok {
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	if _, ok := p.track(server); !ok {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil || errors.Is(err, net.ErrClosed) {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	// One direction ended: end the other so both goroutines return.
	_ = client.Close()
	_ = server.Close()
	<-done
}
