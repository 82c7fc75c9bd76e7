package keyclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeys is a stand-in key service for the client's unit tests; the
// tests against real arca-api processes are in real_test.go.
type fakeKeys struct {
	requests atomic.Int64
	// rotations > 0 names the active key "k-<project>-<rotations>".
	rotations atomic.Int64
	delay     time.Duration
	// guard, when set, are the values of ActiveKeyCacheTTLHeader sent
	// with the active key.
	guard  []string
	mu     sync.Mutex
	status map[string]int // path -> forced status
}

func (f *fakeKeys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	st := f.status[r.URL.Path]
	f.mu.Unlock()
	if st != 0 {
		w.WriteHeader(st)
		return
	}
	project := r.URL.Query().Get("project_id")
	if r.Header.Get("X-Project-Id") != project || r.Header.Get("X-Roles") != noAuthRoles(r.URL.Path+"?"+r.URL.RawQuery) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	switch {
	case r.URL.Path == "/v1/project-keys/active":
		id := "k-" + project
		if n := f.rotations.Load(); n > 0 {
			id += "-" + strconv.FormatInt(n, 10)
		}
		for _, v := range f.guard {
			w.Header().Add(ActiveKeyCacheTTLHeader, v)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"key_id": id, "project_id": project, "status": "ACTIVE",
			"algorithm": "aes_256_cbc", "bit_length": 256,
		})
	case strings.HasSuffix(r.URL.Path, "/listing-key"):
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte(strings.Repeat("l", 32)))
	case strings.HasSuffix(r.URL.Path, "/payload"):
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte(strings.Repeat("k", 32)))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeKeys) force(path string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == nil {
		f.status = map[string]int{}
	}
	f.status[path] = status
}

func newFake(t *testing.T, opts Options) (*fakeKeys, *httptest.Server, *Client) {
	t.Helper()
	f := &fakeKeys{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	opts.NoAuth = true
	opts.Endpoint = srv.URL + "/v1/"
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f, srv, c
}

func TestCacheHitsMakeNoRequest(t *testing.T) {
	f, _, c := newFake(t, Options{})
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		k, err := c.ActiveKey(ctx, "p1")
		if err != nil || k.ID != "k-p1" || k.BitLength != 256 || k.Algorithm != "aes_256_cbc" {
			t.Fatalf("ActiveKey = %+v, %v", k, err)
		}
		m, err := c.KeyMaterial(ctx, "p1", k.ID)
		if err != nil || len(m) != 32 {
			t.Fatalf("KeyMaterial = %d bytes, %v", len(m), err)
		}
	}
	if got := f.requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
	if s := c.Stats(); s.Hits != 198 || s.Misses != 2 || s.Requests != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	f, _, c := newFake(t, Options{})
	f.delay = 50 * time.Millisecond
	var wg sync.WaitGroup
	errs := make(chan error, 128)
	for i := 0; i < 64; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := c.ActiveKey(context.Background(), "p")
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.KeyMaterial(context.Background(), "p", "k1")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.requests.Load(); got != 2 {
		t.Fatalf("%d requests for 128 concurrent misses, want 2", got)
	}
}

func TestCancelledWaiterDoesNotFailOthers(t *testing.T) {
	f, _, c := newFake(t, Options{})
	f.delay = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.ActiveKey(context.Background(), "p")
		done <- err
	}()
	if _, err := c.ActiveKey(ctx, "p"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("patient caller: %v", err)
	}
}

