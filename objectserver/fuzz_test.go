package objectserver

import (
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/objectserver/ringhash"
)

func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=5-", "bytes=0-0,2-3,-1", "bytes=5-3", "bytes=", "BYTES = 1 - 2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, length int64) {
		if length < 0 {
			length = -length
		}
		specs, ok := parseRange(h)
		if !ok {
			return
		}
		rs, sat := rangesForLength(specs, length)
		if !sat || length == 0 {
			return // swob serves an empty object whole
		}
		if len(rs) > maxRanges {
			t.Fatalf("%d ranges", len(rs))
		}
		for _, r := range rs {
			if r.Start < 0 || r.End > length || r.Start >= r.End {
				t.Fatalf("range %+v for length %d from %q", r, length, h)
			}
		}
	})
}

func FuzzPath(f *testing.F) {
	for _, p := range []string{"/sda/1/a/c/o", "/sda/1/a/c/o/with/slashes", "/sda/1/a/c", "/sda/1/a/c/o%00", "/sda/1/a/c/%ff", "//1/a/c/o", "/../1/a/c/o", "/sda/1/abc-def"} {
		f.Add(p, "GET")
		f.Add(p, "REPLICATE")
	}
	swift := &ringhash.Conf{Hasher: ringhash.Hasher{Prefix: "p"}, Policies: map[int]ringhash.Policy{0: {Type: "replication"}}}
	s, err := New(Config{Devices: f.TempDir()}, swift, nil, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, method string) {
		if method != "GET" && method != "REPLICATE" && method != "HEAD" && method != "DELETE" {
			method = "GET"
		}
		r := httptest.NewRequest(method, "/", nil)
		r.URL.Path = ""
		r.URL.RawPath = ""
		r.URL.Opaque = ""
		r.URL.Path = path
		req, code, _ := s.parse(r)
		if code == 0 && req == nil {
			t.Fatal("no request and no error")
		}
		if code != 0 {
			return
		}
		for _, part := range []string{req.device, req.partition} {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("bad device/partition %q accepted from %q", part, path)
			}
		}
		// and the whole handler never panics on it
		w := httptest.NewRecorder()
		r.RemoteAddr = "127.0.0.1:40000" // a trusted peer: the handler itself is fuzzed, not the 403
		r.Header.Set("X-Timestamp", "1700000000.00000")
		s.ServeHTTP(w, r)
		if w.Code == 0 || w.Code == http.StatusOK && method == "DELETE" {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func FuzzFooters(f *testing.F) {
	f.Add("--b\r\nX-Document: object metadata\r\nContent-MD5: 99914b932bd37a50b983c5e7c90ae93b\r\n\r\n{}\r\n--b--")
	f.Add("--b\r\nX-Document: object metadata\r\n\r\n{\"a\":1}\r\n--b--")
	f.Fuzz(func(t *testing.T, body string) {
		m, err := readFooterPart(multipart.NewReader(strings.NewReader(body), "b"), true)
		if err == nil && m == nil {
			t.Fatal("nil footers without error")
		}
	})
}
