package swiftfilter

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// bufferSize is the copy buffer of bodies through the proxy: 256 KiB measured
// best for large GETs through httputil.ReverseProxy (performance-limits.md).
const bufferSize = 256 << 10

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, bufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == bufferSize {
		buf = buf[:bufferSize]
		b.p.Put(&buf)
	}
}

// newTransport is the keep-alive pool to the upstream Swift proxy.
func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.ConnTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil, // never through an environment proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &upstreamConn{Conn: c}, nil
		},
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: cfg.ExpectContinueTimeout,
		TLSHandshakeTimeout:   cfg.ConnTimeout,
		DisableCompression:    true, // bytes pass as they are
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}

// bodyBuffers are the copy buffers of request bodies to the upstream.
var bodyBuffers bufferPool

// upstreamConn is a connection to the upstream whose ReadFrom copies through
// a bufferSize buffer. http.Transport writes a request body of known length
// with io.Copy(conn, io.LimitReader(body, n)); on a *net.TCPConn that is
// 32 KiB at a time (no splice from a server's request body), i.e. one read
// from the client and one write to the upstream per 32 KiB. Up to 256 KiB
// per system call cut the filter's CPU per byte of a large PUT by about a
// third (docs/benchmarks.md). Still streaming: at most one buffer in flight.
type upstreamConn struct{ net.Conn }

func (c *upstreamConn) ReadFrom(r io.Reader) (n int64, err error) {
	buf := bodyBuffers.Get()
	defer bodyBuffers.Put(buf)
	for {
		nr, rerr := r.Read(buf)
		if nr > 0 {
			nw, werr := c.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		switch {
		case rerr == io.EOF:
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}

// newReverseProxy streams requests to the upstream: bodies are never
// buffered beyond one copy buffer, Expect: 100-continue is forwarded (the
// transport waits for the upstream's 100 before reading the client's body,
// and net/http sends the client its 100 on that first read), chunked bodies
// stay chunked, a client going away cancels the upstream request.
func (f *Filter) newReverseProxy(target *url.URL, rt http.RoundTripper) http.Handler {
	if rt == nil {
		rt = newTransport(f.cfg)
	}
	rt = &lengthlessTransport{
		base:          rt,
		dialer:        &net.Dialer{Timeout: f.cfg.ConnTimeout, KeepAlive: 30 * time.Second},
		headerTimeout: f.cfg.ResponseHeaderTimeout,
	}
	// the filter's own requests to the upstream (a DLO's segments' listing)
	sub := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Hop-by-hop headers are gone by now, among them whatever the
			// client named in Connection: set the key id again, so that
			// "Connection: X-Arca-Key-Id" cannot take it away.
			stripKeyID(pr.Out.Header)
			if id, ok := pr.In.Context().Value(keyIDContext{}).(string); ok {
				pr.Out.Header[KeyIDHeader] = []string{id}
			}
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // Swift sees the host the client used
			if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
			pr.Out.Header.Del("X-Forwarded-Host")
			pr.Out.Header.Del("X-Forwarded-Proto")
			// Without a 100 Continue from Swift, the transport sends the
			// body anyway when it means to keep the connection: it would
			// read the client's body, and net/http would answer the
			// client 100 Continue where Swift did not. A connection of
			// its own per such request keeps the decision Swift's.
			if expectsContinue(pr.In) {
				pr.Out.Close = true
			}
			markReplayable(pr.Out)
		},
		ModifyResponse: func(res *http.Response) error {
			_ = closeUnsent(res)
			if err := f.dloETag(res, sub); err != nil { // dlo.go
				return err
			}
			return f.openListing(res) // listing.go
		},
		Transport:  rt,
		BufferPool: &bufferPool{},
		// Responses of unknown length (and event streams) are flushed
		// after every write: ReverseProxy does so by itself whatever this
		// says. A known-length response is written through net/http's
		// buffer and sent as the body comes, without a flush per write:
		// a negative interval here would also start, for every response,
		// a timer whose goroutine flushes the headers on their own (an
		// extra write, wake-up and packet per small response).
		FlushInterval: 0,
		ErrorLog:      nil,
		ErrorHandler:  f.upstreamError,
	}
}

// markReplayable lets the transport send a bodiless DELETE again on a
// new connection when the pooled keep-alive connection it went out on
// turns out closed before any byte of an answer came back: the Swift
// proxy (eventlet) closes idle connections after client_timeout, and
// after some answers without saying "Connection: close", so a request can
// leave on a connection the proxy is closing. net/http retries such a
// request only when it is replayable: GET, HEAD, OPTIONS and TRACE, or any
// request with an Idempotency-Key header. DELETE is idempotent (RFC 9110
// 9.2.2) and the proxy never answered it, so it is marked too; a client
// told 503 would send it again anyway. The header is set with no value,
// which net/http reads as present and never writes on the wire (a
// client's own Idempotency-Key goes on as it came). Requests
// with a body (the transport could not send it twice) and PUT, POST and
// COPY (each write may add an object version) are left as they are.
func markReplayable(out *http.Request) {
	if _, set := out.Header["Idempotency-Key"]; !set && out.Method == http.MethodDelete && out.Body == nil {
		out.Header["Idempotency-Key"] = nil
	}
}

// upstreamError answers when the upstream could not be reached or failed
// before its response began: 503, which DevStack's wait loop and clients
// retry.
func (f *Filter) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		if rec, ok := w.(*recorder); ok {
			rec.status = statusClientClosed
		}
		return // the client went away: nobody to answer
	}
	if errors.Is(err, errListingKeys) {
		f.log.Error().Err(err).Str("path", r.URL.Path).Msg("listing not served: its ETags cannot be opened")
		localError(w, r, http.StatusServiceUnavailable, "The key service is unavailable; retry later.")
		return
	}
	f.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("upstream Swift proxy unavailable")
	localError(w, r, http.StatusServiceUnavailable, "The Swift proxy is unavailable; retry later.")
}

// recorder remembers the status and size of a response for the access log.
// Unwrap lets http.ResponseController reach the server's writer (Flush,
// deadlines, 1xx).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// access writes the request's log line. Never the query (TempURL signatures
// are credentials) and never a token.
func (f *Filter) access(r *http.Request, rec *recorder, rl *requestLog, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	f.observe(r, rl, status, start)
	ev := f.log.Debug()
	if f.cfg.AccessLog || status >= 500 {
		ev = f.log.Info()
	}
	if !ev.Enabled() {
		return
	}
	trans := rec.Header().Get("X-Trans-Id")
	ev = ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).
		Int64("bytes_out", rec.bytes).Dur("duration", time.Since(start)).Str("request_id", trans)
	if rl.userID != "" {
		ev = ev.Str("user_id", rl.userID).Str("token_project_id", rl.tokenProject)
	}
	if rl.project != "" {
		ev = ev.Str("project_id", rl.project)
	}
	if rl.keyID != "" {
		ev = ev.Str("key_id", rl.keyID)
	}
	if rl.outcome != "" {
		ev = ev.Str("note", rl.outcome)
	}
	ev.Msg("request")
}
