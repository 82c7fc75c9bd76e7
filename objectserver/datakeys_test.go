package objectserver

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// sealFor writes a small object under pk at path and returns its metadata.
func sealFor(t *testing.T, pk objcrypt.ProjectKey, path string) objcrypt.Metadata {
	t.Helper()
	var buf bytes.Buffer
	w, err := objcrypt.NewWriter(&buf, pk, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Metadata()
}

// TestDataKeysCache: a hit is the same keys without deriving again, other
// material under the same id finds nothing (and does not open), entries go
// after the TTL and past the bound, their bytes wiped.
func TestDataKeysCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newDataKeys(time.Minute)
	c.now = func() time.Time { return now }
	far := now.Add(time.Hour) // the material's copy outlives the TTL
	k1 := testKey("k1", 1)
	const path = "/AUTH_p/c/o"
	m := sealFor(t, k1, path)
	// get asks the cache for m's keys under pk, whose material's copy expires at expires.
	get := func(pk objcrypt.ProjectKey, expires time.Time) *objcrypt.DataKeys {
		return c.get(pk, expires, m.KeyID, path, m.WrappedKey, m.Algorithm)
	}
	if dk := get(k1, far); dk == nil || c.len() != 1 {
		t.Fatalf("first get: %v, %d entries", dk, c.len())
	}
	var first *dataKeyEntry
	for _, e := range c.m {
		first = e
	}
	now = now.Add(time.Minute - time.Nanosecond)
	if dk := get(k1, far); dk == nil || c.len() != 1 {
		t.Fatalf("second get: %v, %d entries", dk, c.len())
	}
	for _, e := range c.m {
		if e != first {
			t.Fatal("an unexpired entry was derived again")
		}
	}
	// The same id, other material: no entry opens, nothing is kept.
	if dk := get(testKey("k1", 2), far); dk != nil || c.len() != 1 {
		t.Fatalf("other material under the same id: %v, %d entries", dk, c.len())
	}
	// Past the TTL: derived again, the old bytes wiped.
	now = now.Add(time.Nanosecond)
	if dk := get(k1, far); dk == nil || c.len() != 1 {
		t.Fatalf("get past the TTL: %v, %d entries", dk, c.len())
	}
	for _, e := range c.m {
		if e == first {
			t.Fatal("an expired entry was served")
		}
	}
	var wiped objcrypt.DataKeys
	wiped.Wipe()
	if *first.keys != wiped {
		t.Error("an expired entry's keys were not wiped")
	}
	// The material's copy expires first: so does the entry, and one
	// derived when it has expired already is not kept.
	c.m = map[[32]byte]*dataKeyEntry{}
	if get(k1, now.Add(time.Second)) == nil {
		t.Fatal("get failed")
	}
	for _, e := range c.m {
		if !e.expires.Equal(now.Add(time.Second)) {
			t.Fatalf("entry expires %v after the material's copy", e.expires.Sub(now.Add(time.Second)))
		}
	}
	now = now.Add(time.Second)
	if get(k1, now) == nil || c.len() != 0 {
		t.Fatalf("keys of expiring material: %d entries kept, want none", c.len())
	}
	// The bound: other objects evict.
	c.max = 3
	for i := range 10 {
		p := fmt.Sprintf("/AUTH_p/c/o%d", i)
		mi := sealFor(t, k1, p)
		if c.get(k1, far, mi.KeyID, p, mi.WrappedKey, mi.Algorithm) == nil {
			t.Fatal("get failed")
		}
	}
	if c.len() > 3 {
		t.Fatalf("%d entries past the bound of 3", c.len())
	}
}

