package objectserver

import (
	"bufio"
	"crypto/md5" //nolint:gosec // G501: Swift's footer Content-MD5
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// errTooLarge: a chunked body grew past max_file_size.
var errTooLarge = errors.New("objectserver: object too large")

// maxFooterSize bounds the footer document.
const maxFooterSize = 1 << 20

// copyBufPool holds the buffers of unencrypted PUT bodies: 256 KiB (four
// segments) a read and a write, where io.Copy's 32 KiB took eight times
// the system calls.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// deadlineReader re-arms the connection's read deadline before every read,
// so a stalled client gets 408 after client_timeout of silence.
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	n       int64
	max     int64
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.rc != nil {
		_ = d.rc.SetReadDeadline(time.Now().Add(d.timeout))
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.max > 0 && d.n > d.max {
		return n, errTooLarge
	}
	return n, err
}

// mimeReadSize is how much of a MIME body (footers, a multiphase PUT's
// fragment archive) one read of the connection may take: a proxy's
// chunk of an EC fragment archive is a fragment, 256 KiB plus its header
// at Swift's default segment size.
const mimeReadSize = 512 << 10

// mimeBufPool holds the read-ahead buffers of MIME bodies (mimeReadSize).
var mimeBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, mimeReadSize) }}

// releaseRaw returns a MIME body's read-ahead buffer, once nothing reads
// the body any more.
func (p *putParams) releaseRaw() {
	if p.raw == nil {
		return
	}
	p.raw.Reset(nil)
	mimeBufPool.Put(p.raw)
	p.raw = nil
}

// armedReader arms the connection's read deadline before each read of
// the request body: under a buffer, once per read of the connection
// rather than once per read of the buffer.
type armedReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (a *armedReader) Read(p []byte) (int, error) {
	if a.rc != nil {
		_ = a.rc.SetReadDeadline(time.Now().Add(a.timeout))
	}
	return a.r.Read(p)
}

// bodyErrorStatus classifies a failure to read the request body: its
// status and body ("": swob's default, as Swift's HTTPRequestTimeout and
// HTTPClientDisconnect).
func bodyErrorStatus(err error) (int, string) {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "Your request is too large."
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, ""
	}
	return 499, ""
}

// Swift's messages (obj/server.py _read_metadata_footer, _parse_footer).
var (
	errFooterChecksum = errors.New("footer MD5 mismatch")
	errNoFooter       = errors.New("couldn't find footer MIME doc")
	errFooterJSON     = errors.New("invalid JSON for footer doc")
)

// readFooterPart reads the "object metadata" part (JSON with Content-MD5)
// and, when drain, the rest of the body (not before a commit phase: the
// proxy sends its commit document only after the second 100 Continue).
func readFooterPart(mr *multipart.Reader, drain bool) (map[string]string, error) {
	part, err := mr.NextRawPart()
	if err != nil {
		return nil, errNoFooter
	}
	if part.Header.Get("X-Document") != "object metadata" {
		return nil, errors.New("bad footer document")
	}
	sum := part.Header.Get("Content-Md5")
	if sum == "" {
		return nil, errors.New("no Content-MD5 in footer")
	}
	data, err := io.ReadAll(io.LimitReader(part, maxFooterSize+1))
	if err != nil || len(data) > maxFooterSize {
		return nil, errors.New("unreadable footer")
	}
	hh := md5.New() //nolint:gosec // G401: Swift's footer Content-MD5
	hh.Write(data)
	if !strings.EqualFold(hex.EncodeToString(hh.Sum(nil)), strings.TrimSpace(sum)) {
		return nil, errFooterChecksum
	}
	out := map[string]string{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, errFooterJSON
	}
	if drain {
		drainParts(mr)
	}
	return out, nil
}

// drainParts reads up to the closing boundary; what follows it is ignored.
func drainParts(mr *multipart.Reader) {
	for i := 0; i < 16; i++ {
		if _, err := mr.NextRawPart(); err != nil {
			return
		}
	}
}

// smallWriteSize is how much of a stored object smallWrites collects.
const smallWriteSize = 16 << 10

var smallWritePool = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteSize); return &b }}

// smallWrites collects the small writes of an objcrypt stream (its
// header, a small object's one segment, the trailer) into one write(2)
// of the temporary file: a 4 KiB PUT made three. A write that does not
// fit goes out directly after what was collected, so large objects are
// written as before. Flush writes the rest and returns the buffer; the
// writer is not safe for concurrent use (objcrypt writes in stream order
// from one goroutine).
type smallWrites struct {
	w   io.Writer
	bp  *[]byte
	err error
}

func newSmallWrites(w io.Writer) *smallWrites {
	return &smallWrites{w: w, bp: smallWritePool.Get().(*[]byte)}
}

func (s *smallWrites) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	buf := *s.bp
	if len(buf)+len(p) <= cap(buf) {
		*s.bp = append(buf, p...)
		return len(p), nil
	}
	if err := s.flushBuf(); err != nil {
		return 0, err
	}
	if len(p) <= cap(buf) {
		*s.bp = append((*s.bp)[:0], p...)
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

func (s *smallWrites) flushBuf() error {
	if len(*s.bp) == 0 {
		return nil
	}
	_, err := s.w.Write(*s.bp)
	*s.bp = (*s.bp)[:0]
	if err != nil {
		s.err = err
	}
	return err
}

// discard releases the buffer without writing (a failed PUT's file is
// removed anyway); nothing after Flush.
func (s *smallWrites) discard() {
	if s.bp != nil {
		*s.bp = (*s.bp)[:0]
		smallWritePool.Put(s.bp)
		s.bp = nil
	}
}

// Flush writes what is collected and releases the buffer; the writer is
// done after it.
func (s *smallWrites) Flush() error {
	if s.bp == nil {
		return s.err
	}
	err := s.flushBuf()
	*s.bp = (*s.bp)[:0]
	smallWritePool.Put(s.bp)
	s.bp = nil
	if err == nil {
		err = s.err
	}
	return err
}
