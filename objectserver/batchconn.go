package objectserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// A small GET's answer is its headers and a few KiB of body, and net/http
// sends it in two write(2)s: the connection's 4 KiB bufio.Writer fills
// with the headers and the start of the body, is flushed, and the rest
// goes out when the handler returns. On loopback or a LAN each write is a
// trip through the TCP stack (and a wake-up of the proxy's reader): the
// second one was about a tenth of a 4 KiB GET's CPU. A batchConn lets the
// handler hold the connection's writes while it writes an answer it
// knows whole, and send them in one write(2) (sendRange).

// batchListener wraps every accepted connection in a batchConn.
type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

// batchConn is a server connection whose writes can be held and sent
// together. Holding is the handler's choice (hold, release); a
// connection nobody holds writes through.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte
}

// maxHeld bounds what a batchConn collects: answers larger than this are
// not worth one write(2) less, and are written as they come.
const maxHeld = 32 << 10

var heldBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// hold starts collecting writes.
func (c *batchConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was collected, in one write, and stops collecting.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	return c.flushLocked()
}

func (c *batchConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(b)
	b = b[:0]
	heldBufPool.Put(&b)
	return err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held || len(c.buf)+len(p) > maxHeld {
		// too much to hold: what is held goes first, in order
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = *heldBufPool.Get().(*[]byte)
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// ReadFrom keeps net/http's path to the TCP connection's own ReadFrom
// (sendfile, splice) that a wrapper would otherwise hide.
func (c *batchConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.release(); err != nil {
		return 0, err
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// CloseWrite is the TCP half-close net/http and rawWriter use, after
// what is held.
func (c *batchConn) CloseWrite() error {
	if err := c.release(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn is the connection's descriptor, as *net.TCPConn gives it: a
// multiphase PUT reads its taken-over connection with raw reads
// (pollReader, multiphase.go), which a wrapper without it would turn off.
func (c *batchConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// Close sends what is held before closing.
func (c *batchConn) Close() error {
	_ = c.release()
	return c.Conn.Close()
}

// batchConnKey is the request context's key for its connection's batchConn.
type batchConnKey struct{}

// withBatchConn is http.Server.ConnContext: it puts the batchConn under
// c (itself, or under TLS) in the connection's context.
func withBatchConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if bc, ok := c.(*batchConn); ok {
		return context.WithValue(ctx, batchConnKey{}, bc)
	}
	return ctx
}

// requestBatchConn is the request's batchConn, nil when it has none
// (HTTP/2, or a server not started by ServeListener).
func requestBatchConn(ctx context.Context) *batchConn {
	bc, _ := ctx.Value(batchConnKey{}).(*batchConn)
	return bc
}

// sendWhole answers code with body, all of it: on an HTTP/1 connection
// of ServeListener's, small answers go out in one write(2) (batchconn.go)
// rather than net/http's two. It reports whether the answer was written
// (false: the client went away; nothing more to answer).
func sendWhole(req *request, code int, body []byte) bool {
	bc := requestBatchConn(req.ctx)
	if bc == nil || req.r.ProtoMajor != 1 || len(body) > maxHeld/2 {
		req.w.WriteHeader(code)
		_, err := req.w.Write(body)
		return err == nil
	}
	bc.hold()
	req.w.WriteHeader(code)
	_, err := req.w.Write(body)
	if err == nil {
		// net/http's buffers into the connection, which holds them
		err = http.NewResponseController(req.w).Flush()
	}
	if rerr := bc.release(); err == nil {
		err = rerr
	}
	return err == nil
}
