package objectserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"opendev.org/x/arca/internal/bufpool"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// The body of a GET: the satisfiable ranges of its Range header, the
// plaintext they are read from, and the answer, one range or several,
// authenticated a first window ahead of the status.

// rangeSource gives readers of plaintext bytes [off, off+n).
type rangeSource interface {
	Range(off, n int64) (io.Reader, error)
}

// firstWindow is how much of a GET is decrypted before the status is sent.
const firstWindow = 256 << 10

// readerSource continues an already positioned reader.
type readerSource struct{ r io.Reader }

func (p readerSource) Range(_, _ int64) (io.Reader, error) { return p.r, nil }

type plainSource struct{ f io.ReaderAt }

func (p plainSource) Range(off, n int64) (io.Reader, error) {
	return io.NewSectionReader(p.f, off, n), nil
}

type cryptSource struct{ r cryptReader }

func (c cryptSource) Range(off, n int64) (io.Reader, error) {
	if err := c.r.Range(off, n); err != nil {
		return nil, err
	}
	return c.r, nil
}

// errAnswered says the answer has been written.
var errAnswered = errors.New("objectserver: answered")

// getRanges is the satisfiable ranges of the Range header (none for the
// whole object), or errAnswered when it has answered 416.
func getRanges(req *request, obj *diskfile.Object, v *plainView) ([]byteRange, error) {
	r, h := req.r, req.w.Header()
	rangeHeader := r.Header.Get("Range")
	if r.Method == http.MethodHead {
		rangeHeader = "" // swob answers HEAD whole, whatever the Range
	}
	if ign := r.Header.Get("X-Backend-Ignore-Range-If-Metadata-Present"); ign != "" && rangeHeader != "" {
		for name := range strings.SplitSeq(ign, ",") {
			if _, ok := lookupFold(obj.Metadata, strings.TrimSpace(name)); ok {
				rangeHeader = ""
				break
			}
		}
	}
	if rangeHeader == "" {
		return nil, nil
	}
	specs, ok := parseRange(rangeHeader)
	if !ok {
		return nil, nil
	}
	rs, satisfiable := rangesForLength(specs, v.length)
	if !satisfiable {
		// The object's headers (its ETag too) with swob's 416 body.
		body := swobBody(http.StatusRequestedRangeNotSatisfiable)
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", v.length))
		h.Set("Content-Length", strconv.Itoa(len(body)))
		req.w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		_, _ = io.WriteString(req.w, body)
		return nil, errAnswered
	}
	if v.length == 0 {
		return nil, nil // a suffix range of an empty object: 200 with nothing, as swob
	}
	return rs, nil
}

// sendRange answers the whole object or one range of it. The first window
// is read (and authenticated) before the status goes out: small objects,
// most of them, then fail with a clean status, never mid-stream.
func (s *Server) sendRange(req *request, v *plainView, src rangeSource, ranges []byteRange) error {
	w, h := req.w, req.w.Header()
	br, code := byteRange{0, v.length}, http.StatusOK
	if len(ranges) == 1 {
		br, code = ranges[0], http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.Start, br.End-1, v.length))
	}
	h.Set("Content-Length", strconv.FormatInt(br.End-br.Start, 10))
	if req.r.Method == http.MethodHead {
		w.WriteHeader(code)
		return nil
	}
	rd, err := src.Range(br.Start, br.End-br.Start)
	var first []byte
	if err == nil {
		n := min(br.End-br.Start, firstWindow)
		// Pooled (internal/bufpool): one buffer per GET was most of a
		// small GET's allocated bytes, and its zeroing, page faults and
		// return to the system a tenth of its CPU.
		bp := bufpool.Get(int(n))
		defer bufpool.Put(bp)
		first = *bp
		_, err = io.ReadFull(rd, first)
	}
	if err != nil {
		clear(h)
		return keyFailed(err)
	}
	if int64(len(first)) == br.End-br.Start {
		// the whole answer is known: headers and body in one write(2)
		if sendWhole(req, code, first) {
			s.countDecrypted(req, v.crypt != nil, br.End-br.Start)
		}
		return nil
	}
	w.WriteHeader(code)
	if _, err := w.Write(first); err != nil {
		return nil // the client went away; nothing more to answer
	}
	if s.copyRange(req, readerSource{rd}, 0, br.End-br.Start-int64(len(first))) {
		s.countDecrypted(req, v.crypt != nil, br.End-br.Start)
	}
	return nil
}

