package api_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/keyservice"
)

// fakeClock is the service's clock (keyservice.Options.Now), moved by the
// test, so that "deactivated N seconds ago" is exact.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestProjectKeyDestroyGuards: DELETE /v1/project-keys/{id} on SQLite and
// MariaDB with active_key_cache_ttl = 60 s. The ACTIVE key is refused
// (409, rotate first) with or without force; a key deactivated less than
// the TTL ago is refused without force, and the refusal says what force
// risks; with force, or once the TTL has passed, it is destroyed.
func TestProjectKeyDestroyGuards(t *testing.T) {
	const ttl = 60 * time.Second
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		clock := &fakeClock{now: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
		e := newPKEnvWith(t, dialect, keyservice.Options{Now: clock.Now, ActiveKeyCacheTTL: ttl})
		for i, tc := range []struct {
			name   string
			target string        // "active", or "old": the key the rotation deactivated
			age    time.Duration // since the rotation
			force  bool
			want   int
			says   []string // fragments of the error description
		}{
			{"active", "active", time.Hour, false, 409, []string{"active key", "rotate first"}},
			{"active with force", "active", time.Hour, true, 409, []string{"active key", "rotate first"}},
			{"deactivated 1 s ago", "old", time.Second, false, 409,
				[]string{"deactivated 1s ago", "active_key_cache_ttl (1m0s)", "Retry in 59s", "force=true", "acknowledged", "unreadable"}},
			{"deactivated 59.999 s ago", "old", ttl - time.Millisecond, false, 409, []string{"force=true"}},
			{"deactivated 1 s ago, forced", "old", time.Second, true, 204, nil},
			{"deactivated the TTL ago", "old", ttl, false, 204, nil},
			{"deactivated an hour ago", "old", time.Hour, false, 204, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				admin := as{project: "guard" + string(rune('a'+i)), user: "dora", roles: "admin,member,reader"}
				old := e.key(admin, "GET", "/v1/project-keys/active", 200)["key_id"].(string)
				clock.Advance(time.Second)
				active := e.key(admin, "POST", "/v1/project-keys/rotate", 201)["key_id"].(string)
				clock.Advance(tc.age)
				id := map[string]string{"active": active, "old": old}[tc.target]
				path := "/v1/project-keys/" + id
				if tc.force {
					path += "?force=true"
				}
				body := e.status(admin, "DELETE", path, tc.want)
				if tc.want == 409 {
					var doc struct {
						Code        int    `json:"code"`
						Description string `json:"description"`
					}
					if err := json.Unmarshal(body, &doc); err != nil || doc.Code != 409 {
						t.Fatalf("409 body %s (%v)", body, err)
					}
					for _, frag := range tc.says {
						if !strings.Contains(doc.Description, frag) {
							t.Errorf("409 says %q, not %q", doc.Description, frag)
						}
					}
				}
				got := e.key(admin, "GET", "/v1/project-keys/"+id, 200)
				if destroyed := got["status"] == keyservice.ProjectKeyDestroyed; destroyed != (tc.want == 204) {
					t.Fatalf("DELETE answered %d, key now %v", tc.want, got["status"])
				}
				if now := e.key(admin, "GET", "/v1/project-keys/active", 200)["key_id"]; now != active {
					t.Fatalf("active key %v after the DELETE, want %s", now, active)
				}
			})
		}
	})
}
