package swiftfilter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The splice path. Through httputil.ReverseProxy every body byte is read
// into the filter and written out again: two copies through user space,
// about 0.5 ns/B of the filter's CPU, which on a machine whose cores the
// client, the filter and Swift share is throughput lost (docs/benchmarks.md).
// (*net.TCPConn).ReadFrom moves bytes between two TCP sockets with splice(2)
// instead, without copying them into the process, when its source is a
// *net.TCPConn or an *io.LimitedReader around one. Two places can use it:
//
//   - Object GET: the filter sends the request on a plain TCP connection of
//     its own (a small keep-alive pool) and, when the answer has a
//     Content-Length of at least SpliceMinSize, writes the headers through
//     the ResponseWriter and hands the body to the server's
//     response.ReadFrom, which splices from the upstream socket to the
//     client's. Any other answer (smaller, chunked, no body) goes back to
//     ReverseProxy, which copies it as before. The size is only known from
//     the answer, so every object GET uses this connection pool.
//   - Object PUT with a single Content-Length of at least SpliceMinSize and
//     no Transfer-Encoding: the server's request body cannot be spliced, so
//     the client's connection is hijacked, the body spliced from it to a new
//     upstream connection (Expect: 100-continue relayed), the upstream's
//     answer written back with "Connection: close", and both connections
//     closed.
//
// Both go through ReverseProxy: it builds the outgoing request (hop-by-hop
// headers, X-Forwarded-For, the key id: Rewrite) exactly as for the other
// requests, spliceTransport.RoundTrip writes it with net/http's own request
// writer, and ReverseProxy cleans the answer's headers before
// spliceTransport.modifyResponse takes over its body. Only plain HTTP on both
// sides: a TLS client or an https upstream takes the ReverseProxy path.

// DefaultSpliceMinSize is the body size from which the splice path is taken.
const DefaultSpliceMinSize = 1 << 20

// errServed tells ReverseProxy's error handler that the splice path has
// answered the request (or found the client gone) itself.
var errServed = errors.New("swiftfilter: answered by the splice path")

// fastKey marks, in a request's context, a request the splice path may take.
type fastKey struct{}

// fastReq is what the splice path needs of the inbound request.
type fastReq struct {
	w    *recorder
	rl   *requestLog
	put  bool
	size int64 // PUT: the body's length
}

// spliceTransport is the Transport of the filter's ReverseProxy: requests
// marked by markSplice take the splice path, every other goes to next (the
// keep-alive pool of newTransport).
type spliceTransport struct {
	next            http.RoundTripper
	f               *Filter
	addr            string // upstream host:port
	dialer          net.Dialer
	min             int64
	headerTimeout   time.Duration
	continueTimeout time.Duration
	pool            connPool

	// Bodies moved by splice, for tests and operators' curiosity.
	gets, puts atomic.Int64
}

func newSpliceTransport(f *Filter, target string, next http.RoundTripper) *spliceTransport {
	cfg := f.cfg
	return &spliceTransport{
		next: next, f: f, addr: target,
		dialer:          net.Dialer{Timeout: cfg.ConnTimeout, KeepAlive: 30 * time.Second},
		min:             cfg.SpliceMinSize,
		headerTimeout:   cfg.ResponseHeaderTimeout,
		continueTimeout: cfg.ExpectContinueTimeout,
		pool:            connPool{max: min(cfg.MaxIdleConns, 64), timeout: cfg.IdleConnTimeout},
	}
}

// upstreamAddr is the host:port to dial for an http upstream URL.
func upstreamAddr(host, port string) string {
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// markSplice marks r for the splice path when it qualifies: plain
// HTTP/1.1, an object GET without a body or an object PUT of a single
// Content-Length at least SpliceMinSize, no Transfer-Encoding, no Upgrade.
// Anything else keeps ReverseProxy's path.
func (f *Filter) markSplice(w *recorder, r *http.Request, t Target, rl *requestLog) *http.Request {
	s := f.splice
	if s == nil || r.TLS != nil || r.ProtoMajor != 1 || r.ProtoMinor != 1 || !t.IsObject() ||
		len(r.TransferEncoding) > 0 || len(r.Header["Transfer-Encoding"]) > 0 || len(r.Header["Upgrade"]) > 0 {
		return r
	}
	fr := &fastReq{w: w, rl: rl}
	switch r.Method {
	case http.MethodGet:
		if r.ContentLength != 0 {
			return r
		}
	case http.MethodPut:
		// net/http has already refused conflicting Content-Lengths and
		// merged identical ones; one header whose value is the parsed
		// length is asked all the same, so that nothing ambiguous is spliced.
		cl := r.Header["Content-Length"]
		if r.ContentLength < s.min || len(cl) != 1 || strings.TrimSpace(cl[0]) != fmt.Sprint(r.ContentLength) ||
			r.Trailer != nil || r.Body == nil {
			return r
		}
		if e, ok := r.Header["Expect"]; ok && (len(e) != 1 || !strings.EqualFold(e[0], "100-continue")) {
			return r
		}
		fr.put, fr.size = true, r.ContentLength
	default:
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), fastKey{}, fr))
}

