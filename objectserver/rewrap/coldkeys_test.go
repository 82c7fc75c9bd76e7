package rewrap

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
)

// slowKeys is a key resolver whose first slow answers each take delay,
// as a loaded key service or machine gives them: what a worker asked for
// with no lock held is cold again by the time it holds the partition lock.
type slowKeys struct {
	*rewraptest.Keys
	delay time.Duration
	slow  atomic.Int32
}

func (s *slowKeys) wait() {
	if s.slow.Add(-1) >= 0 {
		time.Sleep(s.delay)
	}
}

func (s *slowKeys) ActiveKey(ctx context.Context, project string) (keyclient.Key, error) {
	s.wait()
	return s.Keys.ActiveKey(ctx, project)
}

func (s *slowKeys) KeyMaterial(ctx context.Context, project, id string) ([]byte, error) {
	s.wait()
	return s.Keys.KeyMaterial(ctx, project, id)
}

// TestColdKeysDoNotLeaveObjectsBehind: a worker whose keys go cold between
// asking for them and taking the partition lock examines the object again
// until it is rewrapped; only keys that really keep changing leave an
// object on its key, and then the run counts it as failed, never as
// "changed meanwhile" (which would hide an object still on the old key).
func TestColdKeysDoNotLeaveObjectsBehind(t *testing.T) {
	cases := []struct {
		name      string
		warmFor   time.Duration
		slowCalls int32
		// want: rewrapped, failed, left on the old key
		rewrapped, failed, left int
	}{
		// more cold examinations than maxHashTries: every object is rewrapped
		{"keys cold on several retakes", 40 * time.Millisecond, 12, 3, 0, 0},
		// keys never warm in time: left on the old key and said to be
		{"keys never warm", time.Nanosecond, 0, 0, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newNode(t)
			keys := rewraptest.NewKeys()
			old := keys.Rotate("p1")
			for i := range 3 {
				putObject(t, m, keys, "p1", fmt.Sprint("cold", i), body(i), nil)
			}
			keys.Rotate("p1")
			res := &slowKeys{Keys: keys, delay: 2 * tc.warmFor}
			res.slow.Store(tc.slowCalls)
			s := run(t, m, keys, func(o *Options) {
				o.Keys, o.Workers, o.warmFor = res, 1, tc.warmFor
			})
			if s.Rewrapped != tc.rewrapped || s.Failed != tc.failed || s.Changed != 0 {
				t.Fatalf("rewrapped %d, failed %d (%v), changed %d; want %d, %d, 0",
					s.Rewrapped, s.Failed, s.Reasons, s.Changed, tc.rewrapped, tc.failed)
			}
			if tc.failed > 0 && s.Reasons["keys kept changing"] != tc.failed {
				t.Fatalf("reasons %v, want %d of \"keys kept changing\"", s.Reasons, tc.failed)
			}
			// what a status run then reports: the objects still on the old key
			st := run(t, m, keys, func(o *Options) { o.DryRun = true })
			if got := st.Keys[KeyRef{"p1", old}]; got != tc.left {
				t.Fatalf("status: %d objects on the old key, want %d", got, tc.left)
			}
		})
	}
}
