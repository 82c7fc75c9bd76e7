package keyservice

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/keyservice/envelope"
)

// memKeys is an in-memory store for the service rules of project keys; the
// SQL stores are checked by the conformance suite (keyservice/storetest).
type memKeys struct {
	Store // the rest is unused here
	mu    sync.Mutex
	keks  map[string]ProjectKEK
	keys  map[string]*ProjectKey
	audit []KeyAuditRecord
	fail  error // AppendKeyAudit fails with it when set
}

func newMemKeys() *memKeys {
	return &memKeys{keks: map[string]ProjectKEK{}, keys: map[string]*ProjectKey{}}
}

func (m *memKeys) GetProjectKEK(_ context.Context, p, store string) (ProjectKEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keks[p+"\x00"+store]
	if !ok {
		return k, ErrNotFound
	}
	return k, nil
}

func (m *memKeys) CreateProjectKEK(_ context.Context, k ProjectKEK) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := k.ProjectID + "\x00" + k.SecretStore
	if _, ok := m.keks[key]; ok {
		return ErrConflict
	}
	m.keks[key] = k
	return nil
}

func (m *memKeys) activeLocked(p string) *ProjectKey {
	for _, k := range m.keys {
		if k.ProjectID == p && k.Status == ProjectKeyActive {
			return k
		}
	}
	return nil
}

func (m *memKeys) CreateProjectKey(_ context.Context, k *ProjectKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.activeLocked(k.ProjectID) != nil {
		return ErrConflict
	}
	c := *k
	m.keys[k.ID] = &c
	return nil
}

func (m *memKeys) GetActiveProjectKey(_ context.Context, p string) (*ProjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.activeLocked(p); k != nil {
		c := *k
		return &c, nil
	}
	return nil, ErrNotFound
}

func (m *memKeys) GetProjectKey(_ context.Context, id string) (*ProjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[id]; ok {
		c := *k
		return &c, nil
	}
	return nil, ErrNotFound
}

