package functional_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"time"
)

// The whole-path corpus: each case is a short script run identically on
// both targets, as the demo user unless a step says otherwise. Paths are
// after /v1/ (or absolute when they start with /) and sent byte for byte.
// Templates, expanded per target: {c} the case's container name, {acct}
// and {altacct} the demo's and alt's accounts (AUTH_<project>), {demoproj}
// and {altproj} their project ids, {deleteAt} a time an hour ahead, {$v} a
// value saved from an earlier answer (Save: "v=Header-Name").

// diffCase is one script.
type diffCase struct {
	name  string
	steps []diffStep
}

// diffStep is one request of a script.
type diffStep struct {
	M, P string
	// H are the request headers, "Name: value", templates expanded.
	H []string
	// B is the body, templates expanded.
	B string
	// U is who asks: "" the demo user, "alt", "anon" (no token), "bad"
	// (a token Keystone never issued).
	U string
	// Mode is how the body goes on the wire (sendPlain...).
	Mode string
	// Save keeps an answer's header for later steps: "name=Header".
	Save string
	// Wait is a pause before the step (expiry).
	Wait time.Duration
}

const (
	helloMD5 = "5eb63bbbe01eeed093cb22bb8f5acdc3"
	alpha    = "abcdefghijklmnopqrstuvwxyz"
	alphaMD5 = "c3fcd3d76192e4007dfb496cca67e13b"
	aaaaaMD5 = "594f803b380a41396ed63dca39503542"
	bbbbbMD5 = "a21075a36eeddd084e17611a238c7101"
	// maxFileSize is Swift's default max_file_size (5 GiB + 2).
	maxFileSize = 5*1024*1024*1024 + 2
)

// Steps common to many scripts.
var (
	mkC     = diffStep{M: "PUT", P: "{acct}/{c}"}
	putO    = diffStep{M: "PUT", P: "{acct}/{c}/o", H: []string{"Content-Type: text/plain", "X-Object-Meta-Color: red"}, B: "hello world"}
	putA    = diffStep{M: "PUT", P: "{acct}/{c}/a", H: []string{"Content-Type: text/plain"}, B: alpha}
	listing = diffStep{M: "GET", P: "{acct}/{c}?format=json"}
)

// metaHeaders is n metadata headers X-<kind>-Meta-<name> whose names are
// nameLen bytes and values valLen bytes.
func metaHeaders(kind string, n, nameLen, valLen int) []string {
	var h []string
	for i := range n {
		name := fmt.Sprintf("m%03d", i)
		name += strings.Repeat("n", max(0, nameLen-len(name)))
		h = append(h, fmt.Sprintf("X-%s-Meta-%s: %s", kind, name[:nameLen], strings.Repeat("v", valLen)))
	}
	return h
}

// tarOf is a tar archive of the files (each holding its own name), for
// bulk's extract-archive. Its names hold no templates: the body is sent as
// it is, since expanding would break the archive's sizes.
func tarOf(files ...string) string {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, f := range files {
		_ = w.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(f)), Typeflag: tar.TypeReg})
		_, _ = w.Write([]byte(f))
	}
	_ = w.Close()
	return b.String()
}

