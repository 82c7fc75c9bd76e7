package keyclient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestObserverAndPing(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	observe := func(op string, status int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[op+" "+http.StatusText(status)]++
		if d < 0 {
			t.Errorf("negative duration")
		}
	}
	f, srv, c := newFake(t, Options{ErrorTTL: -1, Observer: observe})
	ctx := context.Background()
	for range 3 {
		if _, err := c.ActiveKey(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.KeyMaterial(ctx, "p1", "k-p1"); err != nil {
			t.Fatal(err)
		}
	}
	f.force("/v1/project-keys/k-p2/payload", http.StatusGone)
	if _, err := c.KeyMaterial(ctx, "p2", "k-p2"); !errors.Is(err, ErrDestroyed) {
		t.Fatal(err)
	}
	mu.Lock()
	if seen["active OK"] != 1 || seen["payload OK"] != 1 || seen["payload Gone"] != 1 || len(seen) != 3 {
		t.Fatalf("observed %v (cache hits must not be observed)", seen)
	}
	mu.Unlock()

	// Ping: the fake answers 404 on /healthcheck (anything but 200 fails);
	// a closed server is unavailable.
	if err := c.Ping(ctx); err == nil {
		t.Fatal("ping of a server without /healthcheck passed")
	}
	srv.Close()
	if err := c.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping of a closed server: %v", err)
	}
}
