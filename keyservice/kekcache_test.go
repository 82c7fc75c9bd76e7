package keyservice

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice/envelope"
)

// countingKeys counts how often the master key store is asked to open a
// KEK: with an HSM, each is a round trip to the token.
type countingKeys struct {
	envelope.MasterKeys
	opens atomic.Int32
}

func (c *countingKeys) OpenKEK(p, id string, sealed []byte) ([]byte, error) {
	c.opens.Add(1)
	return c.MasterKeys.OpenKEK(p, id, sealed)
}

// TestKEKCacheBoundedInTime: an opened project KEK serves requests without
// the master key store until kek_cache_ttl has passed, then is opened again
// (a token that went away is noticed within that time).
func TestKEKCacheBoundedInTime(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "k", Key: bytes.Repeat([]byte{1}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	keys := &countingKeys{MasterKeys: ring}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC).UnixNano())
	svc, err := New(newMemKeys(), keys, Options{KEKCacheTTL: time.Minute, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	aad := envelope.SecretAAD("p", "s")
	sealed, err := svc.SealForProject(ctx, "p", []byte("x"), aad)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		opens   int32
	}{
		{0, 1},                // created and opened once
		{30 * time.Second, 1}, // cached
		{29 * time.Second, 1}, // 59 s: still cached
		{2 * time.Second, 2},  // 61 s: opened again
		{59 * time.Second, 2}, // cached from the reopen
		{time.Hour, 3},        // expired again
	}
	for i, s := range steps {
		now.Add(int64(s.advance))
		if _, err := svc.OpenForProject(ctx, "p", sealed, aad); err != nil {
			t.Fatal(err)
		}
		if got := keys.opens.Load(); got != s.opens {
			t.Fatalf("step %d: %d opens of the KEK, want %d", i, got, s.opens)
		}
	}
	if _, err := New(newMemKeys(), ring, Options{KEKCacheTTL: -time.Second}); err == nil {
		t.Fatal("negative kek_cache_ttl accepted")
	}
}

// TestExpiredKEKsSwept: a KEK whose kek_cache_ttl has passed leaves
// memory with the next sweep even when its project is never used again
// (it stayed until 4,096 newer KEKs pushed it out of the LRU), and the
// sweeper stops with Close.
func TestExpiredKEKsSwept(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "k", Key: bytes.Repeat([]byte{1}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC).UnixNano())
	svc, err := New(newMemKeys(), ring, Options{KEKCacheTTL: time.Minute, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"idle", "busy"} {
		if _, err := svc.SealForProject(ctx, p, []byte("x"), envelope.SecretAAD(p, "s")); err != nil {
			t.Fatal(err)
		}
	}
	now.Add(int64(50 * time.Second))
	if _, err := svc.SealForProject(ctx, "late", []byte("x"), envelope.SecretAAD("late", "s")); err != nil {
		t.Fatal(err)
	}
	svc.sweepKEKs()
	if n := svc.keks.Len(); n != 3 {
		t.Fatalf("%d KEKs cached before any expired, want 3", n)
	}
	now.Add(int64(20 * time.Second)) // idle and busy are 70 s old, late 20 s
	svc.sweepKEKs()
	if keys := svc.keks.Keys(); len(keys) != 1 || !strings.HasPrefix(keys[0], "late\x00") {
		t.Fatalf("cached after the sweep: %q, want only late's", keys)
	}
	if svc.sweepStop == nil {
		t.Fatal("no sweeper was started with the first KEK")
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.sweepStop:
	default:
		t.Fatal("Close did not stop the sweeper")
	}
	if err := svc.Close(ctx); err != nil { // twice is fine
		t.Fatal(err)
	}
}