func TestExpiryAndOutage(t *testing.T) {
	_, srv, c := newFake(t, Options{ActiveTTL: 150 * time.Millisecond, MaterialTTL: 400 * time.Millisecond, ErrorTTL: -1})
	ctx := context.Background()
	if _, err := c.ActiveKey(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyMaterial(ctx, "p", "k1"); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	srv.Close()
	// Both still cached while the service is down.
	if _, err := c.ActiveKey(ctx, "p"); err != nil {
		t.Fatalf("cached active key during outage: %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := c.ActiveKey(ctx, "p"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("expired active key during outage: %v, want ErrUnavailable", err)
	}
	if _, err := c.KeyMaterial(ctx, "p", "k1"); err != nil {
		t.Fatalf("material within its TTL during outage: %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := c.KeyMaterial(ctx, "p", "k1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("expired material during outage: %v, want ErrUnavailable", err)
	}
}

func TestStatusErrors(t *testing.T) {
	cases := []struct {
		status int
		want   error
	}{
		{http.StatusNotFound, ErrNotFound},
		{http.StatusGone, ErrDestroyed},
		{http.StatusForbidden, ErrDenied},
		{http.StatusUnauthorized, ErrDenied},
		{http.StatusServiceUnavailable, ErrUnavailable},
		{http.StatusInternalServerError, ErrUnavailable},
		{http.StatusBadRequest, ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			f, _, c := newFake(t, Options{})
			f.force("/v1/project-keys/k1/payload", tc.status)
			if _, err := c.KeyMaterial(context.Background(), "p", "k1"); !errors.Is(err, tc.want) {
				t.Fatalf("HTTP %d: %v, want %v", tc.status, err, tc.want)
			}
		})
	}
}

func TestErrorsAreCachedBriefly(t *testing.T) {
	f, _, c := newFake(t, Options{ErrorTTL: 200 * time.Millisecond})
	f.force("/v1/project-keys/k1/payload", http.StatusGone)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := c.KeyMaterial(ctx, "p", "k1"); !errors.Is(err, ErrDestroyed) {
			t.Fatal(err)
		}
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1 (error remembered)", got)
	}
	f.force("/v1/project-keys/k1/payload", 0)
	time.Sleep(300 * time.Millisecond)
	if _, err := c.KeyMaterial(ctx, "p", "k1"); err != nil {
		t.Fatalf("after the error TTL: %v", err)
	}
}

func TestRejectsPathBendingIDs(t *testing.T) {
	f, _, c := newFake(t, Options{})
	for _, id := range []string{"", "..", "a/b", "a?b", "a b", strings.Repeat("a", 65)} {
		if _, err := c.KeyMaterial(context.Background(), "p", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("key id %q: %v", id, err)
		}
		if _, err := c.ActiveKey(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("project id %q: %v", id, err)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("%d requests for invalid ids", n)
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{NoAuth: true},
		{},
		{Credentials: Credentials{AuthURL: "http://k/v3", Username: "u"}},
		{Credentials: Credentials{AuthURL: "http://k/v3", Username: "u", Password: "p"}},
		{Credentials: Credentials{AuthURL: "http://k/v3", ApplicationCredentialID: "x"}},
		{Credentials: Credentials{AuthURL: "http://k/v3", ApplicationCredentialID: "x", ApplicationCredentialSecret: "s"}, Interface: "private"},
		{NoAuth: true, Endpoint: "ftp://x"},
	}
	for i, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("case %d: accepted %+v", i, o)
		}
	}
	good := []Options{
		{Credentials: Credentials{AuthURL: "http://k/v3", Username: "u", Password: "p", ProjectName: "service"}},
		{Credentials: Credentials{AuthURL: "http://k/v3", ApplicationCredentialID: "x", ApplicationCredentialSecret: "s"}, Interface: "internal"},
	}
	for i, o := range good {
		if _, err := New(o); err != nil {
			t.Errorf("good case %d: %v", i, err)
		}
	}
	if got := normalizeBase("http://h:9311/v1/"); got != "http://h:9311" {
		t.Fatalf("normalizeBase = %q", got)
	}
}

