package objectserver_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestRealStackObjectServerFaults holds, through the real Swift proxy in
// front of two arca-object-server binaries, each object-server fault of
// issue 17, as a Swift client sees it:
//
//   - 412 (If-Match, If-Unmodified-Since) and 416 answers carry the
//     object's ETag, as Swift's object server's do. The proxy relies on it:
//     a conditional GET of a static symlink whose target changed answers
//     Swift's 409 (the symlink middleware compares the 412's ETag with the
//     link's), not the target's 412;
//   - a 201 to PUT has an empty body (the proxy passes the object
//     server's body on; Arca's said "Created").
func TestRealStackObjectServerFaults(t *testing.T) {
	s := newStack(t)
	cont, tag := s.newContainer(t, "arca-fault-")
	put := func(t *testing.T, name, body string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		resp, b := doHTTP(t, "PUT", s.Storage+"/"+cont+"/"+name, []byte(body), s.Token, hdr)
		return resp, string(b)
	}
	body := "the target " + tag
	etag := md5sum([]byte(body))

	t.Run("a 201 to PUT has no body", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			hdr        map[string]string
		}{
			{"o", body, nil},
			{"empty", "", nil},
			{"copy", "", map[string]string{"X-Copy-From": cont + "/o"}},
			{"link", "", map[string]string{"X-Symlink-Target": cont + "/o"}},
		} {
			resp, got := put(t, tc.name, tc.body, tc.hdr)
			if resp.StatusCode != http.StatusCreated || got != "" || resp.Header.Get("Content-Length") != "0" {
				t.Errorf("PUT %s: %d, body %q, Content-Length %q; want 201, no body, 0 (Swift's)",
					tc.name, resp.StatusCode, got, resp.Header.Get("Content-Length"))
			}
		}
	})

	t.Run("412 and 416 answers carry the object's ETag", func(t *testing.T) {
		for _, tc := range []struct {
			method, header, value string
			status                int
		}{
			{"GET", "If-Match", `"nope"`, http.StatusPreconditionFailed},
			{"GET", "If-Match", `"nope", "other"`, http.StatusPreconditionFailed},
			{"HEAD", "If-Match", `"nope"`, http.StatusPreconditionFailed},
			{"GET", "If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT", http.StatusPreconditionFailed},
			{"GET", "Range", "bytes=1000-2000", http.StatusRequestedRangeNotSatisfiable},
		} {
			resp, _ := s.http(tc.method, "/"+cont+"/o", map[string]string{tc.header: tc.value})
			if got := strings.Trim(resp.Header.Get("Etag"), `"`); resp.StatusCode != tc.status || got != etag {
				t.Errorf("%s %s: %s: %d, ETag %q; want %d, ETag %s (Swift's)",
					tc.method, tc.header, tc.value, resp.StatusCode, got, tc.status, etag)
			}
		}
		// What the proxy does with it: a static symlink to a target that
		// changed since is a 409 naming both ETags.
		if resp, got := put(t, "static", "", map[string]string{"X-Symlink-Target": cont + "/o", "X-Symlink-Target-Etag": etag}); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT of a static symlink: %d %q", resp.StatusCode, got)
		}
		if resp, got := put(t, "o", "changed "+body, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT of a new target: %d %q", resp.StatusCode, got)
		}
		// The symlink middleware follows the link with the client's
		// headers: a conditional GET meets the target's 412, and only the
		// 412's ETag tells it that the target changed.
		for _, hdr := range []map[string]string{nil, {"If-Match": `"nope"`}} {
			resp, got := s.http("GET", "/"+cont+"/static", hdr)
			if resp.StatusCode != http.StatusConflict || !strings.HasPrefix(string(got), "Object Etag ") ||
				!strings.Contains(string(got), "does not match X-Symlink-Target-Etag header") || !strings.Contains(string(got), etag) {
				t.Errorf(`GET (%v) of a static symlink whose target changed: %d %q; want Swift's 409 "Object Etag <new> does not match X-Symlink-Target-Etag header %s"`,
					hdr, resp.StatusCode, got, etag)
			}
		}
	})
}
