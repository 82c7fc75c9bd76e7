package objectserver

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFailedConditionsCarryETag: 412 to If-Match and If-Unmodified-Since,
// 304 to If-None-Match and If-Modified-Since and 416 to a range beyond
// the object answer with the object's ETag (and its other headers), as
// Swift's do: the proxy reads it (a symlink answers 412, not 409, with it).
func TestFailedConditionsCarryETag(t *testing.T) {
	e := newEnv(t)
	body := "conditional body"
	readBody(t, e.put(objPath, body, nil))
	etag := `"` + md5hex(body) + `"`
	past := time.Unix(1e9, 0).UTC().Format(http.TimeFormat)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		method, header, value string
		status                int
		body                  string
	}{
		{"GET", "If-Match", `"other", "nope"`, http.StatusPreconditionFailed, ""},
		{"HEAD", "If-Match", `"other"`, http.StatusPreconditionFailed, ""},
		{"GET", "If-Unmodified-Since", past, http.StatusPreconditionFailed, ""},
		{"GET", "If-None-Match", `"x", ` + etag, http.StatusNotModified, ""},
		{"HEAD", "If-None-Match", "*", http.StatusNotModified, ""},
		{"GET", "If-Modified-Since", future, http.StatusNotModified, ""},
		{"GET", "Range", "bytes=100-200", http.StatusRequestedRangeNotSatisfiable, swobBody(http.StatusRequestedRangeNotSatisfiable)},
	} {
		resp := e.do(tc.method, objPath, nil, map[string]string{"X-Timestamp": e.next(), tc.header: tc.value})
		got := readBody(t, resp)
		if resp.StatusCode != tc.status || resp.Header.Get("Etag") != etag || got != tc.body {
			t.Errorf("%s %s: %s: %d, ETag %q, body %q; want %d, ETag %s, body %q",
				tc.method, tc.header, tc.value, resp.StatusCode, resp.Header.Get("Etag"), got, tc.status, etag, tc.body)
		}
		if resp.StatusCode == http.StatusPreconditionFailed && (resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Content-Length") != "0") {
			t.Errorf("%s %s: 412 with Content-Type %q and Content-Length %q, want the object's and 0",
				tc.method, tc.header, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Length"))
		}
		if tc.status == http.StatusRequestedRangeNotSatisfiable && resp.Header.Get("Content-Range") != "bytes */16" {
			t.Errorf("416 with Content-Range %q, want bytes */16", resp.Header.Get("Content-Range"))
		}
	}
	// HEAD answers the whole object, whatever the Range (swob).
	resp := e.do("HEAD", objPath, nil, map[string]string{"X-Timestamp": e.next(), "Range": "bytes=100-200"})
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != "16" {
		t.Errorf("HEAD with an unsatisfiable range: %d, Content-Length %q; want 200, 16", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
}

// TestSwobBodies: a 201 to PUT has no body, as Swift's; other statuses
// without a message of their own have swob's default HTML body (none to
// HEAD), typed as swob types it.
func TestSwobBodies(t *testing.T) {
	e := newEnv(t)
	resp := e.put(objPath, "x", nil)
	if got := readBody(t, resp); resp.StatusCode != http.StatusCreated || got != "" || resp.Header.Get("Content-Length") != "0" {
		t.Errorf("PUT: %d, body %q, Content-Length %q; want 201, no body, 0", resp.StatusCode, got, resp.Header.Get("Content-Length"))
	}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/sda/1/AUTH_p1/c/missing", http.StatusNotFound, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>"},
		{"HEAD", "/sda/1/AUTH_p1/c/missing", http.StatusNotFound, ""},
		{"POST", objPath, http.StatusAccepted, "<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>"},
		{"BREW", objPath, http.StatusMethodNotAllowed, "<html><h1>Method Not Allowed</h1><p>The method is not allowed for this resource.</p></html>"},
		{"SSYNC", "/sda/1", http.StatusOK, "\r\n"}, // the sender sent nothing: the exchange ends, as Swift
	} {
		resp := e.do(tc.method, tc.path, nil, map[string]string{"X-Timestamp": e.next()})
		got := readBody(t, resp)
		if resp.StatusCode != tc.status || got != tc.body || resp.Header.Get("Content-Type") != swobHTML {
			t.Errorf("%s %s: %d %q (%s); want %d %q (%s)", tc.method, tc.path, resp.StatusCode, got, resp.Header.Get("Content-Type"), tc.status, tc.body, swobHTML)
		}
	}
}