// RoundTrip sends a marked request on the splice path, any other to next.
func (s *spliceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	fr, ok := req.Context().Value(fastKey{}).(*fastReq)
	if !ok {
		return s.next.RoundTrip(req)
	}
	if fr.put {
		return s.put(req, fr)
	}
	return s.get(req, fr)
}

// modifyResponse is ReverseProxy's ModifyResponse: the answer's hop-by-hop
// headers are gone; a large GET body is spliced to the client, a PUT's
// answer written to the hijacked connection. It returns errServed when it
// has answered, nil to let ReverseProxy copy the answer as usual.
func (s *spliceTransport) modifyResponse(res *http.Response) error {
	switch b := res.Body.(type) {
	case *getBody:
		return s.sendGET(res, b)
	case *putBody:
		return b.h.answer(res)
	}
	return nil
}

// rawConn is a plain TCP connection to the upstream.
type rawConn struct {
	tc     *net.TCPConn
	br     *bufio.Reader
	bw     *bufio.Writer
	nread  int64 // bytes read from tc through br
	idleAt time.Time
}

func (c *rawConn) Read(p []byte) (int, error) {
	n, err := c.tc.Read(p)
	c.nread += int64(n)
	return n, err
}

func (s *spliceTransport) dial(ctx context.Context) (*net.TCPConn, error) {
	c, err := s.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok { // cannot happen with "tcp"; never splice anything else
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: not a TCP connection", s.addr)
	}
	return tc, nil
}

// connPool keeps idle GET connections to the upstream, most recent first.
type connPool struct {
	mu      sync.Mutex
	idle    []*rawConn
	max     int
	timeout time.Duration
}

func (p *connPool) get() *rawConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(c.idleAt) < p.timeout {
			return c
		}
		_ = c.tc.Close()
	}
	return nil
}

func (p *connPool) put(c *rawConn) {
	c.idleAt = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= p.max {
		_ = p.idle[0].tc.Close()
		p.idle = append(p.idle[:0], p.idle[1:]...)
	}
	p.idle = append(p.idle, c)
}

// get sends an object GET on a pooled (else new) connection and returns the
// answer once its head is read; the body stays on the connection (getBody).
func (s *spliceTransport) get(req *http.Request, fr *fastReq) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c := s.pool.get()
		reused := c != nil
		if !reused {
			tc, err := s.dial(ctx)
			if err != nil {
				return nil, fmt.Errorf("swiftfilter: connecting to the upstream: %w", err)
			}
			c = &rawConn{tc: tc}
			c.br = bufio.NewReaderSize(c, 64<<10)
			c.bw = bufio.NewWriterSize(tc, 8<<10)
		}
		before := c.nread
		res, err := s.exchange(ctx, c, req, fr)
		if err == nil {
			return res, nil
		}
		_ = c.tc.Close()
		// A kept-alive connection the upstream closed while it was idle
		// fails before any byte of an answer: once more on a new
		// connection, as http.Transport does for a request without a body.
		if !reused || attempt > 0 || c.nread != before || ctx.Err() != nil || netTimeout(err) {
			return nil, fmt.Errorf("swiftfilter: GET from the upstream: %w", err)
		}
	}
}

// exchange writes req on c and reads the answer's head. Cancelling ctx
// closes c until the answer's body is closed.
func (s *spliceTransport) exchange(ctx context.Context, c *rawConn, req *http.Request, fr *fastReq) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.tc.Close() })
	// The head must go out and the answer's head come back within
	// node_timeout, as ResponseHeaderTimeout bounds the other requests.
	if err := c.tc.SetDeadline(time.Now().Add(s.headerTimeout)); err != nil {
		stop()
		return nil, err
	}
	// net/http's own request writer: the bytes are those http.Transport
	// would send (a GET here has no body).
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, fmt.Errorf("writing the request: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("writing the request: %w", err)
	}
	res, err := readFinal(c.br, req)
	if err != nil {
		stop()
		return nil, err
	}
	if err := c.tc.SetDeadline(time.Time{}); err != nil {
		stop()
		return nil, err
	}
	res.Body = &getBody{body: res.Body, c: c, s: s, fr: fr, stop: stop,
		reusable: res.ProtoAtLeast(1, 1) && !res.Close}
	return res, nil
}

