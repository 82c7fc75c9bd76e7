package objectserver

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

// mphase is one multiphase PUT as Swift's proxy sends it to an EC node
// (proxy/controllers/obj.py MIMEPutter), on a raw connection: headers,
// the 100 Continue with the offered features, the body and footer
// documents, the second 100 Continue, then the commit document.
type mphase struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

const mimeBoundary = "arcaboundary"

func startMultiphase(t *testing.T, e *env, path string, hdr map[string]string) (*mphase, http.Header) {
	t.Helper()
	m := openMultiphase(t, e, path, hdr)
	return m, m.status(100)
}

// openMultiphase sends a multiphase PUT's head.
func openMultiphase(t *testing.T, e *env, path string, hdr map[string]string) *mphase {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n", path)
	h := map[string]string{
		"X-Timestamp": e.next(), "Content-Type": "text/plain", "X-Backend-Storage-Policy-Index": "2",
		"X-Backend-Obj-Metadata-Footer": "yes", "X-Backend-Obj-Multiphase-Commit": "yes",
		"X-Backend-Obj-Multipart-Mime-Boundary": mimeBoundary,
	}
	for k, v := range hdr {
		h[k] = v
	}
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return &mphase{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// status reads one response head and checks its status.
func (m *mphase) status(want int) http.Header {
	m.t.Helper()
	resp, err := http.ReadResponse(m.br, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		m.t.Fatalf("status %d, want %d: %q", resp.StatusCode, want, body)
	}
	return resp.Header
}

func (m *mphase) chunk(s string) {
	m.t.Helper()
	if _, err := fmt.Fprintf(m.conn, "%x\r\n%s\r\n", len(s), s); err != nil {
		m.t.Fatal(err)
	}
}

// bodyAndFooter sends the fragment archive and the footer, ending with
// the boundary line the proxy sends before waiting for the second 100.
func (m *mphase) bodyAndFooter(archive string, footer map[string]string) {
	m.t.Helper()
	m.chunk("--" + mimeBoundary + "\r\nX-Document: object body\r\n\r\n" + archive)
	js, _ := json.Marshal(footer)
	sum := md5.Sum(js)
	m.chunk("\r\n--" + mimeBoundary + "\r\nX-Document: object metadata\r\nContent-MD5: " + hex.EncodeToString(sum[:]) + "\r\n\r\n" + string(js) + "\r\n--" + mimeBoundary + "\r\n")
	m.chunk("") // the proxy ends the chunked body here, and starts another for the commit
}

func (m *mphase) commit(doc string) {
	m.t.Helper()
	m.chunk("X-Document: " + doc + "\r\n\r\nput_commit_confirmation\r\n--" + mimeBoundary + "--")
	m.chunk("")
}

// fragFiles lists the .data files of the test object (policy 2).
func (e *env) ecFiles() []string {
	var out []string
	for _, f := range e.files() {
		if strings.Contains(f, "objects-2") && strings.HasSuffix(f, ".data") {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

func TestMultiphasePut(t *testing.T) {
	e := newEnv(t)
	archive := strings.Repeat("fragment archive bytes PLAINFRAG ", 500)
	footer := map[string]string{
		"X-Object-Sysmeta-Ec-Frag-Index": "3", "Etag": md5hex(archive),
		"X-Object-Sysmeta-Ec-Etag": md5hex("the whole object"), "X-Object-Sysmeta-Ec-Content-Length": "77",
	}
	m, h := startMultiphase(t, e, objPath, nil)
	if h.Get("X-Obj-Multiphase-Commit") != "yes" || h.Get("X-Obj-Metadata-Footer") != "yes" {
		t.Fatalf("100 Continue offers %v", h)
	}
	m.bodyAndFooter(archive, footer)
	// the second 100 Continue repeats the offer, as eventlet's
	if h := m.status(100); h.Get("X-Obj-Multiphase-Commit") != "yes" || h.Get("X-Obj-Metadata-Footer") != "yes" {
		t.Fatalf("second 100 Continue offers %v", h)
	}
	// Between the phases the archive is on disk, not durable.
	files := e.ecFiles()
	if len(files) != 1 || !strings.HasSuffix(files[0], "#3.data") {
		t.Fatalf("before the commit: %v", files)
	}
	resp := e.do("GET", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2"})
	if readBody(t, resp); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("non-durable GET: %d", resp.StatusCode)
	}
	resp = e.do("GET", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Fragment-Preferences": "[]"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != archive || resp.Header.Get("X-Backend-Durable-Timestamp") != "" {
		t.Fatalf("non-durable GET with preferences: %d, durable %q", resp.StatusCode, resp.Header.Get("X-Backend-Durable-Timestamp"))
	}
	m.commit("put commit")
	m.status(http.StatusCreated)
	files = e.ecFiles()
	if len(files) != 1 || !strings.HasSuffix(files[0], "#3#d.data") {
		t.Fatalf("after the commit: %v", files)
	}
	resp = e.do("GET", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2", "Range": "bytes=100-5000"})
	body := readBody(t, resp)
	ts := strings.SplitN(files[0], "#", 2)[0]
	if resp.StatusCode != http.StatusPartialContent || body != archive[100:5001] ||
		resp.Header.Get("X-Backend-Durable-Timestamp") != ts || resp.Header.Get("X-Backend-Data-Timestamp") != ts ||
		resp.Header.Get("X-Backend-Fragments") != `{"`+ts+`": [3]}` ||
		resp.Header.Get("X-Object-Sysmeta-Ec-Etag") != md5hex("the whole object") || resp.Header.Get("X-Object-Sysmeta-Ec-Frag-Index") != "3" {
		t.Fatalf("durable GET: %d %v", resp.StatusCode, resp.Header)
	}
	e.assertNoPlaintext("PLAINFRAG")
	// The whole object's MD5 is sealed on disk, never in clear.
	for _, f := range e.files() {
		if !strings.HasSuffix(f, ".data") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := diskfile.ReadRawMetadata(fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range raw.Values {
			if strings.EqualFold(k, "X-Object-Sysmeta-Ec-Etag") || strings.Contains(v, md5hex("the whole object")) {
				t.Fatalf("EC ETag in clear on disk: %s: %s", k, v)
			}
		}
		if raw.Values["X-Object-Sysmeta-Arca-Ec-Etag"] == "" {
			t.Fatalf("no sealed EC ETag: %v", raw.Values)
		}
	}
	// A POST answers the EC ETag opened, with the rest of the sysmeta.
	resp = e.do("POST", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Object-Meta-A": "b", "X-Timestamp": e.next()})
	if readBody(t, resp); resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Object-Sysmeta-Ec-Etag") != md5hex("the whole object") {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
	// X-Backend-Etag-Is-At finds the opened value, as the proxy's
	// conditional EC GETs ask.
	for _, c := range []struct {
		hdr, val string
		want     int
	}{
		{"If-Match", md5hex("the whole object"), http.StatusOK},
		{"If-Match", md5hex(archive), http.StatusPreconditionFailed},
		{"If-None-Match", md5hex("the whole object"), http.StatusNotModified},
	} {
		resp := e.do("GET", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2", c.hdr: c.val, "X-Backend-Etag-Is-At": "X-Object-Sysmeta-Ec-Etag"})
		if readBody(t, resp); resp.StatusCode != c.want {
			t.Fatalf("%s %s: %d, want %d", c.hdr, c.val, resp.StatusCode, c.want)
		}
	}
}

func TestMultiphasePutRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		footer map[string]string
		commit string
		want   int
	}{
		{"no frag index", map[string]string{}, "", http.StatusBadRequest},
		{"frag index out of range", map[string]string{"X-Object-Sysmeta-Ec-Frag-Index": "6"}, "", http.StatusBadRequest},
		{"wrong commit document", map[string]string{"X-Object-Sysmeta-Ec-Frag-Index": "1"}, "something else", http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m, _ := startMultiphase(t, e, objPath, nil)
			m.bodyAndFooter("archive", tc.footer)
			if tc.commit == "" {
				m.status(tc.want)
				if files := e.ecFiles(); len(files) != 0 {
					t.Fatalf("files left: %v", files)
				}
				return
			}
			m.status(100)
			m.commit(tc.commit)
			m.status(tc.want)
			for _, f := range e.ecFiles() {
				if strings.Contains(f, "#d") {
					t.Fatalf("made durable without a commit: %s", f)
				}
			}
		})
	}
}

// TestMultiphasePutWithoutCommit: a proxy that never confirms gets 408
// after client_timeout, and the archive stays non-durable (never served
// without fragment preferences).
func TestMultiphasePutWithoutCommit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientTimeout = 300 * time.Millisecond })
	m, _ := startMultiphase(t, e, objPath, nil)
	m.bodyAndFooter("archive", map[string]string{"X-Object-Sysmeta-Ec-Frag-Index": "1"})
	m.status(100)
	m.status(http.StatusRequestTimeout)
	files := e.ecFiles()
	if len(files) != 1 || strings.Contains(files[0], "#d") {
		t.Fatalf("files %v", files)
	}
	resp := e.do("GET", objPath, nil, map[string]string{"X-Backend-Storage-Policy-Index": "2"})
	if readBody(t, resp); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

// TestMultiphasePutMalformed: what Swift's object server answers to a
// multiphase PUT that departs from the proxy's (backenddiff_ec_test.go
// compares them with Swift's own): its messages, typed as swob types
// them, and nothing made durable.
func TestMultiphasePutMalformed(t *testing.T) {
	footer := func(fi string) string {
		js := `{"X-Object-Sysmeta-Ec-Frag-Index": "` + fi + `"}`
		sum := md5.Sum([]byte(js))
		return "\r\n--" + mimeBoundary + "\r\nX-Document: object metadata\r\nContent-MD5: " + hex.EncodeToString(sum[:]) + "\r\n\r\n" + js + "\r\n--" + mimeBoundary
	}
	head := "--" + mimeBoundary + "\r\nX-Document: object body\r\n\r\n"
	for _, tc := range []struct {
		name      string
		hdr       map[string]string
		body      string
		continue2 bool // a second 100 Continue comes before the answer
		want      int
		msg       string
	}{
		{"footer boundary closes the body", nil, head + "archive" + footer("1") + "--\r\n", true, http.StatusBadRequest, "couldn't find PUT commit MIME doc"},
		{"no footer", nil, head + "archive\r\n--" + mimeBoundary + "--\r\n", false, http.StatusBadRequest, "couldn't find footer MIME doc"},
		{"fragments of another index", nil, head + string(libecArchive(1, 3, 64, 10, "F")) + footer("3") + "\r\n", false, http.StatusBadRequest, "Fragment archive of index 1 sent as index 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m, _ := startMultiphase(t, e, objPath, tc.hdr)
			m.chunk(tc.body)
			m.chunk("")
			if tc.continue2 {
				if h := m.status(100); h.Get("X-Obj-Multiphase-Commit") != "yes" {
					t.Fatalf("second 100 Continue: %v", h)
				}
			}
			resp, err := http.ReadResponse(m.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || string(body) != tc.msg || resp.Header.Get("Content-Type") != swobHTML && !strings.HasPrefix(tc.msg, "Fragment") {
				t.Fatalf("%d %q (%s), want %d %q", resp.StatusCode, body, resp.Header.Get("Content-Type"), tc.want, tc.msg)
			}
			for _, f := range e.ecFiles() {
				if strings.Contains(f, "#d") {
					t.Fatalf("made durable: %s", f)
				}
			}
		})
	}
	// No boundary: 400 before the 100 Continue, as Swift.
	e := newEnv(t)
	m := openMultiphase(t, e, objPath, map[string]string{"X-Backend-Obj-Multipart-Mime-Boundary": ""})
	resp, err := http.ReadResponse(m.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusBadRequest || string(body) != "no MIME boundary" {
		t.Fatalf("no boundary: %d %q", resp.StatusCode, body)
	}
}

// TestTailReader: the closing boundary is found at the end of a first
// body read in pieces of any size, and only there.
func TestTailReader(t *testing.T) {
	body := strings.Repeat("x", 1000) + "\r\n--" + mimeBoundary + "--\r\n"
	for _, step := range []int{1, 7, 100, 4096} {
		for _, closed := range []bool{true, false} {
			b := body
			if !closed {
				b = strings.Repeat("x", 1000) + "\r\n--" + mimeBoundary + "--\r\n--" + mimeBoundary + "\r\n"
			}
			p := &putParams{boundary: mimeBoundary, tail: &tailReader{r: iotest.OneByteReader(strings.NewReader(b))}}
			if step > 1 {
				p.tail.r = strings.NewReader(b)
			}
			buf := make([]byte, step)
			for {
				if _, err := p.tail.Read(buf); err != nil {
					break
				}
			}
			if p.closedAfterFooter() != closed {
				t.Errorf("reads of %d, closed %v: closedAfterFooter %v", step, closed, !closed)
			}
		}
	}
}
