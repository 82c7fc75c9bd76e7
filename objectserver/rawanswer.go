package objectserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Answers written on a hijacked connection, for what net/http cannot
// frame as Swift does: a multiphase PUT's two chunked bodies
// (multiphase.go) and a 304 with Content-Length and Content-Type.

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
