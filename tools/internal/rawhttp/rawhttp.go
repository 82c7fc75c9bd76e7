package rawhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBody is the largest answer body a Conn reads unless told
// otherwise: load generators keep answers in memory.
const DefaultMaxBody = 1 << 20

// inlineBody is the largest request body copied behind the head so that
// head and body go out in one write; larger bodies are written from the
// caller's slice with writev, without a copy.
const inlineBody = 64 << 10

// Conn is one worker's keep-alive connection to one server. It is not
// safe for concurrent use: each worker has its own.
type Conn struct {
	// MaxBody bounds the answer bodies read; 0 means DefaultMaxBody.
	MaxBody int64

	host    string // the URL's host, as given
	addr    string
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	out     []byte // the request head (and a small body) being written
	large   []byte // a body written after out, from the caller's slice
	reqBody []byte // Do's copy of an http.Request's body
	body    []byte // the last answer's body
}

// New returns a Conn to addr (host:port) that sends host as the Host
// header; timeout bounds each exchange. It connects on the first request.
func New(host, addr string, timeout time.Duration) *Conn {
	return &Conn{host: host, addr: addr, timeout: timeout}
}

// HostPort adds http's default port to a URL host that has none, for New.
func HostPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}

// Host is the Host header the Conn sends.
func (c *Conn) Host() string { return c.host }

// errStale is a failure on a reused connection before any answer byte:
// the server closed it while idle, and the request is sent again once
// (when it could not be written, or is idempotent), as net/http does.
var errStale = errors.New("stale keep-alive connection")

// Do sends req and returns the status and the body (valid until the next
// call). The request's host, when it has one, replaces the Conn's.
func (c *Conn) Do(req *http.Request) (int, []byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		buf := bytes.NewBuffer(c.reqBody[:0])
		_, err := buf.ReadFrom(req.Body)
		c.reqBody = buf.Bytes()
		if err != nil {
			return 0, nil, fmt.Errorf("reading the request body: %w", err)
		}
		if int64(len(c.reqBody)) != req.ContentLength {
			return 0, nil, fmt.Errorf("request body is %d bytes, Content-Length %d", len(c.reqBody), req.ContentLength)
		}
		body = c.reqBody
	}
	return c.send(req.Method, req.URL.RequestURI(), host, req.Header, body)
}

// Send sends method target (a request-URI: path and query) with the
// headers and, unless body is nil, the body with its Content-Length (an
// empty, non-nil body sends "Content-Length: 0"). The body is not copied
// nor kept. It returns the status and the answer's body (valid until the
// next call).
func (c *Conn) Send(method, target string, header http.Header, body []byte) (int, []byte, error) {
	return c.send(method, target, c.host, header, body)
}

func (c *Conn) send(method, target, host string, header http.Header, body []byte) (int, []byte, error) {
	c.encode(method, target, host, header, body)
	// A request that reached the server may be retried only if repeating
	// it is harmless (no POST twice); one that could not be written may.
	idempotent := method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete
	status, answer, err := c.roundTrip(c.conn != nil, idempotent)
	if errors.Is(err, errStale) {
		status, answer, err = c.roundTrip(false, idempotent)
	}
	c.large = nil
	return status, answer, err
}

func (c *Conn) encode(method, target, host string, header http.Header, body []byte) {
	c.out = c.out[:0]
	c.out = append(c.out, method...)
	c.out = append(c.out, ' ')
	c.out = append(c.out, target...)
	c.out = append(c.out, " HTTP/1.1\r\nHost: "...)
	c.out = append(c.out, host...)
	c.out = append(c.out, "\r\nUser-Agent: loadgen\r\n"...)
	for k, vs := range header {
		for _, v := range vs {
			c.out = append(c.out, k...)
			c.out = append(c.out, ": "...)
			c.out = append(c.out, v...)
			c.out = append(c.out, "\r\n"...)
		}
	}
	if body == nil {
		c.out = append(c.out, "\r\n"...)
		return
	}
	c.out = append(c.out, "Content-Length: "...)
	c.out = strconv.AppendInt(c.out, int64(len(body)), 10)
	c.out = append(c.out, "\r\n\r\n"...)
	if len(body) <= inlineBody {
		c.out = append(c.out, body...)
		return
	}
	c.large = body
}

// write sends the encoded request: one write, or one writev with a large
// body.
func (c *Conn) write() error {
	if c.large == nil {
		_, err := c.conn.Write(c.out)
		return err
	}
	bufs := net.Buffers{c.out, c.large}
	_, err := bufs.WriteTo(c.conn)
	return err
}

func (c *Conn) roundTrip(reused, idempotent bool) (int, []byte, error) {
	if c.conn == nil {
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(context.Background(), "tcp", c.addr)
		if err != nil {
			return 0, nil, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, nil, c.fail(err)
	}
	if err := c.write(); err != nil {
		if reused {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return 0, nil, c.fail(err)
	}
	status, closeAfter, err := c.readHead(reused && idempotent)
	if err != nil {
		return 0, nil, c.fail(err)
	}
	if closeAfter {
		defer c.Close()
	}
	return status, c.body, nil
}

func (c *Conn) fail(err error) error {
	c.Close()
	return err
}

// Close closes the connection; the next request opens a new one.
func (c *Conn) Close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// readHead reads the status line, the headers and the body into c.body,
// and reports whether the server closes the connection after it.
func (c *Conn) readHead(retryable bool) (status int, closeAfter bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if retryable && len(line) == 0 {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return 0, false, err
	}
	// HTTP/1.x SP 3DIGIT SP reason
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	closeAfter = line[7] == '0' // HTTP/1.0 closes unless told otherwise
	length, chunked := int64(-1), false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("reading headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte{':'})
		if !ok {
			return 0, false, fmt.Errorf("malformed header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified:
	case chunked:
		err = c.readChunked()
	case length >= 0:
		err = c.readN(length)
	default: // delimited by the end of the connection
		closeAfter = true
		var buf bytes.Buffer
		buf.Write(c.body)
		_, err = buf.ReadFrom(io.LimitReader(c.br, c.maxBody()))
		c.body = buf.Bytes()
	}
	return status, closeAfter, err
}

func (c *Conn) maxBody() int64 {
	if c.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return c.MaxBody
}

func (c *Conn) readN(n int64) error {
	if limit := c.maxBody(); int64(len(c.body))+n > limit {
		return fmt.Errorf("answer body of %d bytes: more than the %d this client reads", int64(len(c.body))+n, limit)
	}
	start := len(c.body)
	c.body = slices.Grow(c.body, int(n))[:start+int(n)]
	_, err := io.ReadFull(c.br, c.body[start:])
	return err
}

func (c *Conn) readChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading a chunk size: %w", err)
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte{';'})
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if n == 0 {
			// trailers, then the empty line
			for {
				t, err := c.br.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("reading trailers: %w", err)
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := c.readN(n); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil { // the chunk's CRLF
			return err
		}
	}
}