func (m *memKeys) ListProjectKeys(_ context.Context, p string, limit, offset int) ([]*ProjectKey, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []*ProjectKey
	for _, k := range m.keys {
		if k.ProjectID == p {
			c := *k
			all = append(all, &c)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	total := len(all)
	all = all[min(offset, total):min(offset+limit, total)]
	return all, total, nil
}

func (m *memKeys) RotateProjectKey(_ context.Context, oldID string, next *ProjectKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.keys[oldID]
	if !ok || old.Status != ProjectKeyActive || old.ProjectID != next.ProjectID {
		return ErrConflict
	}
	old.Status = ProjectKeyDeactivated
	t := next.Created
	old.Deactivated = &t
	c := *next
	m.keys[next.ID] = &c
	return nil
}

func (m *memKeys) DestroyProjectKey(_ context.Context, id string, force bool, deactivatedBy, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	switch {
	case !ok:
		return ErrNotFound
	case k.Status == ProjectKeyDestroyed:
		return ErrGone
	case k.Status != ProjectKeyDeactivated:
		return ErrConflict
	case !force && (k.Deactivated == nil || k.Deactivated.After(deactivatedBy)):
		return ErrConflict
	}
	k.Status, k.Material, k.Destroyed = ProjectKeyDestroyed, nil, &now
	return nil
}

func (m *memKeys) AppendKeyAudit(_ context.Context, recs []KeyAuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, r := range recs {
		r.ID = int64(len(m.audit) + 1)
		m.audit = append(m.audit, r)
	}
	return nil
}

func (m *memKeys) ListKeyAudit(_ context.Context, f KeyAuditFilter) ([]KeyAuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []KeyAuditRecord
	for _, r := range m.audit {
		if r.ProjectID == f.ProjectID && (f.KeyID == "" || r.KeyID == f.KeyID) && r.ID > f.AfterID {
			out = append(out, r)
		}
	}
	return out, nil
}

// testClock is a settable clock for the service (Options.Now).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newKeyService(t *testing.T, protocol string) (*Service, *memKeys) {
	t.Helper()
	svc, store, _ := newKeyServiceWith(t, Options{ProjectKeyProtocol: protocol})
	return svc, store
}

// newKeyServiceWith returns a service over a memKeys store whose clock
// moves only when the test says so.
func newKeyServiceWith(t *testing.T, opts Options) (*Service, *memKeys, *testClock) {
	t.Helper()
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk", Key: bytes.Repeat([]byte{7}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	store := newMemKeys()
	clock := &testClock{now: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
	opts.Now = clock.Now
	svc, err := New(store, ring, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc, store, clock
}

func TestProjectKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		protocol string
		bytes    int
	}{{"", 16}, {ProtocolAES128CBC, 16}, {ProtocolAES256CBC, 32}} {
		t.Run(tc.protocol, func(t *testing.T) {
			svc, _, clock := newKeyServiceWith(t, Options{ProjectKeyProtocol: tc.protocol})
			caller := Caller{ProjectID: "svc", UserID: "arca", Roles: []string{"service"}, RequestID: "req-1"}
			first, err := svc.ActiveProjectKey(ctx, caller, "p1")
			if err != nil {
				t.Fatal(err)
			}
			again, err := svc.ActiveProjectKey(ctx, caller, "p1")
			if err != nil || again.ID != first.ID {
				t.Fatalf("second GET active: %v %v", again, err)
			}
			raw, err := svc.ProjectKeyMaterial(ctx, caller, first)
			if err != nil || len(raw) != tc.bytes || first.BitLength != tc.bytes*8 {
				t.Fatalf("material %d bytes (%d bits), %v", len(raw), first.BitLength, err)
			}
			if bytes.Contains(first.Material, raw) {
				t.Fatal("material stored in the clear")
			}
			clock.Advance(time.Second)
			second, err := svc.RotateProjectKey(ctx, caller, "p1")
			if err != nil || second.ID == first.ID {
				t.Fatalf("rotate: %v %v", second, err)
			}
			old, err := svc.LoadProjectKey(ctx, "p1", first.ID)
			if err != nil || old.Status != ProjectKeyDeactivated {
				t.Fatalf("old key after rotation: %+v %v", old, err)
			}
			if raw2, err := svc.ProjectKeyMaterial(ctx, caller, old); err != nil || !bytes.Equal(raw, raw2) {
				t.Fatalf("old key no longer resolves: %v", err)
			}
			if _, err := svc.LoadProjectKey(ctx, "p2", first.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("key of p1 loaded as p2's: %v", err)
			}
			cur, _ := svc.LoadProjectKey(ctx, "p1", second.ID)
			if err := svc.DestroyProjectKey(ctx, caller, cur, false); !errors.Is(err, ErrConflict) {
				t.Fatalf("destroying the active key without force: %v", err)
			}
			clock.Advance(DefaultActiveKeyCacheTTL) // past every object server's active-id cache
			if err := svc.DestroyProjectKey(ctx, caller, old, false); err != nil {
				t.Fatal(err)
			}
			gone, _ := svc.LoadProjectKey(ctx, "p1", first.ID)
			if _, err := svc.ProjectKeyMaterial(ctx, caller, gone); !errors.Is(err, ErrGone) {
				t.Fatalf("destroyed key: %v", err)
			}
			if err := svc.DestroyProjectKey(ctx, caller, gone, true); !errors.Is(err, ErrGone) {
				t.Fatalf("destroying twice: %v", err)
			}
			list, total, err := svc.ListProjectKeys(ctx, "p1", 10, 0)
			if err != nil || total != 2 || list[0].ID != second.ID {
				t.Fatalf("list: %v %d %v", list, total, err)
			}
			recs, err := svc.ProjectKeyAudit(ctx, KeyAuditFilter{ProjectID: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Action+":"+r.Outcome)
				if r.UserID != "arca" || !r.Service || r.RequestID != "req-1" || r.Time.IsZero() {
					t.Fatalf("audit record %+v", r)
				}
			}
			want := []string{"create:success", "payload:success", "rotate:success", "payload:success", "destroy:conflict", "destroy:success", "payload:gone", "destroy:gone"}
			if len(got) != len(want) {
				t.Fatalf("audit %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("audit %v, want %v", got, want)
				}
			}
		})
	}
}

func TestConcurrentFirstKey(t *testing.T) {
	svc, store := newKeyService(t, "")
	var wg sync.WaitGroup
	ids := make(chan string, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := svc.ActiveProjectKey(context.Background(), Caller{ProjectID: "p"}, "p")
			if err != nil {
				t.Error(err)
				return
			}
			ids <- k.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 || len(store.keys) != 1 {
		t.Fatalf("%d distinct keys returned, %d stored", len(seen), len(store.keys))
	}
}

func TestConcurrentRotations(t *testing.T) {
	svc, store := newKeyService(t, "")
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.RotateProjectKey(context.Background(), Caller{ProjectID: "p"}, "p"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	active := 0
	for _, k := range store.keys {
		if k.Status == ProjectKeyActive {
			active++
		}
	}
	if len(store.keys) != 16 || active != 1 {
		t.Fatalf("%d keys, %d active", len(store.keys), active)
	}
}

func TestPayloadRefusedWhenAuditBacklogFull(t *testing.T) {
	svc, store := newKeyService(t, "")
	ctx := context.Background()
	k, err := svc.ActiveProjectKey(ctx, Caller{ProjectID: "p"}, "p")
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.fail = errors.New("database down")
	store.mu.Unlock()
	a := svc.auditor()
	a.mu.Lock()
	for len(a.queue) < auditQueueSize {
		a.queue = append(a.queue, KeyAuditRecord{ProjectID: "filler"})
	}
	a.mu.Unlock()
	if _, err := svc.ProjectKeyMaterial(ctx, Caller{ProjectID: "p"}, k); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("payload with a full audit queue: %v, want ErrUnavailable", err)
	}
	a.mu.Lock()
	a.queue = a.queue[:0]
	a.mu.Unlock()
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
}

func TestAuditWrittenWithinASecondAndOnClose(t *testing.T) {
	svc, store := newKeyService(t, "")
	ctx := context.Background()
	if _, err := svc.ActiveProjectKey(ctx, Caller{ProjectID: "p"}, "p"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		store.mu.Lock()
		n := len(store.audit)
		store.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("audit record not written within 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 1200 {
		svc.AuditProjectKeyAccess(ctx, Caller{ProjectID: "p"}, AuditPayload, "p", "", ErrForbidden, string(rune('a'+i%26)))
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.audit) != 1201 {
		t.Fatalf("%d audit records after Close, want 1201", len(store.audit))
	}
}

// TestDestroyProjectKeyRules: who may not be destroyed, and what a refusal
// says. The ACTIVE key never (force or not); a key deactivated less than
// ActiveKeyCacheTTL ago only with force, and the refusal names the risk.
func TestDestroyProjectKeyRules(t *testing.T) {
	ctx := context.Background()
	caller := Caller{ProjectID: "p", UserID: "owner", Roles: []string{"admin"}, RequestID: "req-d"}
	for _, tc := range []struct {
		name   string
		ttl    time.Duration // Options.ActiveKeyCacheTTL; 0: the default
		target string        // "active" or "old" (deactivated at the rotation)
		age    time.Duration // time since the rotation
		force  bool
		// want is nil when the key is destroyed; else the error kind and
		// fragments of its description.
		want     error
		says     []string
		detail   string // the audit record's detail contains it
		noDetail bool   // the audit detail is empty
	}{
		{name: "active", target: "active", age: time.Hour, want: ErrConflict,
			says: []string{"active key", "rotate first"}, noDetail: true},
		{name: "active with force", target: "active", age: time.Hour, force: true, want: ErrConflict,
			says: []string{"active key", "rotate first"}, detail: "forced"},
		{name: "just deactivated", target: "old", age: 10 * time.Second, want: ErrConflict,
			says: []string{"deactivated 10s ago", "active_key_cache_ttl (1m10s)", "Retry in 1m0s", "force=true", "acknowledged", "unreadable"}, noDetail: true},
		{name: "deactivated a moment less than the TTL ago", target: "old", age: DefaultActiveKeyCacheTTL - time.Millisecond, want: ErrConflict,
			says: []string{"Retry in 1s"}, noDetail: true},
		{name: "just deactivated, forced", target: "old", age: 10 * time.Second, force: true,
			detail: "within active_key_cache_ttl 1m10s"},
		{name: "deactivated the default TTL ago", target: "old", age: DefaultActiveKeyCacheTTL, noDetail: true},
		{name: "shorter TTL passed", ttl: 5 * time.Second, target: "old", age: 6 * time.Second, noDetail: true},
		{name: "longer TTL not passed", ttl: 10 * time.Minute, target: "old", age: 5 * time.Minute, want: ErrConflict,
			says: []string{"deactivated 5m0s ago", "(10m0s)", "Retry in 5m0s"}, noDetail: true},
		{name: "forced after the TTL", target: "old", age: time.Hour, force: true, detail: "forced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, store, clock := newKeyServiceWith(t, Options{ActiveKeyCacheTTL: tc.ttl})
			old, err := svc.ActiveProjectKey(ctx, caller, "p")
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			active, err := svc.RotateProjectKey(ctx, caller, "p")
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(tc.age)
			k := map[string]*ProjectKey{"active": active, "old": old}[tc.target]
			// The caller's copy of the row, as the API and arca-manage load it.
			k, err = svc.LoadProjectKey(ctx, "p", k.ID)
			if err != nil {
				t.Fatal(err)
			}
			derr := svc.DestroyProjectKey(ctx, caller, k, tc.force)
			err = derr
			after, _ := store.GetProjectKey(ctx, k.ID)
			if tc.want == nil {
				if err != nil || after.Status != ProjectKeyDestroyed || after.Material != nil {
					t.Fatalf("destroy: %v, key %s", err, after.Status)
				}
			} else {
				var e *Error
				if !errors.Is(err, tc.want) || !errors.As(err, &e) {
					t.Fatalf("destroy: %v, want %v with a description", err, tc.want)
				}
				for _, frag := range tc.says {
					if !strings.Contains(e.Description, frag) {
						t.Errorf("refusal %q does not say %q", e.Description, frag)
					}
				}
				if after.Status == ProjectKeyDestroyed || after.Material == nil {
					t.Fatalf("refused destroy wiped the key: %+v", after)
				}
			}
			if cur, err := svc.ActiveProjectKey(ctx, caller, "p"); err != nil || cur.ID != active.ID {
				t.Fatalf("active key after the destroy: %v %v", cur, err)
			}
			recs, err := svc.ProjectKeyAudit(ctx, KeyAuditFilter{ProjectID: "p", KeyID: k.ID})
			if err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1]
			if last.Action != AuditDestroy || last.Outcome != OutcomeOf(derr) || last.UserID != "owner" {
				t.Fatalf("audit record %+v for %v", last, derr)
			}
			if tc.noDetail && last.Detail != "" || !strings.Contains(last.Detail, tc.detail) {
				t.Errorf("audit detail %q, want %q", last.Detail, tc.detail)
			}
		})
	}
}

// TestDefaultActiveKeyCacheTTL: arca-api's default destroy guard is the
// object servers' default active-key cache lifetime plus a margin of
// several seconds (clock skew between arca-api hosts, an upload's commit
// after its last key check), so that a default deployment never destroys
// a key an object server still writes under.
func TestDefaultActiveKeyCacheTTL(t *testing.T) {
	if ActiveKeyCacheMargin < 5*time.Second || DefaultActiveKeyCacheTTL != keyclient.DefaultActiveTTL+ActiveKeyCacheMargin {
		t.Fatalf("keyservice.DefaultActiveKeyCacheTTL %s, keyclient.DefaultActiveTTL %s, margin %s",
			DefaultActiveKeyCacheTTL, keyclient.DefaultActiveTTL, ActiveKeyCacheMargin)
	}
	for d, want := range map[time.Duration]string{
		DefaultActiveKeyCacheTTL: "70", 500 * time.Millisecond: "0.5", 2500 * time.Millisecond: "2.5",
		time.Millisecond: "0.001", 1999999 * time.Microsecond: "1.999",
	} {
		if got := ActiveKeyCacheTTLValue(d); got != want {
			t.Errorf("ActiveKeyCacheTTLValue(%s) = %q, want %q (seconds, rounded down)", d, got, want)
		}
	}
	if svc, _, _ := newKeyServiceWith(t, Options{}); svc.destroyWait != DefaultActiveKeyCacheTTL {
		t.Fatalf("zero ActiveKeyCacheTTL gives %s", svc.destroyWait)
	}
	ring, _ := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk", Key: bytes.Repeat([]byte{7}, envelope.KeySize)}})
	if _, err := New(newMemKeys(), ring, Options{ActiveKeyCacheTTL: -time.Second}); err == nil {
		t.Fatal("negative ActiveKeyCacheTTL accepted")
	}
}
