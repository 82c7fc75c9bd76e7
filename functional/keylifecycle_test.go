package functional_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
)

// TestKeyLifecycleRealStack checks the key lifecycle's promises on the real stack
// (Keystone, MariaDB, the Swift proxy, arca-swift-filter, two
// arca-object-servers as arca-object): no write is acknowledged under a key
// that is not the project's active key, and reads under a destroyed key
// stop within the object servers' key_cache_ttl.
//
//	(a) After a rotation, a PUT whose X-Arca-Key-Id names the old key, from
//	    a filter whose cache outlived the rotation or sent straight to an
//	    object server, is stored under the new key (the on-disk metadata).
//	(b) arca-api refuses (409) to destroy the active key, with or without
//	    force, and a key deactivated less than its active_key_cache_ttl ago
//	    without force (the answer says what force risks); arca-manage too.
//	(c) Forced, the destroy reaches readers within key_cache_ttl on each
//	    object server: 410 from then on, never 200.
//
// It runs through both shapes: the stale cache is the reverse proxy's, or
// the decision socket's behind the pipeline middleware.
func TestKeyLifecycleRealStack(t *testing.T) {
	for _, shape := range []string{shapeProxy, shapePipeline} {
		t.Run(shape, func(t *testing.T) { keyLifecycle(t, shape) })
	}
}

