package objectserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"syscall"
	"unsafe"
)

// The commit phase of Swift's multiphase PUT does not fit HTTP/1.1 as
// net/http serves it: the proxy ends the chunked body (a zero-length
// chunk) after the footer, waits for the second 100 Continue, then sends
// the commit document as a new chunked body on the same request
// (eventlet's wsgi.Input resets its chunk state when the server sends a
// 100 Continue; proxy/controllers/obj.py send_commit_confirmation). So a
// multiphase PUT takes the connection over (http.Hijacker) before the
// first 100 Continue: rawWriter writes the interim and final answers on
// it, and phasedBody reads the two chunked bodies. The connection is
// closed after the answer ("Connection: close"), as nothing more can be
// framed on it with certainty.

// phasedBody reads a multiphase PUT's request body: a chunked body, then,
// after restart (the second 100 Continue), another.
type phasedBody struct {
	br    *bufio.Reader
	cr    io.Reader
	ended bool
}

var errBadTrailer = errors.New("objectserver: bad chunked trailer")

func (b *phasedBody) Read(p []byte) (int, error) {
	if b.ended {
		return 0, io.EOF
	}
	if b.cr == nil {
		b.cr = httputil.NewChunkedReader(b.br)
	}
	n, err := b.cr.Read(p)
	if errors.Is(err, io.EOF) {
		// The chunked reader stops after the last chunk's size line: the
		// trailer (usually just CRLF) is the connection's.
		for i := 0; ; i++ {
			line, lerr := b.br.ReadSlice('\n')
			if lerr != nil {
				return n, lerr
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
			if i > 64 {
				return n, errBadTrailer
			}
		}
		b.ended, b.cr = true, nil
	}
	return n, err
}

// restart expects the next chunked body.
func (b *phasedBody) restart() { b.ended = false }

// takeOver hijacks a multiphase PUT's connection: req.w then writes on it
// (the access log's statusWriter still in front) and req.r.Body reads the
// phased body; req.finish answers and closes.
func (s *Server) takeOver(req *request) error {
	sw, ok := req.w.(*statusWriter)
	if !ok {
		return errors.New("objectserver: multiphase PUT without a statusWriter")
	}
	conn, brw, err := http.NewResponseController(sw.ResponseWriter).Hijack()
	if err != nil {
		return fmt.Errorf("objectserver: taking over the connection: %w", err)
	}
	rw := &rawWriter{conn: conn, brw: brw, header: sw.ResponseWriter.Header().Clone()}
	sw.ResponseWriter = rw
	body := &phasedBody{br: connBodyReader(conn, brw.Reader)}
	req.r.Body = io.NopCloser(body)
	req.phased = body
	req.finish = func() { rw.finish(s.cfg.ClientTimeout) }
	return nil
}

// connBodyReader is what reads a taken-over connection's request body:
// what net/http has buffered, then the connection, through pollReader
// when it is a plain socket (not TLS).
func connBodyReader(conn net.Conn, buffered *bufio.Reader) *bufio.Reader {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return buffered
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return buffered
	}
	return bufio.NewReader(&hijackedReader{buffered: buffered, conn: &pollReader{rc: rc}})
}

// hijackedReader reads what net/http read ahead before the connection
// was taken over, then the connection.
type hijackedReader struct {
	buffered *bufio.Reader
	conn     io.Reader
}

func (h *hijackedReader) Read(p []byte) (int, error) {
	if n := h.buffered.Buffered(); n > 0 {
		return h.buffered.Read(p[:min(len(p), n)])
	}
	return h.conn.Read(p)
}

// pollReader reads a non-blocking socket with read system calls made
// without the runtime's system call bookkeeping (syscall.RawSyscall in a
// syscall.RawConn's Read, which waits in the network poller when the
// socket is empty and honours its read deadline). Why: a goroutine's
// first ordinary system call after the process was idle wakes the
// runtime's monitor thread (sysmon), which then polls every 20 µs for as
// long as the process is busy. An EC fragment archive arrives in bursts
// (the proxy's chunks, a fragment each), and each burst began with a
// read: sysmon's wake-ups were about a sixth of an Arca node's CPU per EC
// PUT. A read of a non-blocking socket never blocks, so it needs none of
// that bookkeeping; the file writes, which may block, keep it.
type pollReader struct {
	rc syscall.RawConn
}

func (r *pollReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			//nolint:gosec // G103: p's address for read(2), which writes at most len(p) bytes into it
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}