// readFinal reads the upstream's answer to a GET, passing informational
// answers to ReverseProxy's trace (which relays them) as http.Transport does.
func readFinal(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(req.Context())
	for range 5 {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("unexpected 101 Switching Protocols to a GET")
		case res.StatusCode >= 200:
			return res, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("too many informational answers")
}

// getBody is the body of a GET answer on a rawConn. Closing it returns the
// connection to the pool when the whole body was read (or spliced) and
// nothing else arrived, else closes the connection.
type getBody struct {
	body     io.ReadCloser // framed by http.ReadResponse on c.br
	c        *rawConn
	s        *spliceTransport
	fr       *fastReq
	stop     func() bool
	reusable bool
	done     bool
	closed   bool
}

func (b *getBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.done = true
	}
	return n, err
}

// Close never calls the framed body's Close, which would read the rest of
// an unfinished body: the connection is closed instead.
func (b *getBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.stop() && b.done && b.reusable && b.c.br.Buffered() == 0 {
		b.s.pool.put(b.c)
		return nil
	}
	return b.c.tc.Close()
}

// sendGET splices a large GET body to the client; other answers are left to
// ReverseProxy.
func (s *spliceTransport) sendGET(res *http.Response, b *getBody) error {
	n := res.ContentLength // -1 when chunked or delimited by the close
	rf, ok := b.fr.w.ResponseWriter.(io.ReaderFrom)
	if n < s.min || len(res.TransferEncoding) > 0 || res.StatusCode < 200 ||
		res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified || !ok {
		return nil
	}
	w := b.fr.w
	copyHeader(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	// The part of the body read with the head, then the rest from the
	// socket: the server's response.ReadFrom hands an *io.LimitedReader
	// around a *net.TCPConn to the client's (*net.TCPConn).ReadFrom, i.e.
	// splice(2), because the answer has a Content-Length.
	var sent int64
	if k := min(int64(b.c.br.Buffered()), n); k > 0 {
		p, _ := b.c.br.Peek(int(k))
		m, err := w.Write(p)
		sent += int64(m)
		if _, derr := b.c.br.Discard(m); err == nil {
			err = derr
		}
		if err != nil {
			b.fr.rl.outcome = fmt.Sprintf("GET body cut after %d of %d bytes: %v", sent, n, err)
			return errServed
		}
	}
	lr := &io.LimitedReader{R: b.c.tc, N: n - sent}
	m, err := rf.ReadFrom(lr)
	w.bytes += m
	sent += m
	s.gets.Add(1)
	if lr.N == 0 {
		b.done = true
	} else {
		// The server closes the client's connection: it wrote fewer bytes
		// than the Content-Length it sent.
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		b.fr.rl.outcome = fmt.Sprintf("GET body cut after %d of %d bytes: %v", sent, n, err)
	}
	return errServed
}

func netTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// headOnly is the body of the copy of a PUT whose head requestHead writes:
// the head is complete once the writer asks for the body.
type headOnly struct{ asked bool }

func (h *headOnly) Read([]byte) (int, error) { h.asked = true; return 0, io.EOF }
func (h *headOnly) Close() error             { return nil }

// requestHead is the head net/http would write for req with a body of size
// bytes, and "Connection: close" (the filter closes the connection after
// one request). ok is false if it could not be made.
func requestHead(req *http.Request, size int64) ([]byte, bool) {
	body := &headOnly{}
	r := new(http.Request)
	*r = *req
	r.Body, r.ContentLength, r.Close, r.GetBody = body, size, true, nil
	var buf bytes.Buffer
	// Write reports that the body was shorter than ContentLength; the head
	// before it is what http.Transport would have sent.
	_ = r.Write(&buf)
	head := buf.Bytes()
	if !body.asked || !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		return nil, false
	}
	return head, true
}

// hijackedPut is a PUT on the splice path once the client's connection is
// hijacked: from then on it alone answers the client.
type hijackedPut struct {
	s    *spliceTransport
	fr   *fastReq
	req  *http.Request
	up   *net.TCPConn
	upBr *bufio.Reader
	conn net.Conn      // the client's
	br   *bufio.Reader // what the server read of it beyond the head

	bodyCut    bool // the client's body was not read to its end
	clientGone bool // the client's side ended before its body did
	closeOnce  sync.Once
}

