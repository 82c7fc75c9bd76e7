package swiftfilter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// listingKeys adds listing keys to fakeKeys: project demo's keys "k1" and
// "k2" ("gone" destroyed), derived as the key service derives them.
type listingKeys struct {
	fakeKeys
	down    atomic.Bool
	fetches atomic.Int64
}

func testProjectKey(id string) objcrypt.ProjectKey {
	return objcrypt.ProjectKey{ID: id, Key: bytes.Repeat([]byte(id[:1]), 32)}
}

func (l *listingKeys) ListingKey(_ context.Context, project, id string) ([]byte, error) {
	l.fetches.Add(1)
	if l.down.Load() {
		return nil, fmt.Errorf("fake: %w", keyclient.ErrUnavailable)
	}
	switch {
	case project != "demo":
		return nil, fmt.Errorf("fake: %w", keyclient.ErrNotFound)
	case id == "gone":
		return nil, fmt.Errorf("fake: %w", keyclient.ErrDestroyed)
	}
	return objcrypt.DeriveListingKey(testProjectKey(id))
}

// seal seals value for field of /AUTH_demo/c/<name> under key id.
func seal(t testing.TB, id, name, field, value string) string {
	t.Helper()
	lk, err := objcrypt.DeriveListingKey(testProjectKey(id))
	if err != nil {
		t.Fatal(err)
	}
	c, err := objcrypt.NewListingCipher(id, lk)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Seal("/AUTH_demo/c/"+name, field, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// listingHarness is a filter in front of an upstream that answers every
// GET with body, as the proxy would answer a listing.
type listingHarness struct {
	keys   *listingKeys
	filter *httptest.Server
	logs   *syncBuffer
}

func newListingHarness(t *testing.T, contentType string, body func() []byte) *listingHarness {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body()
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("X-Container-Object-Count", "3")
		_, _ = w.Write(b)
	}))
	t.Cleanup(up.Close)
	h := &listingHarness{keys: &listingKeys{}, logs: &syncBuffer{}}
	f, err := New(Config{Upstream: up.URL, ResellerPrefixes: []string{"AUTH"}},
		Deps{Tokens: &fakeTokens{}, Keys: h.keys, Log: zerolog.New(h.logs)})
	if err != nil {
		t.Fatal(err)
	}
	h.filter = httptest.NewServer(f)
	t.Cleanup(h.filter.Close)
	return h
}

func (h *listingHarness) get(t *testing.T, path string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.filter.URL+path, nil)
	req.Header.Set("X-Auth-Token", "tok-demo")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

const (
	md5A = "0123456789abcdef0123456789abcdef"
	md5B = "fedcba9876543210fedcba9876543210"
	md5C = "00112233445566778899aabbccddeeff"
)

// jsonListing is a listing as Swift's proxy writes it (json.dumps, SLO's
// and symlink's fields), with the sealed values of sealed, else plain.
func jsonListing(t testing.TB, sealed bool) []byte {
	v := func(id, name, field, value string) string {
		if !sealed {
			return value
		}
		return seal(t, id, name, field, value)
	}
	return []byte(`[{"subdir": "dir/"}, ` +
		`{"bytes": 5, "hash": "` + v("k1", "a.txt", "etag", md5A) + `", "name": "a.txt", "content_type": "text/plain", "last_modified": "2026-01-01T00:00:00.000000"}, ` +
		`{"bytes": 0, "hash": "` + md5C + `", "name": "old \"quoted\" \\ obj", "content_type": "text/plain", "last_modified": "2026-01-01T00:00:00.000000"}, ` +
		`{"hash": "` + v("k2", "été/ü", "etag", md5B) + `", "name": "\u00e9t\u00e9/\u00fc", "bytes": 7, "content_type": "a/b", "last_modified": "x"}, ` +
		`{"bytes": 300, "hash": "` + v("k1", "slo", "etag", md5B) + `", "name": "slo", "content_type": "application/octet-stream;swift_bytes=3", "last_modified": "x", "slo_etag": "\"` + v("k1", "slo", "slo_etag", md5C) + `\""}, ` +
		`{"bytes": 0, "hash": "` + v("k2", "link", "etag", "d41d8cd98f00b204e9800998ecf8427e") + `", "name": "link", "content_type": "application/symlink", "last_modified": "x", "symlink_path": "/v1/AUTH_demo/c/a.txt", "symlink_etag": "` + v("k2", "link", "symlink_target_etag", md5A) + `", "symlink_bytes": 5}` +
		`]`)
}

