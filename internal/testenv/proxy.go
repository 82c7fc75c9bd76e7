// TCPProxy is a TCP proxy for fault tests: it forwards a loopback
// port to a backend (a database, a service) until the test cuts it, which
// closes the listener and every open connection as a dead network or a
// crashed peer would, and restores it on the same port later; Redirect
// points it at another backend, as a load balancer switched from one
// server to another would. It is a test helper only: nothing outside
// _test.go files should import it.

package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
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
	p := &TCPProxy{Addr: ln.Addr().String(), backend: backend, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

// Cut closes the listener (new connections are refused) and every
// forwarded connection (both ends see them reset). Cutting twice is fine.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
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
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatalf("tcpproxy: listening again on %s: %v", p.Addr, err)
	}
	p.serve(ln)
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
