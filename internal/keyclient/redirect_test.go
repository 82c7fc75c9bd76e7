package keyclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedirectNotFollowed: the key service's URL answering with a
// redirect (a load balancer's http-to-https rule, a tampered catalog
// entry) is an unexpected answer, failing closed. Followed, it sent the
// service token (X-Auth-Token: net/http keeps it across hosts) wherever
// it pointed, and took that host's key id and key bytes for arca-api's;
// the object servers' token reads any project's key material. It holds
// for a client the caller built, too.
func TestRedirectNotFollowed(t *testing.T) {
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/auth/tokens") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Subject-Token", "service-token")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"token":{"expires_at":"2099-01-01T00:00:00.000000Z","methods":["password"],` +
			`"user":{"id":"u","name":"arca-object","domain":{"id":"default"}},"project":{"id":"svc","name":"service","domain":{"id":"default"}},` +
			`"roles":[{"name":"key-manager:object-server"}],"catalog":[]}}`))
	}))
	defer keystone.Close()
	var reached atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if strings.HasSuffix(r.URL.Path, "/payload") {
			_, _ = w.Write([]byte(strings.Repeat("E", 32)))
			return
		}
		_, _ = w.Write([]byte(`{"key_id":"chosen","project_id":"p1","status":"ACTIVE","algorithm":"aes_256_cbc","bit_length":256}`))
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	for name, hc := range map[string]*http.Client{"default client": nil, "caller's client": {Timeout: 5 * time.Second}} {
		c, err := New(Options{Endpoint: api.URL, HTTPClient: hc, ErrorTTL: -1, Credentials: Credentials{
			AuthURL: keystone.URL + "/v3", Username: "arca-object", Password: "pw", ProjectName: "service",
			UserDomainName: "Default", ProjectDomainName: "Default"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if k, err := c.ActiveKey(ctx, "p1"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: active key through a redirect: %+v, %v; want ErrUnavailable", name, k, err)
		}
		if m, err := c.KeyMaterial(ctx, "p1", "k1"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: key material through a redirect: %d bytes, %v; want ErrUnavailable", name, len(m), err)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}

// TestMaterialLifetimeFromRequest: key bytes live in the cache for
// MaterialTTL from before they were asked for, as the active id does: the
// key may be destroyed right after arca-api read it, while the answer is
// on its way, and key_cache_ttl is the promise of how long a destroyed
// key still opens objects. Counted from the answer's arrival, a slow
// answer stretched it by its delay.
func TestMaterialLifetimeFromRequest(t *testing.T) {
	const ttl, delay = time.Second, 600 * time.Millisecond
	var destroyed atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if destroyed.Load() != 0 {
			w.WriteHeader(http.StatusGone)
			return
		}
		destroyed.Store(time.Now().UnixNano()) // read, then destroyed at once
		time.Sleep(delay)
		_, _ = w.Write([]byte(strings.Repeat("k", 32)))
	}))
	defer api.Close()
	c, err := New(Options{NoAuth: true, Endpoint: api.URL, MaterialTTL: ttl, ErrorTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.KeyMaterial(ctx, "p1", "k1"); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0, destroyed.Load())
	time.Sleep(time.Until(at.Add(ttl + 100*time.Millisecond)))
	if _, until, err := c.KeyMaterialUntil(ctx, "p1", "k1"); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("key bytes served %s after the key was destroyed (MaterialTTL %s; cached until %s after): %v",
			time.Since(at).Round(time.Millisecond), ttl, until.Sub(at).Round(time.Millisecond), err)
	}
}
