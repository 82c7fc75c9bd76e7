package keyclient

import (
	"context"
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
