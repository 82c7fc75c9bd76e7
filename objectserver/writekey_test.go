package objectserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
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
	return md.Values[objcrypt.SysmetaPrefix+"Key-Id"]
}