// TestPutConstraints: Swift's object server refuses metadata and names
// beyond swift.conf's limits with its messages; NUL is allowed only where
// Swift's reserved namespace allows it.
func TestPutConstraints(t *testing.T) {
	e := newEnv(t)
	many := map[string]string{}
	for i := range 91 {
		many["X-Object-Meta-M"+strconv.Itoa(i)] = "v"
	}
	large := map[string]string{}
	for i := range 20 {
		large["X-Object-Meta-L"+strconv.Itoa(i)] = strings.Repeat("v", 250)
	}
	for _, tc := range []struct {
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{objPath, map[string]string{"X-Object-Meta-" + strings.Repeat("n", 129): "v"}, 400, "Metadata name too long: x-object-meta-N" + strings.Repeat("n", 128)},
		{objPath, map[string]string{"X-Object-Meta-V": strings.Repeat("v", 257)}, 400, "Metadata value longer than 256: x-object-meta-V"},
		{objPath, many, 400, "Too many metadata items; max 90"},
		{objPath, large, 400, "Total metadata too large; max 4096"},
		{objPath, map[string]string{"X-Object-Meta-V": strings.Repeat("v", 256), "X-Object-Meta-" + strings.Repeat("n", 128): "v"}, 201, ""},
		{"/sda/1/AUTH_p1/c/" + strings.Repeat("l", 1025), nil, 400, "Object name length of 1025 longer than 1024"},
		{"/sda/1/AUTH_p1/c/" + strings.Repeat("l", 1024), nil, 201, ""},
		{"/sda/1/AUTH_p1/c/a%00b", nil, 400, "Invalid reserved-namespace object"},
		{"/sda/1/AUTH_p1/c/%00v", nil, 400, "Invalid reserved-namespace object in user-namespace container"},
		{"/sda/1/AUTH_p1/%00c/%00v", nil, 201, ""},
		{"/sda/1/AUTH_p1/c/a%FFb", nil, 412, "Invalid UTF8 or contains NULL"},
	} {
		resp := e.put(tc.path, "x", tc.hdr)
		if got := readBody(t, resp); resp.StatusCode != tc.status || got != tc.body {
			t.Errorf("PUT %.60s: %d %q; want %d %q", tc.path, resp.StatusCode, got, tc.status, tc.body)
		}
	}
}

// TestDeleteAfterAndWeakTags: a PUT's X-Delete-After becomes the
// X-Delete-At it means, and a weak ETag matches nothing, as in Swift's
// object server.
func TestDeleteAfterAndWeakTags(t *testing.T) {
	e := newEnv(t)
	ts := e.next()
	resp := e.put(objPath, "abc", map[string]string{"X-Timestamp": ts, "X-Delete-After": "7200"})
	readBody(t, resp)
	sec, _ := strconv.ParseFloat(ts, 64)
	resp = e.do("HEAD", objPath, nil, map[string]string{"X-Timestamp": ts})
	readBody(t, resp)
	if want := fmt.Sprintf("%010d", int64(sec)+7200); resp.Header.Get("X-Delete-At") != want {
		t.Errorf("X-Delete-After 7200: X-Delete-At %q, want %s", resp.Header.Get("X-Delete-At"), want)
	}
	for _, after := range []string{"-1", "0", "soon"} {
		resp := e.put(objPath, "abc", map[string]string{"X-Delete-After": after})
		if got := readBody(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(got, "X-Delete-After") {
			t.Errorf("X-Delete-After %s: %d %q, want 400 about X-Delete-After", after, resp.StatusCode, got)
		}
	}
	for _, tc := range []struct {
		ifMatch string
		status  int
	}{
		{`W/"` + md5hex("abc") + `"`, http.StatusPreconditionFailed},
		{md5hex("abc"), http.StatusOK},
		{`"` + md5hex("abc") + `"`, http.StatusOK},
	} {
		resp := e.do("GET", objPath, nil, map[string]string{"If-Match": tc.ifMatch})
		if readBody(t, resp); resp.StatusCode != tc.status {
			t.Errorf("If-Match %s: %d, want %d", tc.ifMatch, resp.StatusCode, tc.status)
		}
	}
}
