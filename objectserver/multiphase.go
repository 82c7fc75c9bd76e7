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
	"strconv"
	"time"
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

// rawWriter is an http.ResponseWriter on a hijacked connection: 1xx
// answers are written at once, the final one (its body buffered: PUT
// answers are short) by finish.
type rawWriter struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *rawWriter) Header() http.Header { return w.header }

func (w *rawWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		_ = w.writeHead(code)
		_ = w.brw.Flush()
		return
	}
	if w.status == 0 {
		w.status = code
	}
}

func (w *rawWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// SetReadDeadline lets http.ResponseController (deadlineReader) arm the
// connection's read deadline.
func (w *rawWriter) SetReadDeadline(t time.Time) error { return w.conn.SetReadDeadline(t) }

// SetWriteDeadline is ResponseController's other deadline.
func (w *rawWriter) SetWriteDeadline(t time.Time) error { return w.conn.SetWriteDeadline(t) }

func (w *rawWriter) writeHead(code int) error {
	if _, err := fmt.Fprintf(w.brw, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code)); err != nil {
		return err
	}
	if err := w.header.Write(w.brw); err != nil {
		return err
	}
	_, err := w.brw.WriteString("\r\n")
	return err
}

// drainWait bounds how long finish reads what the proxy may still send
// after the answer: it closes its end once it has read the answer.
const drainWait = 2 * time.Second

// finish writes the final answer and closes the connection, reading what
// the proxy may still send for a moment so that the close does not reset
// the answer away.
func (w *rawWriter) finish(timeout time.Duration) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.header.Set("Connection", "close")
	if w.header.Get("Date") == "" {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(timeout))
	if w.writeHead(w.status) == nil {
		_, _ = w.brw.Write(w.body.Bytes())
		_ = w.brw.Flush()
	}
	if tc, ok := w.conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		_ = w.conn.SetReadDeadline(time.Now().Add(min(timeout, drainWait)))
		_, _ = io.Copy(io.Discard, io.LimitReader(w.brw, 1<<20))
	}
	_ = w.conn.Close()
}

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

// answerRaw writes a bodiless answer (a 304) on the hijacked connection,
// with the Content-Length: 0 and Content-Type that net/http drops from a
// 304 and Swift's object server sends. Without a length, Swift's proxy
// (eventlet) relays the 304 of a HEAD as chunked and ends it with a last
// chunk, which a keep-alive client reads as the start of its next answer.
// The connection closes after the answer, as the proxy's backend
// connections do anyway. false: nothing written (HTTP/2, or a writer that
// cannot be hijacked), the caller answers as usual.
func (s *Server) answerRaw(req *request, code int) bool {
	sw, ok := req.w.(*statusWriter)
	if !ok || req.r.ProtoMajor != 1 {
		return false
	}
	conn, brw, err := http.NewResponseController(sw.ResponseWriter).Hijack()
	if err != nil {
		return false
	}
	rw := &rawWriter{conn: conn, brw: brw, header: sw.ResponseWriter.Header().Clone()}
	sw.ResponseWriter = rw
	sw.WriteHeader(code)
	rw.finish(s.cfg.ClientTimeout)
	return true
}

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
	body := &phasedBody{br: brw.Reader}
	req.r.Body = io.NopCloser(body)
	req.phased = body
	req.finish = func() { rw.finish(s.cfg.ClientTimeout) }
	return nil
}