// diffCorpus is the table of scripts.
func diffCorpus() []diffCase {
	name1024 := strings.Repeat("n", 1024)
	return []diffCase{
		{"account", []diffStep{
			{M: "HEAD", P: "{acct}"}, mkC,
			{M: "GET", P: "{acct}?prefix={c}"}, {M: "GET", P: "{acct}?prefix={c}&format=json"},
			{M: "GET", P: "{acct}?prefix={c}&format=xml"}, {M: "GET", P: "{acct}?prefix={c}", H: []string{"Accept: application/json"}},
			{M: "GET", P: "{acct}?prefix={c}&limit=0"}, {M: "GET", P: "{acct}?prefix={c}&format=bogus"},
			{M: "POST", P: "{acct}", H: []string{"X-Account-Meta-Pathdiff: x"}},
			{M: "POST", P: "{acct}", H: []string{"X-Remove-Account-Meta-Pathdiff: x"}},
			{M: "PUT", P: "{acct}"}, {M: "DELETE", P: "{acct}"}, {M: "OPTIONS", P: "{acct}"},
			{M: "COPY", P: "{acct}"}, {M: "FOO", P: "{acct}"}, {M: "GET", P: "{altacct}"},
		}},
		{"container", []diffStep{
			{M: "HEAD", P: "{acct}/{c}"}, {M: "GET", P: "{acct}/{c}"}, {M: "POST", P: "{acct}/{c}"}, {M: "DELETE", P: "{acct}/{c}"},
			mkC, mkC, {M: "HEAD", P: "{acct}/{c}"}, {M: "GET", P: "{acct}/{c}"}, listing,
			{M: "POST", P: "{acct}/{c}", H: []string{"X-Container-Meta-Color: blue", "X-Container-Read: .r:*"}},
			{M: "HEAD", P: "{acct}/{c}"}, putO, putA,
			{M: "GET", P: "{acct}/{c}"}, listing, {M: "GET", P: "{acct}/{c}?format=xml"},
			{M: "GET", P: "{acct}/{c}?format=json&limit=1"}, {M: "GET", P: "{acct}/{c}?format=json&marker=a"},
			{M: "GET", P: "{acct}/{c}?reverse=on"}, {M: "GET", P: "{acct}/{c}?prefix=o"}, {M: "GET", P: "{acct}/{c}?delimiter=/"},
			{M: "GET", P: "{acct}/{c}?limit=10001"},
			{M: "HEAD", P: "{acct}/{c}"}, {M: "DELETE", P: "{acct}/{c}"},
			{M: "POST", P: "{acct}/{c}", H: []string{"X-Remove-Container-Meta-Color: x"}}, {M: "HEAD", P: "{acct}/{c}"},
			{M: "OPTIONS", P: "{acct}/{c}"}, {M: "COPY", P: "{acct}/{c}"}, {M: "FOO", P: "{acct}/{c}"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "DELETE", P: "{acct}/{c}/a"}, {M: "DELETE", P: "{acct}/{c}"},
			{M: "HEAD", P: "{acct}/{c}"},
		}},
		{"object-methods", []diffStep{
			{M: "PUT", P: "{acct}/{c}/o", B: "x"}, mkC,
			{M: "GET", P: "{acct}/{c}/o"}, {M: "HEAD", P: "{acct}/{c}/o"}, {M: "POST", P: "{acct}/{c}/o"}, {M: "DELETE", P: "{acct}/{c}/o"},
			putO, putO, {M: "HEAD", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"X-Object-Meta-Shape: round"}}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"Content-Type: application/json"}}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"Content-Type: text/html;charset=utf-8", "Content-Disposition: attachment", "Content-Encoding: gzip"}},
			{M: "HEAD", P: "{acct}/{c}/o"}, listing,
			{M: "PUT", P: "{acct}/{c}/e", H: []string{"ETag: " + helloMD5}, B: "hello world"},
			{M: "PUT", P: "{acct}/{c}/e", H: []string{"ETag: 00000000000000000000000000000000"}, B: "hello world"},
			{M: "PUT", P: "{acct}/{c}/page.html", B: "<p>"}, {M: "PUT", P: "{acct}/{c}/noext", B: "x"},
			{M: "PUT", P: "{acct}/{c}/det.txt", H: []string{"Content-Type: application/x-foo", "X-Detect-Content-Type: true"}, B: "x"},
			{M: "HEAD", P: "{acct}/{c}/page.html"}, {M: "HEAD", P: "{acct}/{c}/noext"}, {M: "HEAD", P: "{acct}/{c}/det.txt"},
			{M: "PUT", P: "{acct}/{c}/m", H: []string{"X-Object-Meta-Empty:", "X-Object-Meta-UTF8: \xc3\xa9t\xc3\xa9", "X-Object-Meta-Mixed-Case: V"}, B: "x"},
			{M: "HEAD", P: "{acct}/{c}/m"},
			{M: "GET", P: "{acct}/{c}/o?multipart-manifest=get"}, {M: "GET", P: "{acct}/{c}/o?symlink=get"},
			{M: "OPTIONS", P: "{acct}/{c}/o"}, {M: "OPTIONS", P: "{acct}/{c}/o", H: []string{"Origin: http://example.com", "Access-Control-Request-Method: GET"}},
			{M: "FOO", P: "{acct}/{c}/o"}, {M: "PATCH", P: "{acct}/{c}/o", B: "x"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"}, {M: "DELETE", P: "{acct}/{c}/o"}, {M: "POST", P: "{acct}/{c}/o"},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"Connection: keep-alive"}},
			{M: "GET", P: "{acct}/{c}/page.html", H: []string{"Connection: keep-alive"}},
			{M: "GET", P: "{acct}/{c}/page.html", H: []string{"Connection: close"}},
		}},
		{"conditionals", []diffStep{
			mkC, putO,
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "` + helloMD5 + `"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: ` + helloMD5}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "nope"`}},
			{M: "HEAD", P: "{acct}/{c}/o", H: []string{`If-Match: "nope"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: *`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "nope", "` + helloMD5 + `"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "nope", "other"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-None-Match: "` + helloMD5 + `"`}},
			{M: "HEAD", P: "{acct}/{c}/o", H: []string{`If-None-Match: "` + helloMD5 + `"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-None-Match: *`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-None-Match: "a", "` + helloMD5 + `"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-None-Match: "nope"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"}},
			{M: "HEAD", P: "{acct}/{c}/o", H: []string{"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"If-Modified-Since: not a date"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"}},
			{M: "HEAD", P: "{acct}/{c}/o", H: []string{"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{"If-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "` + helloMD5 + `"`, "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-None-Match: "nope"`, "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"}},
			{M: "GET", P: "{acct}/{c}/missing", H: []string{`If-Match: *`}},
			{M: "GET", P: "{acct}/{c}/missing", H: []string{`If-None-Match: *`}},
			{M: "PUT", P: "{acct}/{c}/o", H: []string{`If-None-Match: *`}, B: "again"},
			{M: "PUT", P: "{acct}/{c}/new", H: []string{`If-None-Match: *`}, B: "new"},
			{M: "PUT", P: "{acct}/{c}/new2", H: []string{`If-None-Match: "x"`}, B: "new"},
			{M: "PUT", P: "{acct}/{c}/o", H: []string{`If-None-Match: *`}, B: "again", Mode: sendExpect},
			{M: "DELETE", P: "{acct}/{c}/o", H: []string{`If-Match: "nope"`}},
			{M: "POST", P: "{acct}/{c}/o", H: []string{`If-Match: "nope"`}},
			{M: "GET", P: "{acct}/{c}/o", H: []string{`If-Match: "nope"`, "Range: bytes=0-1"}},
		}},
		{"ranges", []diffStep{
			mkC, putA,
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-4"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=5-"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=-3"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-0"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=25-25"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=20-100"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=-100"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=26-"}},
			{M: "HEAD", P: "{acct}/{c}/a", H: []string{"Range: bytes=26-"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=100-200"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=-0"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=3-1"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=x-y"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: items=0-1"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-1,4-5"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-1,-2"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-5,3-8"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-1,30-40"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=30-40,50-60"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-0,0-0,0-0"}},
			{M: "HEAD", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-4"}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-4", `If-Range: "` + alphaMD5 + `"`}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-4", `If-Range: "nope"`}},
			{M: "GET", P: "{acct}/{c}/a", H: []string{"Range: bytes=0-4", `If-None-Match: "` + alphaMD5 + `"`}},
			{M: "PUT", P: "{acct}/{c}/empty"},
			{M: "GET", P: "{acct}/{c}/empty", H: []string{"Range: bytes=0-0"}},
			{M: "GET", P: "{acct}/{c}/empty", H: []string{"Range: bytes=-1"}},
			{M: "GET", P: "{acct}/{c}/empty"},
		}},
		{"uploads", []diffStep{
			{M: "PUT", P: "{acct}/{c}/o", B: "hello world", Mode: sendChunked},
			{M: "PUT", P: "{acct}/{c}/o", B: "hello world", Mode: sendExpect},
			{M: "PUT", P: "{acct}/{c}/o", H: []string{"Content-Length: 11"}, Mode: sendHold},
			mkC,
			{M: "PUT", P: "{acct}/{c}/o", B: "hello world", Mode: sendChunked}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "PUT", P: "{acct}/{c}/o2", H: []string{"ETag: " + helloMD5}, B: "hello world", Mode: sendChunked},
			{M: "PUT", P: "{acct}/{c}/o3", H: []string{"ETag: " + aaaaaMD5}, B: "hello world", Mode: sendChunked},
			{M: "PUT", P: "{acct}/{c}/o4", B: "hello world", Mode: sendExpect}, {M: "GET", P: "{acct}/{c}/o4"},
			{M: "PUT", P: "{acct}/{c}/o5", B: "hello world", Mode: sendExpect, U: "anon"},
			{M: "PUT", P: "{acct}/{c}/o5", B: "hello world", Mode: sendExpect, U: "alt"},
			{M: "PUT", P: "{acct}/{c}/o5", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize+1)}, Mode: sendExpect},
			{M: "PUT", P: "{acct}/{c}/o5", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize+1)}, Mode: sendHold},
			{M: "PUT", P: "{acct}/{c}/o5", H: []string{"Content-Length: 11"}, Mode: sendHold, U: "anon"},
			{M: "PUT", P: "{acct}/{c}/o5", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize)}, Mode: sendExpect, U: "bad"},
			{M: "PUT", P: "{acct}/{c}/o6", Mode: sendNoLength},
			{M: "HEAD", P: "{acct}/{c}/o6"},
			{M: "PUT", P: "{acct}/{c}/o7", H: []string{"Content-Length: 0"}},
			{M: "PUT", P: "{acct}/{c}/o8", B: "x"}, {M: "GET", P: "{acct}/{c}/o8"},
			{M: "PUT", P: "{acct}/{c}/o9", H: []string{"Content-Length: abc"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/o9", H: []string{"Content-Length: -1"}},
			{M: "PUT", P: "{acct}/{c}/o9", H: []string{"Transfer-Encoding: gzip"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/o10", H: []string{"Content-Length: 5"}, B: "hello world", Mode: sendChunked},
			{M: "GET", P: "{acct}/{c}/o10"},
			listing,
		}},
		{"metadata-limits", []diffStep{
			mkC, putO,
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 90, 4, 1)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 91, 4, 1)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 1, 128, 1)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 1, 129, 1)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 1, 4, 256)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 1, 4, 257)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 16, 4, 252)},
			{M: "POST", P: "{acct}/{c}/o", H: metaHeaders("Object", 16, 4, 253)},
			{M: "HEAD", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"X-Object-Meta-: v"}},
			{M: "PUT", P: "{acct}/{c}/p", H: metaHeaders("Object", 91, 4, 1), B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: metaHeaders("Object", 1, 129, 1), B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: metaHeaders("Object", 1, 4, 257), B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: metaHeaders("Object", 16, 4, 253), B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: metaHeaders("Object", 16, 4, 252), B: "x"},
			{M: "HEAD", P: "{acct}/{c}/p"},
			{M: "POST", P: "{acct}/{c}", H: metaHeaders("Container", 91, 4, 1)},
			{M: "POST", P: "{acct}/{c}", H: metaHeaders("Container", 1, 129, 1)},
			{M: "POST", P: "{acct}/{c}", H: metaHeaders("Container", 1, 4, 257)},
			{M: "POST", P: "{acct}/{c}", H: metaHeaders("Container", 16, 4, 253)},
			{M: "POST", P: "{acct}/{c}", H: metaHeaders("Container", 16, 4, 252)},
			{M: "PUT", P: "{acct}/{c}x", H: metaHeaders("Container", 91, 4, 1)},
			{M: "HEAD", P: "{acct}/{c}"},
			// The account is shared by the three targets: only what is
			// refused whatever it holds (the limits are the request's).
			{M: "POST", P: "{acct}", H: metaHeaders("Account", 91, 4, 1)},
			{M: "POST", P: "{acct}", H: metaHeaders("Account", 1, 129, 1)},
			{M: "POST", P: "{acct}", H: metaHeaders("Account", 1, 4, 257)},
			{M: "POST", P: "{acct}", H: metaHeaders("Account", 16, 4, 253)},
		}},
		{"names", []diffStep{
			mkC,
			{M: "PUT", P: "{acct}/{c}/" + name1024, B: "x"}, {M: "GET", P: "{acct}/{c}/" + name1024},
			{M: "PUT", P: "{acct}/{c}/" + name1024 + "n", B: "x"},
			{M: "PUT", P: "{acct}/{c}/\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9/\xe2\x9c\x93", B: "u"},
			{M: "GET", P: "{acct}/{c}/%C3%BCn%C3%AFc%C3%B8d%C3%A9/%E2%9C%93"},
			{M: "PUT", P: "{acct}/{c}/a%2Fb", B: "s"}, {M: "GET", P: "{acct}/{c}/a/b"},
			{M: "PUT", P: "{acct}/{c}//double", B: "d"}, {M: "GET", P: "{acct}/{c}//double"}, {M: "GET", P: "{acct}/{c}/double"},
			{M: "PUT", P: "{acct}/{c}/dir/", B: ""}, {M: "GET", P: "{acct}/{c}/dir/"}, {M: "GET", P: "{acct}/{c}/dir"},
			{M: "PUT", P: "{acct}/{c}/sp%20ace+plus%3Fq%23h", B: "q"}, {M: "GET", P: "{acct}/{c}/sp%20ace+plus%3Fq%23h"},
			{M: "PUT", P: "{acct}/{c}/nul%00x", B: "n"}, {M: "GET", P: "{acct}/{c}/nul%00x"},
			{M: "PUT", P: "{acct}/{c}/bad%FFutf", B: "b"}, {M: "GET", P: "{acct}/{c}/bad%FFutf"},
			{M: "PUT", P: "{acct}/{c}/rawbad\xffutf", B: "b"},
			{M: "PUT", P: "{acct}/{c}/.", B: "."}, {M: "PUT", P: "{acct}/{c}/..", B: "."},
			{M: "PUT", P: "{acct}/{c}" + strings.Repeat("c", 256-len("pd-0123456789-a-00"))},
			{M: "PUT", P: "{acct}/{c}" + strings.Repeat("c", 257-len("pd-0123456789-a-00"))},
			{M: "PUT", P: "{acct}/{c}%00n"}, {M: "PUT", P: "{acct}/{c}%FF"},
			listing, {M: "GET", P: "{acct}/{c}?format=xml"}, {M: "GET", P: "{acct}/{c}?prefix=%C3%BC&format=json"},
			{M: "GET", P: "{acct}/{c}?delimiter=/&format=json"},
		}},
		// Malformed request targets, in a container of their own: Swift
		// stores what Go's HTTP server refuses, and the listings would differ.
		{"names-malformed", []diffStep{
			mkC,
			{M: "GET", P: "{acct}/{c}/sp ace"}, {M: "PUT", P: "{acct}/{c}/%", B: "%"}, {M: "PUT", P: "{acct}/{c}/%zz", B: "%"},
			{M: "GET", P: "{acct}/{c}/%25"}, {M: "GET", P: "{acct}/{c}/%25zz"},
			{M: "PUT", P: "{acct}/{c}/raw\x00nul", B: "n"}, {M: "PUT", P: "{acct}/{c}/tab\tname", B: "t"},
		}},
		{"expiry", []diffStep{
			mkC,
			{M: "PUT", P: "{acct}/{c}/o", H: []string{"X-Delete-At: {deleteAt}"}, B: "x"}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"X-Delete-After: 7200"}}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"X-Remove-Delete-At: x"}}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "POST", P: "{acct}/{c}/o", H: []string{"X-Delete-At: 1000000000"}},
			{M: "PUT", P: "{acct}/{c}/p", H: []string{"X-Delete-At: 1000000000"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: []string{"X-Delete-At: soon"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: []string{"X-Delete-After: -1"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: []string{"X-Delete-After: later"}, B: "x"},
			{M: "PUT", P: "{acct}/{c}/p", H: []string{"X-Delete-At: {deleteAt}", "X-Delete-After: 60"}, B: "x"},
			{M: "HEAD", P: "{acct}/{c}/p"},
			{M: "PUT", P: "{acct}/{c}/gone", H: []string{"X-Delete-After: 2"}, B: "x"},
			{M: "GET", P: "{acct}/{c}/gone", Wait: 3 * time.Second}, {M: "HEAD", P: "{acct}/{c}/gone"},
			{M: "POST", P: "{acct}/{c}/gone", H: []string{"X-Object-Meta-A: b"}}, {M: "DELETE", P: "{acct}/{c}/gone"},
		}},
		{"copy", []diffStep{
			mkC, {M: "PUT", P: "{altacct}/{c}", U: "alt", H: []string{"X-Container-Read: {demoproj}:*", "X-Container-Write: {demoproj}:*"}},
			{M: "PUT", P: "{altacct}/{c}/theirs", U: "alt", H: []string{"X-Object-Meta-Who: alt"}, B: "alt's"},
			{M: "PUT", P: "{acct}/{c}/src", H: []string{"Content-Type: text/x-src", "X-Object-Meta-Kept: yes", "Content-Disposition: inline"}, B: "source"},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: {c}/dst"}}, {M: "GET", P: "{acct}/{c}/dst"},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: /{c}/dst2", "X-Object-Meta-New: 1"}}, {M: "HEAD", P: "{acct}/{c}/dst2"},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: {c}/dst3", "X-Fresh-Metadata: true", "X-Object-Meta-New: 1"}}, {M: "HEAD", P: "{acct}/{c}/dst3"},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: {c}/dst4", "Content-Type: text/x-new"}}, {M: "HEAD", P: "{acct}/{c}/dst4"},
			{M: "PUT", P: "{acct}/{c}/xf", H: []string{"X-Copy-From: {c}/src", "Content-Length: 0"}}, {M: "GET", P: "{acct}/{c}/xf"},
			{M: "PUT", P: "{acct}/{c}/xf2", H: []string{"X-Copy-From: /{c}/src", "X-Fresh-Metadata: true", "Content-Length: 0"}}, {M: "HEAD", P: "{acct}/{c}/xf2"},
			{M: "PUT", P: "{acct}/{c}/xf3", H: []string{"X-Copy-From: {c}/src", "Range: bytes=1-3", "Content-Length: 0"}}, {M: "GET", P: "{acct}/{c}/xf3"},
			{M: "PUT", P: "{acct}/{c}/xf4", H: []string{"X-Copy-From: {c}/missing", "Content-Length: 0"}},
			{M: "PUT", P: "{acct}/{c}/xf4", H: []string{"X-Copy-From: nocontainer", "Content-Length: 0"}},
			{M: "PUT", P: "{acct}/{c}/xf4", H: []string{"X-Copy-From: {c}/src"}, B: "body too"},
			{M: "COPY", P: "{acct}/{c}/src"}, {M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: nocontainer"}},
			{M: "COPY", P: "{acct}/{c}/missing", H: []string{"Destination: {c}/dst5"}},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: {c}/dst6", `If-Match: "nope"`}},
			{M: "COPY", P: "{acct}/{c}/src", H: []string{"Destination: {c}/ours", "Destination-Account: {altacct}"}},
			{M: "GET", P: "{altacct}/{c}/ours", U: "alt"},
			{M: "PUT", P: "{acct}/{c}/fromalt", H: []string{"X-Copy-From: {c}/theirs", "X-Copy-From-Account: {altacct}", "Content-Length: 0"}},
			{M: "GET", P: "{acct}/{c}/fromalt"},
			{M: "PUT", P: "{acct}/{c}/fromalt2", H: []string{"X-Copy-From: {c}/theirs", "X-Copy-From-Account: {altacct}", "X-Fresh-Metadata: true", "Content-Length: 0"}},
			{M: "HEAD", P: "{acct}/{c}/fromalt2"},
			{M: "COPY", P: "{altacct}/{c}/theirs", H: []string{"Destination: {c}/mine", "Destination-Account: {acct}"}},
			{M: "HEAD", P: "{acct}/{c}/mine"},
			{M: "PUT", P: "{altacct}/{c}/nope", U: "alt", H: []string{"X-Copy-From: {c}/src", "X-Copy-From-Account: {acct}", "Content-Length: 0"}},
			listing,
		}},
		{"slo", []diffStep{
			mkC, {M: "PUT", P: "{acct}/{c}/s1", B: "aaaaa"}, {M: "PUT", P: "{acct}/{c}/s2", B: "bbbbb"},
			{M: "PUT", P: "{acct}/{c}/m?multipart-manifest=put", H: []string{"Content-Type: text/x-slo", "X-Object-Meta-Big: yes"},
				B: `[{"path":"/{c}/s1","etag":"` + aaaaaMD5 + `","size_bytes":5},{"path":"/{c}/s2","etag":null,"size_bytes":null}]`},
			{M: "GET", P: "{acct}/{c}/m"}, {M: "HEAD", P: "{acct}/{c}/m"},
			{M: "GET", P: "{acct}/{c}/m?multipart-manifest=get"}, {M: "GET", P: "{acct}/{c}/m?multipart-manifest=get&format=raw"},
			{M: "HEAD", P: "{acct}/{c}/m?multipart-manifest=get"},
			{M: "GET", P: "{acct}/{c}/m", H: []string{"Range: bytes=3-7"}}, {M: "GET", P: "{acct}/{c}/m", H: []string{"Range: bytes=-2"}},
			{M: "GET", P: "{acct}/{c}/m", H: []string{"Range: bytes=0-1,8-9"}}, {M: "GET", P: "{acct}/{c}/m", H: []string{"Range: bytes=10-"}},
			{M: "GET", P: "{acct}/{c}/m", H: []string{`If-None-Match: "3f39a134e77e08c106b9726a8ae7cc0c"`}},
			{M: "POST", P: "{acct}/{c}/m", H: []string{"Content-Type: text/x-changed"}}, {M: "HEAD", P: "{acct}/{c}/m"},
			{M: "PUT", P: "{acct}/{c}/bad?multipart-manifest=put", B: `[{"path":"/{c}/s1","etag":"` + bbbbbMD5 + `"}]`},
			{M: "PUT", P: "{acct}/{c}/bad?multipart-manifest=put", B: `[{"path":"/{c}/missing"}]`},
			{M: "PUT", P: "{acct}/{c}/bad?multipart-manifest=put", B: `not json`},
			{M: "PUT", P: "{acct}/{c}/bad?multipart-manifest=put", B: `[{"path":"/{c}/s1","range":"9-10"}]`},
			{M: "PUT", P: "{acct}/{c}/r?multipart-manifest=put", B: `[{"path":"/{c}/s1","range":"1-2"},{"path":"/{c}/s2","range":"-1"}]`},
			{M: "GET", P: "{acct}/{c}/r"},
			{M: "PUT", P: "{acct}/{c}/s1", B: "AAAAA"}, {M: "GET", P: "{acct}/{c}/m"},
			listing, {M: "GET", P: "{acct}/{c}?format=xml"},
			{M: "DELETE", P: "{acct}/{c}/m?multipart-manifest=delete", H: []string{"Accept: application/json"}},
			{M: "GET", P: "{acct}/{c}/s2"},
		}},
		{"dlo", []diffStep{
			mkC, {M: "PUT", P: "{acct}/{c}/seg/1", B: "aaa"}, {M: "PUT", P: "{acct}/{c}/seg/2", B: "bbb"},
			{M: "PUT", P: "{acct}/{c}/dlo", H: []string{"X-Object-Manifest: {c}/seg/", "Content-Type: text/x-dlo"}},
			{M: "GET", P: "{acct}/{c}/dlo"}, {M: "HEAD", P: "{acct}/{c}/dlo"},
			{M: "GET", P: "{acct}/{c}/dlo", H: []string{"Range: bytes=2-4"}}, {M: "GET", P: "{acct}/{c}/dlo", H: []string{"Range: bytes=0-0,5-5"}},
			{M: "GET", P: "{acct}/{c}/dlo?multipart-manifest=get"}, {M: "HEAD", P: "{acct}/{c}/dlo?multipart-manifest=get"},
			{M: "POST", P: "{acct}/{c}/dlo", H: []string{"X-Object-Manifest: {c}/seg/2"}}, {M: "GET", P: "{acct}/{c}/dlo"},
			{M: "PUT", P: "{acct}/{c}/dlo2", H: []string{"X-Object-Manifest: no-slash"}},
			{M: "PUT", P: "{acct}/{c}/dlo3", H: []string{"X-Object-Manifest: {c}/none/"}}, {M: "GET", P: "{acct}/{c}/dlo3"},
			{M: "PUT", P: "{acct}/{c}/dlo4", H: []string{"X-Object-Manifest: {c}/seg/"}, B: "body"}, {M: "GET", P: "{acct}/{c}/dlo4"},
			listing,
		}},
		{"symlinks", []diffStep{
			mkC, putO,
			{M: "PUT", P: "{acct}/{c}/l", H: []string{"X-Symlink-Target: {c}/o"}},
			{M: "GET", P: "{acct}/{c}/l"}, {M: "HEAD", P: "{acct}/{c}/l"},
			{M: "GET", P: "{acct}/{c}/l?symlink=get"}, {M: "HEAD", P: "{acct}/{c}/l?symlink=get"},
			{M: "GET", P: "{acct}/{c}/l", H: []string{"Range: bytes=0-4"}},
			{M: "GET", P: "{acct}/{c}/l", H: []string{`If-Match: "nope"`}},
			{M: "PUT", P: "{acct}/{c}/sl", H: []string{"X-Symlink-Target: {c}/o", "X-Symlink-Target-Etag: " + helloMD5}},
			{M: "GET", P: "{acct}/{c}/sl"}, {M: "HEAD", P: "{acct}/{c}/sl?symlink=get"},
			{M: "PUT", P: "{acct}/{c}/sl2", H: []string{"X-Symlink-Target: {c}/o", "X-Symlink-Target-Etag: " + aaaaaMD5}},
			{M: "PUT", P: "{acct}/{c}/sl3", H: []string{"X-Symlink-Target: {c}/missing", "X-Symlink-Target-Etag: " + aaaaaMD5}},
			{M: "PUT", P: "{acct}/{c}/dang", H: []string{"X-Symlink-Target: {c}/missing"}}, {M: "GET", P: "{acct}/{c}/dang"},
			{M: "PUT", P: "{acct}/{c}/bad", H: []string{"X-Symlink-Target: nocontainer"}},
			{M: "PUT", P: "{acct}/{c}/bad", H: []string{"X-Symlink-Target: {c}/o"}, B: "body"},
			{M: "PUT", P: "{acct}/{c}/chain", H: []string{"X-Symlink-Target: {c}/l"}}, {M: "GET", P: "{acct}/{c}/chain"},
			{M: "POST", P: "{acct}/{c}/l", H: []string{"X-Object-Meta-On: link"}}, {M: "HEAD", P: "{acct}/{c}/l?symlink=get"},
			{M: "PUT", P: "{altacct}/{c}", U: "alt", H: []string{"X-Container-Read: {demoproj}:*"}},
			{M: "PUT", P: "{altacct}/{c}/t", U: "alt", B: "theirs"},
			{M: "PUT", P: "{acct}/{c}/xl", H: []string{"X-Symlink-Target: {c}/t", "X-Symlink-Target-Account: {altacct}"}},
			{M: "GET", P: "{acct}/{c}/xl"}, {M: "HEAD", P: "{acct}/{c}/xl?symlink=get"},
			{M: "PUT", P: "{acct}/{c}/o", B: "changed"}, {M: "GET", P: "{acct}/{c}/sl"}, {M: "GET", P: "{acct}/{c}/l"},
			listing, {M: "GET", P: "{acct}/{c}?format=xml"},
		}},
		{"versions-location", []diffStep{
			{M: "PUT", P: "{acct}/{c}-v"}, {M: "PUT", P: "{acct}/{c}", H: []string{"X-Versions-Location: {c}-v"}},
			{M: "HEAD", P: "{acct}/{c}"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v1"}, {M: "PUT", P: "{acct}/{c}/o", B: "v2"}, {M: "PUT", P: "{acct}/{c}/o", B: "v3"},
			{M: "GET", P: "{acct}/{c}-v?format=json"}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}-v?format=json"},
			{M: "PUT", P: "{acct}/{c}", H: []string{"X-Versions-Location: {c}-v", "X-History-Location: {c}-v"}},
			{M: "POST", P: "{acct}/{c}", H: []string{"X-Remove-Versions-Location: x"}}, {M: "HEAD", P: "{acct}/{c}"},
		}},
		{"history-location", []diffStep{
			{M: "PUT", P: "{acct}/{c}-h"}, {M: "PUT", P: "{acct}/{c}", H: []string{"X-History-Location: {c}-h"}},
			{M: "HEAD", P: "{acct}/{c}"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v1"}, {M: "PUT", P: "{acct}/{c}/o", B: "v2"},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}-h?format=json"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v3"}, {M: "GET", P: "{acct}/{c}/o"},
			{M: "PUT", P: "{acct}/{c}2", H: []string{"X-History-Location: {c}-missing"}},
			{M: "PUT", P: "{acct}/{c}2/o", B: "v1"}, {M: "PUT", P: "{acct}/{c}2/o", B: "v2"},
		}},
		{"object-versioning", []diffStep{
			{M: "PUT", P: "{acct}/{c}", H: []string{"X-Versions-Enabled: true"}}, {M: "HEAD", P: "{acct}/{c}"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v1", Save: "v1=X-Object-Version-Id"}, {M: "PUT", P: "{acct}/{c}/o", B: "v2"},
			{M: "GET", P: "{acct}/{c}/o"}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "GET", P: "{acct}/{c}?versions&format=json"}, {M: "GET", P: "{acct}/{c}?versions"},
			{M: "GET", P: "{acct}/{c}/o?version-id={$v1}"}, {M: "HEAD", P: "{acct}/{c}/o?version-id={$v1}"},
			{M: "GET", P: "{acct}/{c}/o?version-id=1234567890.12345"}, {M: "GET", P: "{acct}/{c}/o?version-id=bogus"},
			{M: "POST", P: "{acct}/{c}/o?version-id={$v1}", H: []string{"X-Object-Meta-Old: yes"}},
			{M: "DELETE", P: "{acct}/{c}/o"}, {M: "GET", P: "{acct}/{c}/o"}, {M: "HEAD", P: "{acct}/{c}/o"},
			{M: "GET", P: "{acct}/{c}?versions&format=json"},
			{M: "GET", P: "{acct}/{c}/o?version-id={$v1}"},
			{M: "DELETE", P: "{acct}/{c}/o?version-id={$v1}"}, {M: "GET", P: "{acct}/{c}/o?version-id={$v1}"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v3", H: []string{"X-Versions-Location: x"}},
			{M: "POST", P: "{acct}/{c}", H: []string{"X-Versions-Enabled: false"}}, {M: "HEAD", P: "{acct}/{c}"},
			{M: "PUT", P: "{acct}/{c}/o", B: "v4"}, {M: "GET", P: "{acct}/{c}?versions&format=json"},
			{M: "PUT", P: "{acct}/{c}", H: []string{"X-Versions-Enabled: true", "X-Versions-Location: {c}-v"}},
			{M: "DELETE", P: "{acct}/{c}"},
		}},
		{"lengths", []diffStep{
			mkC,
			{M: "PUT", P: "{acct}/{c}/empty", H: []string{"Content-Length: 0"}}, {M: "HEAD", P: "{acct}/{c}/empty"}, {M: "GET", P: "{acct}/{c}/empty"},
			{M: "PUT", P: "{acct}/{c}/tiny", B: "t"}, {M: "GET", P: "{acct}/{c}/tiny"},
			{M: "PUT", P: "{acct}/{c}/big", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize+1)}, Mode: sendHold},
			{M: "PUT", P: "{acct}/{c}/big", H: []string{fmt.Sprintf("Content-Length: %d", int64(1)<<40)}, Mode: sendHold},
			{M: "PUT", P: "{acct}/{c}/big", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize)}, Mode: sendExpect},
			{M: "PUT", P: "{acct}/{c}/big", H: []string{fmt.Sprintf("Content-Length: %d", maxFileSize)}, Mode: sendHold},
			{M: "PUT", P: "{acct}/{c}/big", H: []string{"Content-Length: 99999999999999999999999"}, Mode: sendHold},
			{M: "HEAD", P: "{acct}/{c}/big"},
			listing,
		}},
		{"auth", []diffStep{
			mkC, putO,
			{M: "GET", P: "{acct}/{c}/o", U: "anon"}, {M: "HEAD", P: "{acct}/{c}/o", U: "anon"},
			{M: "GET", P: "{acct}/{c}/o", U: "bad"}, {M: "GET", P: "{acct}/{c}", U: "bad"},
			{M: "GET", P: "{acct}/{c}/o", U: "alt"}, {M: "PUT", P: "{acct}/{c}/o", U: "alt", B: "x"},
			{M: "DELETE", P: "{acct}/{c}/o", U: "alt"}, {M: "GET", P: "{acct}", U: "alt"},
			{M: "POST", P: "{acct}/{c}", H: []string{"X-Container-Read: .r:*"}},
			{M: "GET", P: "{acct}/{c}/o", U: "anon"}, {M: "GET", P: "{acct}/{c}", U: "anon"},
			{M: "GET", P: "/info"}, {M: "GET", P: "/info", U: "anon"}, {M: "GET", P: "/healthcheck", U: "anon"},
			{M: "GET", P: "/v1"}, {M: "GET", P: "/v2/{acct}/{c}/o"}, {M: "GET", P: "/"},
			{M: "GET", P: "OTHER_x/{c}/o"},
		}},
		{"bulk", []diffStep{
			mkC, putO, {M: "PUT", P: "{acct}/{c}/a", B: "a"},
			{M: "PUT", P: "{acct}/{c}?extract-archive=tar", H: []string{"Accept: application/json"}, B: tarOf("x/1", "x/2")},
			{M: "GET", P: "{acct}/{c}/x/2"}, listing,
			{M: "POST", P: "{acct}?bulk-delete", H: []string{"Accept: application/json", "Content-Type: text/plain"}, B: "/{c}/o\n/{c}/a\n/{c}/missing\n"},
			{M: "DELETE", P: "{acct}?bulk-delete", H: []string{"Accept: text/plain", "Content-Type: text/plain"}, B: "/{c}/x/1\n"},
			listing,
		}},
	}
}