type upResult struct {
	res *http.Response
	err error
}

// put sends a large PUT body from the client's socket to a new upstream
// connection with splice. Until the client's connection is hijacked any
// failure falls back to, or answers through, ReverseProxy's usual path;
// after, hijackedPut answers.
func (s *spliceTransport) put(req *http.Request, fr *fastReq) (*http.Response, error) {
	head, ok := requestHead(req, fr.size)
	if !ok {
		return s.next.RoundTrip(req)
	}
	up, err := s.dial(req.Context())
	if err != nil {
		return nil, fmt.Errorf("swiftfilter: connecting to the upstream: %w", err)
	}
	conn, brw, err := http.NewResponseController(fr.w).Hijack()
	if err != nil { // a writer that cannot hand its connection over: the usual path
		_ = up.Close()
		return s.next.RoundTrip(req)
	}
	h := &hijackedPut{s: s, fr: fr, req: req, up: up, upBr: bufio.NewReaderSize(up, 16<<10), conn: conn, br: brw.Reader}
	res, err := h.run(head)
	if err != nil {
		h.fail(err)
		return nil, errServed
	}
	res.Body = &putBody{body: res.Body, h: h}
	return res, nil
}

func (h *hijackedPut) run(head []byte) (*http.Response, error) {
	s := h.s
	if err := h.up.SetWriteDeadline(time.Now().Add(s.headerTimeout)); err != nil {
		return nil, err
	}
	if _, err := h.up.Write(head); err != nil {
		return nil, fmt.Errorf("writing the request head: %w", err)
	}
	if err := h.up.SetWriteDeadline(time.Time{}); err != nil {
		return nil, err
	}
	cont := make(chan struct{}, 1)
	final := make(chan upResult, 1) // buffered: the reader never waits on us
	var bodyDone atomic.Bool
	go h.readAnswer(cont, final, &bodyDone)

	if _, ok := h.req.Header["Expect"]; ok {
		// The client waits for 100 Continue: ours goes out once the
		// upstream has sent its own, or after expect_continue_timeout
		// (when http.Transport sends the body anyway); a final answer
		// first goes to the client instead, and no body is sent.
		t := time.NewTimer(s.continueTimeout)
		select {
		case <-cont:
		case <-t.C:
		case r := <-final:
			t.Stop()
			bodyDone.Store(true)
			h.bodyCut = true
			return r.res, r.err
		}
		t.Stop()
		if _, err := io.WriteString(h.conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			bodyDone.Store(true)
			h.bodyCut, h.clientGone = true, true
			_ = h.up.Close() // ends readAnswer
			<-final
			return nil, fmt.Errorf("writing 100 Continue to the client: %w", err)
		}
	}
	n, err := h.copyBody()
	bodyDone.Store(true)
	if n != h.fr.size {
		h.bodyCut = true
		if errors.Is(err, io.EOF) {
			h.clientGone = true
		}
		// The upstream sees the body end short (and, once it has answered,
		// the connection close): it must not store a truncated object.
		_ = h.up.CloseWrite()
		h.fr.rl.outcome = fmt.Sprintf("PUT body cut after %d of %d bytes: %v", n, h.fr.size, err)
	}
	s.puts.Add(1)
	if err := h.up.SetReadDeadline(time.Now().Add(s.headerTimeout)); err != nil {
		_ = h.up.Close()
	}
	r := <-final
	return r.res, r.err
}

