package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// rawConn is a measured worker's HTTP/1.1 client: one keep-alive
// connection, requests written in one write and answers parsed in place.
// The load generator shares the CPUs with the servers it measures, and
// net/http's Transport costs it two goroutines per connection and a
// channel hand-off each way per request; this does the same exchange on
// the worker's own goroutine. It speaks only what the targets need:
// plain http, Content-Length or chunked answers, or answers delimited by
// the server closing the connection (uwsgi's "Connection: close").
// Set-up and clean-up requests still go through net/http.
type rawConn struct {
	host    string // the URL's host, as given
	addr    string
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	out     []byte // the request being written
	body    []byte // the last answer's body
}

func newRawConn(host, addr string, timeout time.Duration) *rawConn {
	return &rawConn{host: host, addr: addr, timeout: timeout}
}

// errStale is a failure on a reused connection before any answer byte:
// the server closed it while idle, and the request is sent again once
// (when it could not be written, or is idempotent), as net/http does.
var errStale = errors.New("stale keep-alive connection")

// Do sends req and returns the status and the body (valid until the next
// call).
func (c *rawConn) Do(req *http.Request) (int, []byte, error) {
	if err := c.encode(req); err != nil {
		return 0, nil, err
	}
	// A request that reached the server may be retried only if repeating
	// it is harmless (no POST twice); one that could not be written may.
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodDelete
	status, body, err := c.roundTrip(c.conn != nil, idempotent)
	if errors.Is(err, errStale) {
		status, body, err = c.roundTrip(false, idempotent)
	}
	return status, body, err
}

func (c *rawConn) encode(req *http.Request) error {
	c.out = c.out[:0]
	c.out = append(c.out, req.Method...)
	c.out = append(c.out, ' ')
	c.out = append(c.out, req.URL.RequestURI()...)
	c.out = append(c.out, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	c.out = append(c.out, host...)
	c.out = append(c.out, "\r\nUser-Agent: loadgen\r\n"...)
	for k, vs := range req.Header {
		for _, v := range vs {
			c.out = append(c.out, k...)
			c.out = append(c.out, ": "...)
			c.out = append(c.out, v...)
			c.out = append(c.out, "\r\n"...)
		}
	}
	if req.Body == nil || req.Body == http.NoBody {
		c.out = append(c.out, "\r\n"...)
		return nil
	}
	c.out = append(c.out, "Content-Length: "...)
	c.out = strconv.AppendInt(c.out, req.ContentLength, 10)
	c.out = append(c.out, "\r\n\r\n"...)
	n := len(c.out)
	var err error
	buf := bytes.NewBuffer(c.out)
	_, err = buf.ReadFrom(req.Body)
	c.out = buf.Bytes()
	if err == nil && int64(len(c.out)-n) != req.ContentLength {
		err = fmt.Errorf("request body is %d bytes, Content-Length %d", len(c.out)-n, req.ContentLength)
	}
	return err
}

func (c *rawConn) roundTrip(reused, idempotent bool) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
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
	if _, err := c.conn.Write(c.out); err != nil {
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
		defer c.close()
	}
	return status, c.body, nil
}

func (c *rawConn) fail(err error) error {
	c.close()
	return err
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// readHead reads the status line, the headers and the body into c.body,
// and reports whether the server closes the connection after it.
func (c *rawConn) readHead(retryable bool) (status int, closeAfter bool, err error) {
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
		_, err = buf.ReadFrom(io.LimitReader(c.br, 1<<20))
		c.body = buf.Bytes()
	}
	return status, closeAfter, err
}

func (c *rawConn) readN(n int64) error {
	if n > 1<<20 {
		return fmt.Errorf("answer body of %d bytes: more than the load generator reads", n)
	}
	start := len(c.body)
	c.body = slices.Grow(c.body, int(n))[:start+int(n)]
	_, err := io.ReadFull(c.br, c.body[start:])
	return err
}

func (c *rawConn) readChunked() error {
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