// BenchmarkCacheHit measures a warm KeyMaterial (the object server's hot
// path); the target is well under 1 µs.
func BenchmarkCacheHit(b *testing.B) {
	f := &fakeKeys{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := New(Options{NoAuth: true, Endpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.KeyMaterial(ctx, "0123456789abcdef0123456789abcdef", "6f1c2d1e-8d7b-4a55-9a51-0d8c7c1b2a3f"); err != nil {
		b.Fatal(err)
	}
	b.Run("KeyMaterial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.KeyMaterial(ctx, "0123456789abcdef0123456789abcdef", "6f1c2d1e-8d7b-4a55-9a51-0d8c7c1b2a3f"); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := c.ActiveKey(ctx, "0123456789abcdef0123456789abcdef"); err != nil {
		b.Fatal(err)
	}
	b.Run("ActiveKey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.ActiveKey(ctx, "0123456789abcdef0123456789abcdef"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("KeyMaterialParallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.KeyMaterial(ctx, "0123456789abcdef0123456789abcdef", "6f1c2d1e-8d7b-4a55-9a51-0d8c7c1b2a3f"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	if f.requests.Load() != 2 {
		b.Fatalf("%d requests", f.requests.Load())
	}
}

// TestRefreshActiveKey: RefreshActiveKey bypasses the cached active id
// (a rotation is seen at once, and later ActiveKey calls see it too), at
// most once per MinActiveRefresh per project, one request for concurrent
// callers.
func TestRefreshActiveKey(t *testing.T) {
	f, _, c := newFake(t, Options{ActiveTTL: time.Hour})
	ctx := context.Background()
	step := func(what string, get func(context.Context, string) (Key, error), wantID string, wantRequests int64) {
		t.Helper()
		k, err := get(ctx, "p")
		if err != nil || k.ID != wantID {
			t.Fatalf("%s: %+v %v, want %s", what, k, err, wantID)
		}
		if n := f.requests.Load(); n != wantRequests {
			t.Fatalf("%s: %d requests so far, want %d", what, n, wantRequests)
		}
	}
	step("first ActiveKey", c.ActiveKey, "k-p", 1)
	f.rotations.Add(1)
	step("ActiveKey after a rotation (cached)", c.ActiveKey, "k-p", 1)
	step("refresh right after a fetch (rate-limited)", c.RefreshActiveKey, "k-p", 1)
	time.Sleep(MinActiveRefresh + 50*time.Millisecond)
	step("refresh", c.RefreshActiveKey, "k-p-1", 2)
	step("ActiveKey after the refresh", c.ActiveKey, "k-p-1", 2)
	step("refresh again at once", c.RefreshActiveKey, "k-p-1", 2)

	f.rotations.Add(1)
	f.delay = 50 * time.Millisecond
	time.Sleep(MinActiveRefresh + 50*time.Millisecond)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k, err := c.RefreshActiveKey(ctx, "p"); err != nil || k.ID != "k-p-2" {
				t.Errorf("concurrent refresh: %+v %v", k, err)
			}
		}()
	}
	wg.Wait()
	if n := f.requests.Load(); n != 3 {
		t.Fatalf("32 concurrent refreshes made %d requests, want 1 more (3)", n-2)
	}

	// A failure is remembered (ErrorTTL) like ActiveKey's: no write
	// chooses a key while the key service fails.
	f.force("/v1/project-keys/active", http.StatusServiceUnavailable)
	time.Sleep(MinActiveRefresh + 50*time.Millisecond)
	if _, err := c.RefreshActiveKey(ctx, "p"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("refresh with the key service failing: %v", err)
	}
}

// TestDefaultTTLs: the documented bounds (docs/project-keys.md): a
// rotation reaches writers, and a destroy reaches readers, within 60 s.
func TestDefaultTTLs(t *testing.T) {
	o, err := Options{NoAuth: true, Endpoint: "http://keys"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.ActiveTTL != 60*time.Second || o.MaterialTTL > 60*time.Second || o.MaterialTTL <= 0 {
		t.Fatalf("default TTLs: active %s, material %s", o.ActiveTTL, o.MaterialTTL)
	}
}