// copyBody sends the client's body upstream: the bytes the server had
// already read past the head, then the rest socket to socket. It never
// reads h.br beyond what it holds (reading a hijacked server reader further
// panics in net/http).
func (h *hijackedPut) copyBody() (int64, error) {
	size := h.fr.size
	var n int64
	if k := min(int64(h.br.Buffered()), size); k > 0 {
		p, _ := h.br.Peek(int(k))
		m, err := h.up.Write(p)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	// *net.TCPConn to *net.TCPConn through an *io.LimitedReader: splice(2).
	m, err := io.CopyN(h.up, h.conn, size-n)
	return n + m, err
}

// readAnswer reads the upstream's answer: 100 Continue is signalled on
// cont, the final answer (or the failure to read one) sent on final. An
// answer before the whole body was sent stops the body's copy, as
// http.Transport stops waiting for it.
func (h *hijackedPut) readAnswer(cont chan<- struct{}, final chan<- upResult, bodyDone *atomic.Bool) {
	var r upResult
	for i := 0; ; i++ {
		res, err := http.ReadResponse(h.upBr, h.req)
		if err != nil {
			r.err = fmt.Errorf("reading the upstream's answer: %w", err)
			break
		}
		if res.StatusCode < 200 {
			_ = res.Body.Close() // informational answers have none
		}
		if res.StatusCode == http.StatusContinue {
			select {
			case cont <- struct{}{}:
			default:
			}
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			r.err = errors.New("unexpected 101 Switching Protocols to a PUT")
			break
		}
		if res.StatusCode >= 200 {
			r.res = res
			break
		}
		if i >= 5 {
			r.err = errors.New("too many informational answers")
			break
		}
	}
	if !bodyDone.Load() {
		now := time.Now()
		_ = h.conn.SetReadDeadline(now)
		_ = h.up.SetWriteDeadline(now)
	}
	final <- r
}

// putBody is the body of the upstream's answer to a spliced PUT.
type putBody struct {
	body io.ReadCloser
	h    *hijackedPut
	n    int64
}

func (b *putBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *putBody) Close() error { b.h.close(); return nil }

// answer writes the upstream's answer (hop-by-hop headers removed by
// ReverseProxy) to the hijacked client with "Connection: close", then
// closes both connections.
func (h *hijackedPut) answer(res *http.Response) error {
	w := h.fr.w
	copyHeader(w.Header(), res.Header) // for the access log (X-Trans-Id); nothing more goes through w
	w.status = res.StatusCode
	if _, ok := res.Header["Date"]; !ok { // as net/http's server adds it
		res.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	res.Proto, res.ProtoMajor, res.ProtoMinor, res.Close = "HTTP/1.1", 1, 1, true
	deadline := time.Now().Add(h.s.headerTimeout)
	_ = h.up.SetReadDeadline(deadline)
	_ = h.conn.SetWriteDeadline(deadline)
	bw := bufio.NewWriter(h.conn)
	err := res.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if pb, ok := res.Body.(*putBody); ok {
		w.bytes = pb.n
	}
	if err != nil || h.clientGone {
		w.status = statusClientClosed
		if h.fr.rl.outcome == "" {
			h.fr.rl.outcome = fmt.Sprintf("writing the answer to the client: %v", err)
		}
	}
	h.close()
	return errServed
}

// fail answers a hijacked PUT that got no answer from the upstream: 503 as
// upstreamError, unless the client is gone.
func (h *hijackedPut) fail(err error) {
	defer h.close()
	if h.clientGone {
		h.fr.w.status = statusClientClosed
		if h.fr.rl.outcome == "" {
			h.fr.rl.outcome = err.Error()
		}
		return
	}
	h.s.f.log.Error().Err(err).Str("method", h.req.Method).Str("path", h.req.URL.Path).Msg("upstream Swift proxy unavailable")
	id := newTransID()
	body := http.StatusText(http.StatusServiceUnavailable) + ": The Swift proxy is unavailable; retry later.\n"
	res := &http.Response{
		StatusCode: http.StatusServiceUnavailable, ProtoMajor: 1, ProtoMinor: 1, Close: true,
		Header: http.Header{
			"X-Trans-Id": {id}, "X-Openstack-Request-Id": {id},
			"Content-Type": {"text/plain; charset=UTF-8"},
			"Date":         {time.Now().UTC().Format(http.TimeFormat)},
		},
		ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)), Request: h.req,
	}
	copyHeader(h.fr.w.Header(), res.Header)
	h.fr.w.status = http.StatusServiceUnavailable
	_ = h.conn.SetWriteDeadline(time.Now().Add(h.s.headerTimeout))
	bw := bufio.NewWriter(h.conn)
	if werr := res.Write(bw); werr == nil && bw.Flush() == nil {
		h.fr.w.bytes = int64(len(body))
	}
}

// close closes the upstream connection and the client's. When the client
// may still be sending its body, its connection is half-closed first and
// closed 500 ms later, as net/http's server does: closing a socket with
// unread bytes sends a reset, which can destroy the answer before the
// client has read it.
func (h *hijackedPut) close() {
	h.closeOnce.Do(func() {
		_ = h.up.Close()
		tc, ok := h.conn.(*net.TCPConn)
		if !h.bodyCut || h.clientGone || !ok {
			_ = h.conn.Close()
			return
		}
		_ = tc.CloseWrite()
		time.AfterFunc(500*time.Millisecond, func() { _ = tc.Close() })
	})
}