func TestListingJSONOpened(t *testing.T) {
	sealed := jsonListing(t, true)
	h := newListingHarness(t, "application/json; charset=utf-8", func() []byte { return sealed })
	resp, got, err := h.get(t, "/v1/AUTH_demo/c?format=json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if want := jsonListing(t, false); !bytes.Equal(got, want) {
		t.Fatalf("listing\n %s\nwant\n %s", got, want)
	}
	// Whole within the prepared window: the exact length.
	if resp.ContentLength != int64(len(got)) || resp.Header.Get("X-Container-Object-Count") != "3" {
		t.Fatalf("Content-Length %d for %d bytes; headers %v", resp.ContentLength, len(got), resp.Header)
	}
	if n := h.keys.fetches.Load(); n != 2 {
		t.Fatalf("%d listing-key fetches for 2 key ids, want 2", n)
	}
}

func TestListingXMLOpened(t *testing.T) {
	xml := func(v func(name, value string) string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<container name="c">` +
			`<subdir name="d/"><name>d/</name></subdir>` +
			`<object><name>a&amp;b &lt;x&gt;</name><hash>` + v("a&b <x>", md5A) + `</hash><bytes>5</bytes><content_type>t/p</content_type><last_modified>x</last_modified></object>` +
			`<object><name>old</name><hash>` + md5C + `</hash><bytes>1</bytes><content_type>t/p</content_type><last_modified>x</last_modified></object>` +
			`<object><name>b</name><hash>` + v("b", md5B) + `</hash><bytes>1</bytes><content_type>t/p</content_type><last_modified>x</last_modified></object>` +
			`</container>`)
	}
	sealed := xml(func(name, value string) string { return seal(t, "k1", name, "etag", value) })
	h := newListingHarness(t, "application/xml; charset=utf-8", func() []byte { return sealed })
	_, got, err := h.get(t, "/v1/AUTH_demo/c?format=xml")
	if want := xml(func(_, value string) string { return value }); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("listing (%v)\n %s\nwant\n %s", err, got, want)
	}
}

// Text listings, other accounts, object GETs: passed as they are.
func TestListingUntouched(t *testing.T) {
	sealed := jsonListing(t, true)
	for _, tc := range []struct{ ctype, path string }{
		{"text/plain; charset=utf-8", "/v1/AUTH_demo/c"},
		{"application/json", "/v1/OTHER_demo/c"},
		{"application/json", "/v1/AUTH_demo/c/obj"},
		{"application/json", "/v1/AUTH_demo"},
	} {
		h := newListingHarness(t, tc.ctype, func() []byte { return sealed })
		resp, got, err := h.get(t, tc.path)
		if err != nil || !bytes.Equal(got, sealed) || resp.ContentLength != int64(len(sealed)) {
			t.Errorf("%s %s: changed (%v, length %d)", tc.ctype, tc.path, err, resp.ContentLength)
		}
	}
}

// A listing longer than the prepared window streams chunked, each entry
// opened; one under a destroyed key keeps its sealed value, as does one
// moved to another name.
func TestListingLargeStreamsAndFailsClosedPerEntry(t *testing.T) {
	var sealed, want bytes.Buffer
	sealed.WriteString("[")
	want.WriteString("[")
	moved := seal(t, "k1", "elsewhere", "etag", md5A)
	gone := seal(t, "gone", "e1", "etag", md5A)
	for i := range 3000 {
		name := "e" + strconv.Itoa(i)
		hash, plain := seal(t, "k1", name, "etag", md5A), md5A
		switch i {
		case 1:
			hash, plain = gone, gone
		case 2:
			hash, plain = moved, moved
		}
		sep := ", "
		if i == 0 {
			sep = ""
		}
		entry := `{"bytes": 1, "hash": "%s", "name": "` + name + `", "content_type": "t/p", "last_modified": "x"}`
		fmt.Fprintf(&sealed, sep+entry, hash)
		fmt.Fprintf(&want, sep+entry, plain)
	}
	sealed.WriteString("]")
	want.WriteString("]")
	if sealed.Len() < 2*primeBytes {
		t.Fatalf("listing of %d bytes is not longer than the window", sealed.Len())
	}
	h := newListingHarness(t, "application/json", func() []byte { return sealed.Bytes() })
	resp, got, err := h.get(t, "/v1/AUTH_demo/c")
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("large listing (%v): %d bytes, want %d", err, len(got), want.Len())
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("large listing: Content-Length %d, Transfer-Encoding %v", resp.ContentLength, resp.TransferEncoding)
	}
	if !strings.Contains(h.logs.String(), "shown sealed") {
		t.Fatalf("no log line for the unopenable entries: %s", h.logs.String())
	}
}

// The key service unavailable: 503 when the first sealed entries are in
// the prepared window; a cut connection when they come later, never a
// listing that looks whole.
func TestListingKeyServiceDown(t *testing.T) {
	sealed := jsonListing(t, true)
	h := newListingHarness(t, "application/json", func() []byte { return sealed })
	h.keys.down.Store(true)
	resp, got, _ := h.get(t, "/v1/AUTH_demo/c")
	if resp.StatusCode != http.StatusServiceUnavailable || bytes.Contains(got, []byte("arca1.")) {
		t.Fatalf("key service down: %d %s", resp.StatusCode, got)
	}

	var late bytes.Buffer
	late.WriteString("[")
	for i := range 4000 {
		hash := md5A
		if i == 3999 {
			hash = seal(t, "k1", "e", "etag", md5A)
		}
		fmt.Fprintf(&late, `{"bytes": 1, "hash": "%s", "name": "e", "content_type": "t/p", "last_modified": "x"}, `, hash)
	}
	late.Truncate(late.Len() - 2)
	late.WriteString("]")
	h2 := newListingHarness(t, "application/json", func() []byte { return late.Bytes() })
	h2.keys.down.Store(true)
	resp, got, err := h2.get(t, "/v1/AUTH_demo/c")
	if resp.StatusCode != 200 || err == nil || bytes.HasSuffix(got, []byte("]")) {
		t.Fatalf("key service down mid-listing: %d, %d bytes, read error %v", resp.StatusCode, len(got), err)
	}
}

// Concurrent listings share nothing but the key client.
func TestListingConcurrent(t *testing.T) {
	sealed := jsonListing(t, true)
	want := jsonListing(t, false)
	h := newListingHarness(t, "application/json", func() []byte { return sealed })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, got, err := h.get(t, "/v1/AUTH_demo/c"); err != nil || !bytes.Equal(got, want) {
				t.Errorf("concurrent listing: %v", err)
			}
		}()
	}
	wg.Wait()
}

// FuzzListingBody: whatever the upstream sends as a listing, the rewriter
// does not panic, and a body with nothing sealed in it comes out as it
// went in, however it is cut into reads.
func FuzzListingBody(f *testing.F) {
	f.Add(jsonListing(f, false), true, 7)
	f.Add(jsonListing(f, true), true, 100)
	f.Add([]byte(`<container><object><name>a</name><hash>arca1.k1.AAAA</hash></object></container>`), false, 3)
	f.Add([]byte(`[{"name": "a", "hash": "arca1.k1.x", "slo_etag": "\"arca1.k2.y\""}`), true, 1)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool, chunk int) {
		format := listingXML
		if isJSON {
			format = listingJSON
		}
		lb := &listingBody{
			src:    io.NopCloser(&chunkReader{b: body, n: max(1, chunk%512)}),
			format: format,
			opener: &listingOpener{ctx: context.Background(), keys: &listingKeys{}, project: "demo",
				prefix: "/AUTH_demo/c/", log: zerolog.Nop(), ciphers: map[string]*objcrypt.ListingCipher{}},
		}
		got, err := io.ReadAll(lb)
		if err != nil {
			if !strings.Contains(err.Error(), "listing entry over") {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !bytes.Contains(body, []byte("arca1.")) && !bytes.Equal(got, body) {
			t.Fatalf("a listing with nothing sealed changed:\n %q\n %q", body, got)
		}
	})
}

// chunkReader returns b n bytes at a time.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// TestInvertTimestamp: the version part of object versioning's names, as
// Swift's ~Timestamp(ts).internal gives it (values from Swift 2.30).
func TestInvertTimestamp(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1796501200.22725", "8203498799.77274"},
		{"1.5", "9999999998.49999"},
		{"0000000001.00000", "9999999998.99999"},
		{"1796501200", "8203498799.99999"},
	} {
		if got, ok := invertTimestamp(tc.in); !ok || got != tc.want {
			t.Errorf("invertTimestamp(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "1.123456", "-1.5", "12345678901.0", "null"} {
		if got, ok := invertTimestamp(bad); ok {
			t.Errorf("invertTimestamp(%q) = %q, want refused", bad, got)
		}
	}
}
