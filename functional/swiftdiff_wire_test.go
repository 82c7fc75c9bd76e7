package functional_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// How a step's request body goes on the wire.
const (
	// sendPlain sends Content-Length (unless the step sets one) and the body.
	sendPlain = ""
	// sendChunked sends the body in two chunks, Transfer-Encoding: chunked.
	sendChunked = "chunked"
	// sendExpect sends Expect: 100-continue and the body only after a 100
	// Continue; an early final answer is the step's answer.
	sendExpect = "expect"
	// sendHold declares the step's Content-Length and holds the body back:
	// the answer is whatever comes before answerWait (an early refusal).
	sendHold = "hold"
	// sendNoLength sends neither Content-Length nor Transfer-Encoding.
	sendNoLength = "nolength"
)

// answerWait is how long a step whose body is held back (sendHold, or
// sendExpect before its 100 Continue) waits for an answer. Swift's proxy
// answers early refusals at once, and an answer that waits for the body
// never comes, whatever the wait: the wait only has to cover a loaded
// machine's latency (a 403 to another project's token, which each of the
// filter and the proxy validates with Keystone, once got no answer within
// 4 s at a load average of 30 on 2 cores). How soon the filter passes an early
// answer on is TestRealBinaryFidelity's to bound, against the proxy's own.
const answerWait = 15 * time.Second

// stepTimeout bounds any other exchange.
const stepTimeout = 30 * time.Second

// wireRequest is one request exactly as it goes on the wire: the target
// (path and query) is sent byte for byte, so that NUL, invalid UTF-8 and
// %-encodings reach the server as written.
type wireRequest struct {
	method, target string
	header         [][2]string
	body           []byte
	mode           string
}

// exchange is what came back: status 0 means no answer (err says why),
// interim the 1xx seen before it, if any.
type exchange struct {
	status  int
	interim int
	header  http.Header
	body    []byte
	err     string
}

// roundTrip sends r to the server at base (http://host:port) on a
// connection of its own and reads the answer.
func roundTrip(base string, r wireRequest) exchange {
	u, err := url.Parse(base)
	if err != nil {
		return exchange{err: err.Error()}
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return exchange{err: err.Error()}
	}
	defer conn.Close()
	wait := stepTimeout
	if r.mode == sendHold || r.mode == sendExpect {
		wait = answerWait
	}
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write(head(u.Host, r)); err != nil {
		return exchange{err: "writing the request: " + err.Error()}
	}
	br := bufio.NewReader(conn)
	x := exchange{}
	switch r.mode {
	case sendPlain, sendNoLength:
		if _, err := conn.Write(r.body); err != nil {
			return exchange{err: "writing the body: " + err.Error()}
		}
	case sendChunked:
		if _, err := conn.Write(chunked(r.body)); err != nil {
			return exchange{err: "writing the body: " + err.Error()}
		}
	case sendExpect:
		resp, err := readAnswer(br, r.method)
		if err != nil {
			return exchange{err: "waiting for 100 Continue: " + err.Error()}
		}
		if resp.status != http.StatusContinue {
			return resp
		}
		x.interim = http.StatusContinue
		_ = conn.SetDeadline(time.Now().Add(stepTimeout))
		if _, err := conn.Write(r.body); err != nil {
			return exchange{interim: x.interim, err: "writing the body: " + err.Error()}
		}
	}
	resp, err := readAnswer(br, r.method)
	if err != nil {
		return exchange{interim: x.interim, err: err.Error()}
	}
	resp.interim = x.interim
	return resp
}

// head is the request line and headers.
func head(host string, r wireRequest) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.target, host)
	hasLength := false
	for _, h := range r.header {
		if strings.EqualFold(h[0], "Content-Length") || strings.EqualFold(h[0], "Transfer-Encoding") {
			hasLength = true
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	switch r.mode {
	case sendChunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case sendExpect:
		b.WriteString("Expect: 100-continue\r\n")
		if !hasLength {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
		}
	case sendPlain:
		if !hasLength && (len(r.body) > 0 || r.method == http.MethodPut || r.method == http.MethodPost) {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// chunked is body in Transfer-Encoding: chunked, in two chunks when it has
// two bytes or more, so that the server reassembles them.
func chunked(body []byte) []byte {
	var b bytes.Buffer
	half := len(body) / 2
	for _, part := range [][]byte{body[:half], body[half:]} {
		if len(part) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(part), part)
		}
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// readAnswer reads one response (a 1xx too) and its whole body.
func readAnswer(br *bufio.Reader, method string) (exchange, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			return exchange{}, fmt.Errorf("no answer within the wait")
		}
		return exchange{}, fmt.Errorf("reading the answer: %w", err)
	}
	defer resp.Body.Close()
	x := exchange{status: resp.StatusCode, header: resp.Header}
	// ReadResponse moves Transfer-Encoding out of the header; put it back,
	// so that a chunked answer where Swift sends a length is seen.
	if len(resp.TransferEncoding) > 0 {
		x.header.Set("Transfer-Encoding", strings.Join(resp.TransferEncoding, ", "))
	}
	if resp.StatusCode >= 200 {
		x.body, err = io.ReadAll(resp.Body)
		if err != nil {
			x.err = "reading the body: " + err.Error()
		}
	}
	return x, nil
}
