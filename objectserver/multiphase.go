package objectserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
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
	body := &phasedBody{br: brw.Reader}
	req.r.Body = io.NopCloser(body)
	req.phased = body
	req.finish = func() { rw.finish(s.cfg.ClientTimeout) }
	return nil
}
