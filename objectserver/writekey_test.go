package objectserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// cachingResolver is a resolver with an active-id cache in front of a
// memResolver, as keyclient.Client has: ActiveKey answers from the cache
// once filled, whatever happened at the key service since.
type cachingResolver struct {
	mem         *memResolver
	mu          sync.Mutex
	cached      map[string]keyclient.Key
	refreshes   int
	refreshDown bool
}

func (c *cachingResolver) ActiveKey(ctx context.Context, project string) (keyclient.Key, error) {
	c.mu.Lock()
	k, ok := c.cached[project]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := c.mem.ActiveKey(ctx, project)
	if err == nil {
		c.mu.Lock()
		c.cached[project] = k
		c.mu.Unlock()
	}
	return k, err
}

func (c *cachingResolver) KeyMaterial(ctx context.Context, project, id string) ([]byte, error) {
	return c.mem.KeyMaterial(ctx, project, id)
}

// refreshingResolver can also bypass its cache, as keyclient.Client can.
type refreshingResolver struct{ *cachingResolver }

func (r refreshingResolver) RefreshActiveKey(ctx context.Context, project string) (keyclient.Key, error) {
	r.mu.Lock()
	r.refreshes++
	down := r.refreshDown
	delete(r.cached, project)
	r.mu.Unlock()
	if down {
		return keyclient.Key{}, fmt.Errorf("refresh: %w", keyclient.ErrUnavailable)
	}
	return r.ActiveKey(ctx, project)
}

// TestWriteKeyIsTheActiveKey: a PUT is encrypted only under the project's
// active key as the server knows it (its cache), refreshed once when
// X-Arca-Key-Id names another key; never under the key the header names
// just because it names it (a deactivated key of the project, possibly
// being destroyed, or another project's key).
func TestWriteKeyIsTheActiveKey(t *testing.T) {
	for i, tc := range []struct {
		name string
		// The project has keys old (deactivated) and cur, the active one
		// the server cached; rotated: then next replaced cur at the key
		// service, unseen by the cache.
		rotated     bool
		refresher   bool // the resolver can bypass its cache
		refreshDown bool // and the key service fails when it does
		destroyOld  bool
		hint        string // X-Arca-Key-Id: "", "old", "cur", "next", "foreign"
		want        string // key the object is written under: "cur", "next"; "" when refused
		status      int
		refreshes   int
	}{
		{name: "no header", refresher: true, want: "cur", status: 201},
		{name: "header names the cached active key", refresher: true, hint: "cur", want: "cur", status: 201},
		{name: "header names a deactivated key of the project", refresher: true, hint: "old", want: "cur", status: 201, refreshes: 1},
		{name: "header names a destroyed key of the project", refresher: true, destroyOld: true, hint: "old", want: "cur", status: 201, refreshes: 1},
		{name: "header names another project's key", refresher: true, hint: "foreign", want: "cur", status: 201, refreshes: 1},
		{name: "header names a key rotated in since the cache", rotated: true, refresher: true, hint: "next", want: "next", status: 201, refreshes: 1},
		{name: "stale header after an unseen rotation", rotated: true, refresher: true, hint: "old", want: "next", status: 201, refreshes: 1},
		{name: "header agrees with a stale cache", rotated: true, refresher: true, hint: "cur", want: "cur", status: 201},
		{name: "resolver without a refresh path", rotated: true, hint: "next", want: "cur", status: 201},
		{name: "refresh fails: nothing written", refresher: true, refreshDown: true, hint: "old", status: 503, refreshes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cache := &cachingResolver{mem: e.keys, cached: map[string]keyclient.Key{}, refreshDown: tc.refreshDown}
			e.srv.keys = cache
			if tc.refresher {
				e.srv.keys = refreshingResolver{cache}
			}
			ids := map[string]string{"old": e.keys.rotate("p1"), "cur": e.keys.rotate("p1"), "foreign": e.keys.rotate("p2")}
			if _, err := cache.ActiveKey(context.Background(), "p1"); err != nil {
				t.Fatal(err)
			}
			if tc.rotated {
				ids["next"] = e.keys.rotate("p1")
			}
			if tc.destroyOld {
				e.keys.mu.Lock()
				e.keys.destroy[ids["old"]] = true
				e.keys.mu.Unlock()
			}
			hdr := map[string]string{}
			if tc.hint != "" {
				hdr[KeyIDHeader] = ids[tc.hint]
			}
			path := fmt.Sprintf("/sda/1/AUTH_p1/c/o%d", i)
			resp := e.put(path, "acknowledged only under the active key", hdr)
			readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("PUT: %d, want %d", resp.StatusCode, tc.status)
			}
			if cache.refreshes != tc.refreshes {
				t.Errorf("%d refreshes of the active id, want %d", cache.refreshes, tc.refreshes)
			}
			var got []string
			for _, f := range e.files() {
				if filepath.Ext(f) == ".data" {
					got = append(got, storedKeyID(t, f))
				}
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("refused PUT left .data files under keys %v", got)
				}
				return
			}
			if len(got) != 1 || got[0] != ids[tc.want] {
				t.Fatalf("object written under %v, want %s (%s); keys %v", got, tc.want, ids[tc.want], ids)
			}
			if resp := e.do("GET", path, nil, nil); !strings.Contains(readBody(t, resp), "acknowledged") {
				t.Fatalf("GET of the object: %d", resp.StatusCode)
			}
		})
	}
}

