package keyservice

import (
	"bytes"
	"context"
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
