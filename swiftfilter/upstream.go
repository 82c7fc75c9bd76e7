package swiftfilter

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// toUpstream hands a request the filter let through to the Swift proxy.
//
// Swift often answers before it reads a request body: 413 for a declared
// length over its limit, 401 or 403, 404 for a missing container, 411. Go's
// HTTP/1 server does not write a response while the request body is unread
// (it first tries to drain it), so without full duplex a client that holds
// its body back, as clients sending Expect: 100-continue or pacing their
// upload do, would never see the answer the proxy already gave. Expect is
// forwarded as is: the transport waits for the proxy's 100 Continue before
// reading the client's body, and net/http sends the client its 100 only on
// that first read, so the filter never answers 100 in the proxy's stead.
func (f *Filter) toUpstream(w http.ResponseWriter, r *http.Request) {
	if lengthless(r) {
		r = r.WithContext(context.WithValue(r.Context(), lengthlessKey{}, true))
	}
	f.proxy.ServeHTTP(oneContinue{w}, r)
}

// oneContinue drops the 100 Continue httputil.ReverseProxy relays from the
// upstream. net/http sends the client its own 100 when the transport first
// reads the body, which it does on the upstream's 100: relayed too, the
// client would see two 100s or one, whichever of the two got out first.
// Swift sends one. Other 1xx answers (103 Early Hints) are relayed.
type oneContinue struct{ http.ResponseWriter }

func (w oneContinue) WriteHeader(code int) {
	if code == http.StatusContinue {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w oneContinue) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answerEarly prepares the answer to r to go out whether or not its body
// was read (the filter's own refusals too): full duplex for a request with
// a body, and for one with Expect: 100-continue a record of whether its
// body is ever read. The function it returns runs once the answer is
// written: a client that waited for 100 Continue and got a final answer
// instead is told the connection closes (net/http does so), and the
// server stops waiting for a body the client is not going to send, so the
// connection closes at once rather than when the client gives up.
func answerEarly(w http.ResponseWriter, r *http.Request) (*http.Request, func()) {
	rc := http.NewResponseController(w)
	if r.ContentLength != 0 {
		// Not every writer can (HTTP/2 is full duplex already): no error
		// to act on.
		_ = rc.EnableFullDuplex()
	}
	if !expectsContinue(r) {
		return r, func() {}
	}
	body := &readTracker{ReadCloser: r.Body}
	r.Body = body
	r = r.WithContext(context.WithValue(r.Context(), expectKey{}, body))
	return r, func() {
		if !body.read.Load() {
			_ = rc.SetReadDeadline(time.Now())
		}
	}
}

// expectsContinue reports whether the client waits for 100 Continue
// before it sends its body.
func expectsContinue(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}

// expectKey carries, in the context of a request with Expect:
// 100-continue, the *readTracker of its body.
type expectKey struct{}

// readTracker records whether a request body was ever read: for a client
// that sent Expect: 100-continue, a body not read is a 100 never sent.
type readTracker struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *readTracker) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

// closeUnsent answers "Connection: close", as Swift does, when a client
// that waits for 100 Continue got a final answer instead: it may still
// send its body or not, so the connection cannot serve another request.
func closeUnsent(res *http.Response) error {
	if body, ok := res.Request.Context().Value(expectKey{}).(*readTracker); ok && !body.read.Load() {
		res.Header.Set("Connection", "close")
	}
	return nil
}

// lengthless reports whether r is a PUT, POST or PATCH that declared no
// body at all: neither Content-Length nor Transfer-Encoding. net/http's
// client would send it with Content-Length: 0, and Swift treats the two
// differently: a PUT without a length is 411 Length Required, one with
// Content-Length: 0 stores an empty object. The client must get Swift's
// answer to what it sent.
func lengthless(r *http.Request) bool {
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodPatch:
	default:
		return false
	}
	_, declared := r.Header["Content-Length"]
	return !declared && len(r.TransferEncoding) == 0 && r.ContentLength == 0
}

// lengthlessKey marks, in a request's context, a request to send upstream
// without a length (lengthless).
type lengthlessKey struct{}

// lengthlessTransport sends requests marked lengthless on a connection of
// their own, with the head written as the client wrote it (no
// Content-Length, no body); every other request goes through base.
type lengthlessTransport struct {
	base          http.RoundTripper
	dialer        *net.Dialer
	headerTimeout time.Duration
}

func (t *lengthlessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context().Value(lengthlessKey{}) == nil {
		return t.base.RoundTrip(req)
	}
	// RoundTrip owns the body, even an empty one.
	if req.Body != nil {
		_ = req.Body.Close()
	}
	conn, err := t.dial(req)
	if err != nil {
		return nil, fmt.Errorf("swiftfilter: dialing the upstream: %w", err)
	}
	stop := context.AfterFunc(req.Context(), func() { _ = conn.Close() })
	resp, err := t.exchange(conn, req)
	if err != nil {
		stop()
		_ = conn.Close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("swiftfilter: request without a length to the upstream: %w", err)
	}
	resp.Body = &connBody{ReadCloser: resp.Body, conn: conn, stop: stop}
	return resp, nil
}

// dial opens a connection to the request's upstream, TLS for https.
func (t *lengthlessTransport) dial(req *http.Request) (net.Conn, error) {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(host, port)
	if req.URL.Scheme == "https" {
		d := &tls.Dialer{NetDialer: t.dialer, Config: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
		return d.DialContext(req.Context(), "tcp", addr)
	}
	return t.dialer.DialContext(req.Context(), "tcp", addr)
}

// exchange writes req's head, without a length, and reads the final
// response's head (interim 1xx answers are passed over).
func (t *lengthlessTransport) exchange(conn net.Conn, req *http.Request) (*http.Response, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if strings.ContainsAny(host, "\r\n") {
		return nil, fmt.Errorf("invalid Host %q", host)
	}
	h := req.Header.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Connection", "close") // one request on this connection
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), host)
	if err := h.Write(&b); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	if t.headerTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(t.headerTimeout))
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			_ = conn.SetDeadline(time.Time{})
			return resp, nil
		}
	}
}

// connBody closes the response's own connection with the body.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

func (b *connBody) Close() error {
	b.stop()
	err := b.ReadCloser.Close()
	if cerr := b.conn.Close(); err == nil {
		err = cerr
	}
	return err
}
