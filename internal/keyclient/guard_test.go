package keyclient

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestActiveIDAgesFromTheRequest: a cached active id expires ActiveTTL
// after the request was sent, not after the answer arrived. arca-api may
// read the active key, the key be rotated at once and the answer arrive
// later: its destroy guard counts from that rotation, so a cache counted
// from the arrival would outlive the guard by the answer's latency.
func TestActiveIDAgesFromTheRequest(t *testing.T) {
	// Wide enough that a loaded machine still lands in the window between
	// ttl after the request and ttl after the answer (1.35 s here).
	const ttl, latency = 1500 * time.Millisecond, 1500 * time.Millisecond
	f, _, c := newFake(t, Options{ActiveTTL: ttl, ErrorTTL: -1})
	f.delay = latency
	ctx := context.Background()
	sent := time.Now()
	if k, err := c.ActiveKey(ctx, "p"); err != nil || k.ID != "k-p" {
		t.Fatalf("ActiveKey: %+v %v", k, err)
	}
	f.rotations.Add(1)
	// Past ttl after the request, within ttl after the answer.
	time.Sleep(time.Until(sent.Add(ttl + 50*time.Millisecond)))
	if late := time.Since(sent); late > ttl+latency-100*time.Millisecond {
		t.Fatalf("the check ran %s after the request, past the window that tells the two clocks apart (%s)",
			late.Round(time.Millisecond), ttl+latency)
	}
	k, err := c.ActiveKey(ctx, "p")
	if err != nil || k.ID != "k-p-1" {
		t.Fatalf("%s after the request (ttl %s, answer %s late): active id %q %v, want the rotated k-p-1",
			time.Since(sent).Round(time.Millisecond), ttl, latency, k.ID, err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestActiveIDBoundedByTheGuard: arca-api's answer says how long it
// refuses to destroy a deactivated key (ActiveKeyCacheTTLHeader); the
// client never holds an active id longer than that, whatever its own
// ActiveTTL, and holds it not at all when the value is unusable.
func TestActiveIDBoundedByTheGuard(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guard []string
		want  time.Duration // how long the id is held
	}{
		{"no header: ActiveTTL", nil, time.Hour},
		{"shorter guard", []string{"0.3"}, 300 * time.Millisecond},
		{"longer guard: ActiveTTL", []string{"7200"}, time.Hour},
		{"zero", []string{"0"}, 0},
		{"negative", []string{"-5"}, 0},
		{"not a number", []string{"soon"}, 0},
		{"NaN", []string{"NaN"}, 0},
		{"two values", []string{"0.3", "7200"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, c := newFake(t, Options{ActiveTTL: time.Hour, ErrorTTL: -1})
			f.guard = tc.guard
			ctx := context.Background()
			if _, err := c.ActiveKey(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			f.rotations.Add(1)
			wait := 50 * time.Millisecond
			if tc.want > 0 && tc.want < time.Hour {
				wait = tc.want + 100*time.Millisecond
			}
			time.Sleep(wait)
			k, err := c.ActiveKey(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			stale := k.ID == "k-p"
			if held := tc.want >= time.Hour; stale != held {
				t.Fatalf("after %s: active id %s (header %q, ActiveTTL 1h), want it held %v", wait, k.ID, tc.guard, held)
			}
			// RefreshActiveKey's rate limit does not extend a guard either.
			if tc.want < MinActiveRefresh {
				f.rotations.Add(1)
				time.Sleep(tc.want + 50*time.Millisecond)
				if k, err := c.RefreshActiveKey(ctx, "p"); err != nil || k.ID != "k-p-2" {
					t.Fatalf("refresh past the guard: %+v %v, want k-p-2", k, err)
				}
			}
		})
	}
}

// TestActiveKeyUntilIsTheEntrysEnd: the moment ActiveKeyUntil gives (for
// components that keep the id themselves) is the cached entry's own end:
// the request's start plus the guard or ActiveTTL, whichever is shorter,
// the same on a cache hit, and a fresh one once the entry is over.
func TestActiveKeyUntilIsTheEntrysEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guard []string
		ttl   time.Duration
		bound time.Duration
	}{
		{"ActiveTTL", nil, 400 * time.Millisecond, 400 * time.Millisecond},
		{"the guard, shorter", []string{"0.3"}, time.Hour, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, c := newFake(t, Options{ActiveTTL: tc.ttl, ErrorTTL: -1})
			f.guard = tc.guard
			ctx := context.Background()
			sent := time.Now()
			k, until, err := c.ActiveKeyUntil(ctx, "p")
			back := time.Now()
			if err != nil || k.ID != "k-p" {
				t.Fatalf("ActiveKeyUntil: %+v %v", k, err)
			}
			if until.Before(sent.Add(tc.bound)) || until.After(back.Add(tc.bound)) {
				t.Fatalf("until %s after the call, want %s after the request (the call took %s)",
					until.Sub(sent), tc.bound, back.Sub(sent))
			}
			k2, until2, err := c.ActiveKeyUntil(ctx, "p")
			if err != nil || k2 != k || !until2.Equal(until) {
				t.Fatalf("cache hit: %+v until %v (%v), want %+v until %v", k2, until2, err, k, until)
			}
			f.rotations.Add(1)
			time.Sleep(time.Until(until) + 20*time.Millisecond)
			k3, until3, err := c.ActiveKeyUntil(ctx, "p")
			if err != nil || k3.ID != "k-p-1" || !until3.After(until) {
				t.Fatalf("after the entry's end: %+v until %v (%v), want k-p-1 with a later end", k3, until3, err)
			}
		})
	}
	f, _, c := newFake(t, Options{ErrorTTL: -1})
	f.force("/v1/project-keys/active", http.StatusServiceUnavailable)
	if _, until, err := c.ActiveKeyUntil(context.Background(), "q"); err == nil || !until.IsZero() {
		t.Fatalf("key service down: until %v, err %v; want zero and an error", until, err)
	}
}