func keyLifecycle(t *testing.T, shape string) {
	const (
		ttl      = 2   // s: every key cache of the object servers
		filterTT = 600 // s: the filter's active-id cache outlives the rotation
		apiTTL   = 60  // s: arca-api's guard, at least the object servers' ttl
	)
	e := newEnvWith(t, envOptions{cacheTTL: ttl, filterActiveTTL: filterTT, apiActiveKeyTTL: apiTTL, shape: shape})
	demo := e.users[testenv.UserDemo]
	sysAdmin := e.ks.SystemToken(t, testenv.UserAdmin)
	acct := "AUTH_" + demo.project
	cont := "lifecycle-" + e.tag
	base := e.storage(demo.project) + "/" + cont
	if code, b := do(t, "PUT", base, demo.token, nil, nil); code != 201 && code != 202 {
		t.Fatalf("container PUT: %d %s", code, b)
	}
	t.Cleanup(func() {
		for _, name := range []string{"before", "stale-filter", "direct"} {
			do(t, "DELETE", base+"/"+name, demo.token, nil, nil)
		}
		do(t, "DELETE", base, demo.token, nil, nil)
	})

	// An object under the first key; the filter caches that key's id.
	before := []byte("written under the first key " + e.tag)
	if code, b := do(t, "PUT", base+"/before", demo.token, before, nil); code != 201 {
		t.Fatalf("PUT before: %d %s", code, b)
	}
	oldKey := e.activeKey(demo)
	if ids := e.keyIDs(acct, cont, "before"); len(ids) != 2 || ids[0] != oldKey || ids[1] != oldKey {
		t.Fatalf("before: key ids %q, want %s on both replicas", ids, oldKey)
	}

	// Rotation, by a system-scoped admin for demo's project.
	code, b := do(t, "POST", e.apiURL+"/v1/project-keys/rotate?project_id="+demo.project, sysAdmin, nil, nil)
	if code != 201 {
		t.Fatalf("rotate as a system admin: %d %s", code, b)
	}
	rotated := time.Now()
	var k struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(b, &k); err != nil || k.KeyID == "" || k.KeyID == oldKey {
		t.Fatalf("rotate: %s (%v)", b, err)
	}
	newKey := k.KeyID

	// --- (b) The destroy guards, right after the rotation.
	destroy := func(key string, force bool) (int, string) {
		t.Helper()
		u := e.apiURL + "/v1/project-keys/" + key + "?project_id=" + demo.project
		if force {
			u += "&force=true"
		}
		code, b := do(t, "DELETE", u, sysAdmin, nil, nil)
		var doc struct {
			Description string `json:"description"`
		}
		_ = json.Unmarshal(b, &doc)
		return code, doc.Description
	}
	for _, tc := range []struct {
		what  string
		key   string
		force bool
		says  []string
	}{
		{"the active key", newKey, false, []string{"active key", "rotate first"}},
		{"the active key, forced", newKey, true, []string{"active key", "rotate first"}},
		{"the key deactivated a moment ago", oldKey, false, []string{"active_key_cache_ttl (1m0s)", "force=true", "acknowledged", "unreadable"}},
	} {
		code, desc := destroy(tc.key, tc.force)
		if code != http.StatusConflict {
			t.Fatalf("(b) DELETE %s: %d %q, want 409", tc.what, code, desc)
		}
		for _, frag := range tc.says {
			if !strings.Contains(desc, frag) {
				t.Errorf("(b) DELETE %s: 409 %q does not say %q", tc.what, desc, frag)
			}
		}
	}
	if out, err := e.manage("project-key", "destroy", "--project", demo.project, "--key", oldKey); err == nil || !strings.Contains(err.Error(), "force") {
		t.Errorf("(b) arca-manage destroy of the key deactivated a moment ago: %v %s, want a refusal naming --force", err, out)
	}
	if active := e.activeKey(demo); active != newKey {
		t.Fatalf("(b) active key %s after the refused destroys, want %s", active, newKey)
	}
	if time.Since(rotated) > apiTTL*time.Second/2 {
		t.Fatalf("(b) took %s: too slow a stack for the 409 of a just-deactivated key to mean anything", time.Since(rotated))
	}

	// --- (a) The object servers' active-id caches expire; the filter's
	// does not, so it still names the old key.
	time.Sleep(ttl*time.Second + 500*time.Millisecond)
	stale := []byte("written through a filter that still names the old key " + e.tag)
	if code, b := do(t, "PUT", base+"/stale-filter", demo.token, stale, nil); code != 201 {
		t.Fatalf("(a) PUT through the stale filter: %d %s", code, b)
	}
	if ids := e.keyIDs(acct, cont, "stale-filter"); len(ids) != 2 || ids[0] != newKey || ids[1] != newKey {
		t.Errorf("(a) PUT through a filter with a stale cache stored under %q, want the new key %s (old %s)", ids, newKey, oldKey)
	}
	// Straight to an object server, the old key named: same.
	direct := []byte("written straight to an object server naming the old key " + e.tag)
	node := e.objURLs[0]
	path := fmt.Sprintf("/%s/0/%s/%s/direct", e.device(0), acct, cont)
	code, b = do(t, "PUT", node+path, "", direct, map[string]string{
		"X-Timestamp": fmt.Sprintf("%d.00000", time.Now().Unix()), "Content-Type": "text/plain",
		"X-Arca-Key-Id": oldKey,
	})
	if code != 201 {
		t.Fatalf("(a) direct PUT naming the old key: %d %s", code, b)
	}
	if ids := e.keyIDs(acct, cont, "direct"); len(ids) != 1 || ids[0] != newKey {
		t.Errorf("(a) direct PUT naming the old key stored under %q, want the new key %s", ids, newKey)
	}
	if code, got := do(t, "GET", node+path, "", nil, nil); code != 200 || !bytes.Equal(got, direct) {
		t.Errorf("(a) direct GET: %d %q", code, got)
	}

	// --- (c) Every object server holds the old key's bytes in its cache
	// (a read of "before" on each), then the old key is destroyed with
	// force: within key_cache_ttl each answers 410, and never 200 again.
	parts := e.partitions(acct, cont, "before")
	if len(parts) != 2 {
		t.Fatalf("(c) before: replicas %v", parts)
	}
	replica := func(i int) string {
		return e.objURLs[i] + fmt.Sprintf("/%s/%s/%s/%s/before", e.device(i), parts[e.devices[i]], acct, cont)
	}
	for i := range e.objURLs {
		code, got := do(t, "GET", replica(i), "", nil, nil)
		if code != 200 || !bytes.Equal(got, before) {
			t.Fatalf("(c) object server %d, before the destroy: %d", i+1, code)
		}
	}
	if code, desc := destroy(oldKey, true); code != http.StatusNoContent {
		t.Fatalf("(c) forced DELETE of the key deactivated a moment ago: %d %q", code, desc)
	}
	destroyed := time.Now()
	bound := ttl*time.Second + 500*time.Millisecond // key_cache_ttl, and a request's latency
	last200 := map[int]time.Duration{}
	for time.Since(destroyed) < bound+3*time.Second {
		for i := range e.objURLs {
			code, got := do(t, "GET", replica(i), "", nil, nil)
			at := time.Since(destroyed)
			switch {
			case code == 200 && bytes.Equal(got, before):
				last200[i] = at
				if at > bound {
					t.Fatalf("(c) object server %d served the destroyed key's object %s after the destroy (key_cache_ttl %ds)", i+1, at, ttl)
				}
			case code == http.StatusGone:
			default:
				t.Fatalf("(c) object server %d, %s after the destroy: %d %.200q, want 200 (cached) or 410", i+1, at, code, got)
			}
		}
		if code, got := do(t, "GET", base+"/before", demo.token, nil, nil); code == 200 && time.Since(destroyed) > bound {
			t.Fatalf("(c) the proxy served the destroyed key's object %s after the destroy: %d bytes", time.Since(destroyed), len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("(c) last 200 after the destroy per object server: %v (bound %s)", last200, bound)
	if code, _ := do(t, "GET", base+"/before", demo.token, nil, nil); code != http.StatusGone {
		t.Errorf("(c) GET through the proxy after the bound: %d, want 410", code)
	}
	for _, name := range []string{"stale-filter"} {
		if code, got := do(t, "GET", base+"/"+name, demo.token, nil, nil); code != 200 || !bytes.Equal(got, stale) {
			t.Errorf("(c) %s (new key) after the old key's destroy: %d", name, code)
		}
	}
	if code, got := do(t, "GET", node+path, "", nil, nil); code != 200 || !bytes.Equal(got, direct) {
		t.Errorf("(c) direct object (new key) after the old key's destroy: %d", code)
	}
}

// device is the name of the one device of object server i (d1, d2).
func (e *env) device(i int) string {
	e.t.Helper()
	ents, err := os.ReadDir(e.devices[i])
	if err != nil || len(ents) != 1 || !ents[0].IsDir() {
		e.t.Fatalf("devices folder %s: %v %v", e.devices[i], ents, err)
	}
	return ents[0].Name()
}

// partitions returns, per object device folder, the partition holding the
// object's .data file (from its path: <devices>/<dev>/objects/<part>/...).
func (e *env) partitions(account, container, object string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	e.eachDataFile(account, container, object, func(dev, path string, _ *diskfile.RawMetadata) {
		rel, _ := filepath.Rel(dev, path)
		if parts := strings.Split(rel, string(filepath.Separator)); len(parts) > 2 && parts[1] == "objects" {
			out[dev] = parts[2]
		}
	})
	return out
}