// sendRanges answers several ranges as multipart/byteranges. As
// sendRange does, it reads (and authenticates) the first window of what
// it will send, across the parts, before the status goes out: several
// ranges of a small object then fail with a clean status too, never with
// a 206 cut short.
func (s *Server) sendRanges(req *request, v *plainView, src rangeSource, ranges []byteRange) error {
	w, h := req.w, req.w.Header()
	boundary := newBoundary()
	ct := h.Get("Content-Type")
	var total int64
	partHeads := make([]string, len(ranges))
	for i, br := range ranges {
		partHeads[i] = fmt.Sprintf("--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n", boundary, ct, br.Start, br.End-1, v.length)
		total += int64(len(partHeads[i])) + (br.End - br.Start) + 2
	}
	tail := "--" + boundary + "--"
	total += int64(len(tail))
	h.Set("Content-Type", "multipart/byteranges;boundary="+boundary)
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	if req.r.Method == http.MethodHead {
		w.WriteHeader(http.StatusPartialContent)
		return nil
	}
	// read[i] is what was read of part i before the status; only the
	// last part read from may be partly read, and its reader (rest) is
	// where the source stands, so that part goes on from it.
	read := make([][]byte, len(ranges))
	var rest io.Reader
	var budget int64
	for _, br := range ranges {
		budget = min(budget+br.End-br.Start, firstWindow)
	}
	bp := bufpool.Get(int(budget))
	defer bufpool.Put(bp)
	buf := *bp
	for i, br := range ranges {
		if budget == 0 {
			break
		}
		rd, err := src.Range(br.Start, br.End-br.Start)
		if err == nil {
			read[i], buf = buf[:min(br.End-br.Start, budget)], buf[min(br.End-br.Start, budget):]
			_, err = io.ReadFull(rd, read[i])
		}
		if err != nil {
			clear(h)
			return keyFailed(err)
		}
		budget -= int64(len(read[i]))
		rest = rd
	}
	w.WriteHeader(http.StatusPartialContent)
	for i, br := range ranges {
		if _, err := io.WriteString(w, partHeads[i]); err != nil {
			return nil
		}
		n := br.End - br.Start
		if _, err := w.Write(read[i]); err != nil {
			return nil
		}
		switch left := n - int64(len(read[i])); {
		case left > 0 && len(read[i]) > 0:
			if !s.copyRange(req, readerSource{rest}, 0, left) {
				return nil
			}
		case left > 0:
			if !s.copyRange(req, src, br.Start, n) {
				return nil
			}
		}
		s.countDecrypted(req, v.crypt != nil, n)
		if _, err := io.WriteString(w, "\r\n"); err != nil {
			return nil
		}
	}
	_, _ = io.WriteString(w, tail)
	return nil
}

// copyRange streams plaintext bytes; on a read failure after the headers
// went out it aborts the connection, so the proxy sees a broken response
// rather than a short or unauthenticated object.
func (s *Server) copyRange(req *request, src rangeSource, off, n int64) bool {
	rd, err := src.Range(off, n)
	if err == nil {
		var copied int64
		copied, err = io.Copy(req.w, rd)
		if err == nil && copied != n {
			err = fmt.Errorf("%w: short read (%d of %d bytes)", objcrypt.ErrTruncated, copied, n)
		}
	}
	if err != nil {
		if errors.Is(err, objcrypt.ErrTampered) || errors.Is(err, objcrypt.ErrTruncated) {
			s.countIntegrity(req, err)
			req.log.Error().Err(err).Str("path", "/"+req.account+"/"+req.container+"/"+req.object).Msg("object data failed authentication while streaming; aborting response")
		}
		panic(http.ErrAbortHandler)
	}
	return true
}

func newBoundary() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