// storedKeyID is the key id recorded in a .data file's Swift metadata.
func storedKeyID(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	return md.Values[sysmeta.Prefix+"Key-Id"]
}

// rotatingBody is a PUT body that, once read to the end, runs rotate: a
// rotation that lands while the upload streams.
type rotatingBody struct {
	r      *strings.Reader
	rotate func()
	done   bool
}

func (b *rotatingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rotate()
	}
	return n, err
}

// TestUploadAcrossARotation: the key check is repeated just before the
// object is committed. An upload whose key stopped being the active one
// (as the server knows it) while it streamed is refused with 503 and
// leaves no object; one whose key the server still holds as active (the
// rotation not seen yet, within active_key_cache_ttl) is stored under it.
func TestUploadAcrossARotation(t *testing.T) {
	for i, tc := range []struct {
		name       string
		cacheSeen  bool // the server's active-id cache learns of the rotation
		wantStatus int
	}{
		{"rotation seen by the server before the commit", true, 503},
		{"rotation not yet seen by the server", false, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cache := &cachingResolver{mem: e.keys, cached: map[string]keyclient.Key{}}
			e.srv.keys = refreshingResolver{cache}
			first, err := cache.ActiveKey(context.Background(), "p1")
			if err != nil {
				t.Fatal(err)
			}
			body := &rotatingBody{r: strings.NewReader(strings.Repeat("streamed across a rotation ", 4096)), rotate: func() {
				e.keys.rotate("p1")
				if tc.cacheSeen {
					cache.mu.Lock()
					delete(cache.cached, "p1") // expired: the next lookup sees the new key
					cache.mu.Unlock()
				}
			}}
			path := fmt.Sprintf("/sda/1/AUTH_p1/c/up%d", i)
			req, err := http.NewRequest("PUT", e.ts.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Timestamp", e.next())
			req.Header.Set("Content-Type", "text/plain")
			req.Header.Set(KeyIDHeader, first.ID)
			// The body leaves only once the server reads it, after it
			// chose the key (Go's server answers 100 Continue then).
			req.Header.Set("Expect", "100-continue")
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.ExpectContinueTimeout = time.Minute
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg := readBody(t, resp)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("PUT across a rotation: %d %q, want %d", resp.StatusCode, msg, tc.wantStatus)
			}
			var got []string
			for _, f := range e.files() {
				if filepath.Ext(f) == ".data" {
					got = append(got, storedKeyID(t, f))
				}
			}
			switch {
			case tc.wantStatus != 201 && len(got) != 0:
				t.Fatalf("refused upload left objects under %v", got)
			case tc.wantStatus == 201 && (len(got) != 1 || got[0] != first.ID):
				t.Fatalf("upload stored under %v, want %s", got, first.ID)
			}
		})
	}
}
