package swiftfilter

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
)

// TestDLOETag: a DLO manifest's ETag, which the proxy's dlo computes from
// its segments' sealed listing hashes, is rewritten as dlo computes it
// from the opened ones; the segments' listing is asked as the caller; a
// listing refused or a missing ETag leaves the answer as it is; the key
// service down fails the request.
func TestDLOETag(t *testing.T) {
	var listingStatus atomic.Int64
	listingStatus.Store(http.StatusOK)
	var noETag atomic.Bool
	twoSegments := `[{"hash": "` + seal(t, "k1", "seg/1", "etag", md5A) + `", "name": "seg/1", "bytes": 1}, ` +
		`{"hash": "` + md5B + `", "name": "seg/2", "bytes": 1}]`
	var listing atomic.Value
	listing.Store(twoSegments)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/AUTH_demo/c":
			if r.URL.Query().Get("prefix") != "seg/" || r.URL.Query().Get("format") != "json" || r.Header.Get("X-Auth-Token") != "tok-demo" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(listingStatus.Load()))
			_, _ = w.Write([]byte(listing.Load().(string)))
		case "/v1/AUTH_demo/m/dlo":
			w.Header().Set("X-Object-Manifest", "c/seg%2F")
			if !noETag.Load() {
				w.Header().Set("Etag", `"sealed-md5"`)
			}
			_, _ = w.Write([]byte("ab"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(up.Close)
	keys := &listingKeys{}
	f, err := New(Config{Upstream: up.URL, ResellerPrefixes: []string{"AUTH"}},
		Deps{Tokens: &fakeTokens{}, Keys: keys, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ask := func(method string, query ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/v1/AUTH_demo/m/dlo"+strings.Join(query, ""), nil)
		req.Header.Set("X-Auth-Token", "tok-demo")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Etag")
	}
	sum := md5.Sum([]byte(md5A + md5B))
	want := `"` + hex.EncodeToString(sum[:]) + `"`
	for _, m := range []string{"GET", "HEAD"} {
		if code, etag := ask(m); code != 200 || etag != want {
			t.Errorf("%s: %d, ETag %s, want %s", m, code, etag, want)
		}
	}
	// The manifest object itself: dlo passes it by, its ETag is its own.
	for _, q := range []string{"?multipart-manifest=get", "?multipart-manifest=x&multipart-manifest=get"} {
		if code, etag := ask("GET", q); code != 200 || etag != `"sealed-md5"` {
			t.Errorf("GET %s: %d, ETag %s, want the manifest's own", q, code, etag)
		}
	}
	if code, etag := ask("HEAD", "?multipart-manifest=get&multipart-manifest=no"); code != 200 || etag != want {
		t.Errorf("HEAD with multipart-manifest=get then no: %d, ETag %s, want %s", code, etag, want)
	}
	listingStatus.Store(http.StatusForbidden)
	if code, etag := ask("GET"); code != 200 || etag != `"sealed-md5"` {
		t.Errorf("segments' listing refused: %d, ETag %s, want dlo's", code, etag)
	}
	listingStatus.Store(http.StatusOK)
	noETag.Store(true)
	if code, etag := ask("GET"); code != 200 || etag != "" {
		t.Errorf("an answer without an ETag: %d, ETag %q, want none", code, etag)
	}
	noETag.Store(false)
	// A first listing page that is full (Swift's container_listing_limit,
	// 10,000): dlo keeps the manifest object's own ETag rather than
	// compute one from a partial listing, and so does the filter.
	full := make([]string, 10000)
	for i := range full {
		full[i] = fmt.Sprintf(`{"hash": "%s", "name": "seg/%05d", "bytes": 1}`, md5B, i)
	}
	listing.Store("[" + strings.Join(full, ", ") + "]")
	if code, etag := ask("HEAD"); code != 200 || etag != `"sealed-md5"` {
		t.Errorf("a full first page of segments: %d, ETag %s, want dlo's (the manifest's own)", code, etag)
	}
	listing.Store(twoSegments)
	keys.down.Store(true)
	if code, _ := ask("GET"); code != http.StatusServiceUnavailable {
		t.Errorf("key service down: %d, want 503", code)
	}
}