// TestDataKeysDestroyed: an object whose keys are cached stops being served
// as soon as the key client stops serving its project key's material,
// whatever the cache holds. A cache asked before the key (or instead of
// it) would keep serving.
func TestDataKeysDestroyed(t *testing.T) {
	e := newEnv(t)
	e.srv.dataKeys = newDataKeys(time.Hour) // outlives anything below
	const objPath = dataKeysObject
	if resp := e.put(objPath, "abc", nil); readBody(t, resp) != "" || resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	for range 2 {
		if resp := e.do("GET", objPath, nil, nil); readBody(t, resp) != "abc" {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
	}
	if e.srv.dataKeys.len() != 1 {
		t.Fatalf("%d cached entries after two GETs of one object", e.srv.dataKeys.len())
	}
	id, _ := e.keys.ActiveKey(t.Context(), "p1")
	e.keys.mu.Lock()
	e.keys.destroy[id.ID] = true
	e.keys.mu.Unlock()
	for _, m := range []string{"GET", "HEAD"} {
		resp := e.do(m, objPath, nil, nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("%s with the key destroyed and its object's keys cached: %d, want 410", m, resp.StatusCode)
		}
	}
}

// TestDataKeysDestroyBound: with the real key client, a destroyed key stops
// reads once key_cache_ttl has passed since the material was fetched, as
// without the cache, although the cache's own entry would live an hour.
func TestDataKeysDestroyBound(t *testing.T) {
	ks := newFakeKeyService(t, "p1", "key-1")
	const ttl = 300 * time.Millisecond
	e := envWithKeyClient(t, keyclient.Options{NoAuth: true, Endpoint: ks.URL, MaterialTTL: ttl, ErrorTTL: time.Millisecond})
	if resp := e.do("GET", dataKeysObject, nil, nil); readBody(t, resp) != "abc" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	ks.destroyed.Store(true)
	before := ks.fetches.Load()
	// Within the TTL the material is still cached (reads go on, as they
	// did before this cache); once it has passed, they must stop.
	time.Sleep(ttl + 50*time.Millisecond)
	resp := e.do("GET", dataKeysObject, nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("GET key_cache_ttl after the destroy: %d %q, want 410", resp.StatusCode, strings.TrimSpace(body))
	}
	if ks.fetches.Load() == before {
		t.Fatal("the material was not asked for again after key_cache_ttl")
	}
}

// TestDataKeysExpireWithTheMaterial: with the real key client, an entry
// expires when the client's copy of the material it came from does, not
// key_cache_ttl after it was derived (here an hour).
func TestDataKeysExpireWithTheMaterial(t *testing.T) {
	ks := newFakeKeyService(t, "p1", "key-1")
	const ttl = 2 * time.Second
	e := envWithKeyClient(t, keyclient.Options{NoAuth: true, Endpoint: ks.URL, MaterialTTL: ttl})
	// the PUT fetched the material: its copy expires within ttl of now
	limit := time.Now().Add(ttl)
	if resp := e.do("GET", dataKeysObject, nil, nil); readBody(t, resp) != "abc" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	e.srv.dataKeys.mu.Lock()
	defer e.srv.dataKeys.mu.Unlock()
	if len(e.srv.dataKeys.m) != 1 {
		t.Fatalf("%d entries after one GET", len(e.srv.dataKeys.m))
	}
	for _, en := range e.srv.dataKeys.m {
		if en.expires.After(limit) {
			t.Fatalf("the entry expires %v after the key client's copy of the material", en.expires.Sub(limit))
		}
	}
}

// dataKeysObject is the object the data-key tests store and read.
const dataKeysObject = "/sda/1/AUTH_p1/c/o"

// envWithKeyClient is a test env whose server gets material from a real key
// client made with opts, with a data-key cache whose entries would live an
// hour (longer than any test), and "abc" stored at dataKeysObject.
func envWithKeyClient(t *testing.T, opts keyclient.Options) *env {
	t.Helper()
	kc, err := keyclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.srv.keys = kc
	e.srv.dataKeys = newDataKeys(time.Hour)
	if resp := e.put(dataKeysObject, "abc", nil); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, readBody(t, resp))
	}
	return e
}

// fakeKeyService answers the key client's two requests for one project key.
type fakeKeyService struct {
	*httptest.Server
	destroyed atomic.Bool  // when set, the material is 410 Gone
	fetches   atomic.Int32 // requests for the material so far
}

func newFakeKeyService(t *testing.T, project, keyID string) *fakeKeyService {
	t.Helper()
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	ks := &fakeKeyService{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/project-keys/active":
			_ = json.NewEncoder(w).Encode(map[string]any{"key_id": keyID, "project_id": project, "status": "active",
				"algorithm": "aes_256_cbc", "bit_length": 256})
		case r.URL.Path == "/v1/project-keys/"+keyID+"/payload" && r.URL.Query().Get("project_id") == project:
			ks.fetches.Add(1)
			if ks.destroyed.Load() {
				http.Error(w, "destroyed", http.StatusGone)
				return
			}
			_, _ = w.Write(material)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ks.Close)
	return ks
}
