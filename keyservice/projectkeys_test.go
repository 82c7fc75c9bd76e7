package keyservice

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

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

func (m *memKeys) GetProjectKEK(_ context.Context, p string) (ProjectKEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keks[p]
	if !ok {
		return k, ErrNotFound
	}
	return k, nil
}

func (m *memKeys) CreateProjectKEK(_ context.Context, k ProjectKEK) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keks[k.ProjectID]; ok {
		return ErrConflict
	}
	m.keks[k.ProjectID] = k
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

func (m *memKeys) DestroyProjectKey(_ context.Context, id string, force bool, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	switch {
	case !ok:
		return ErrNotFound
	case k.Status == ProjectKeyDestroyed:
		return ErrGone
	case k.Status == ProjectKeyActive && !force:
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

func newKeyService(t *testing.T, protocol string) (*Service, *memKeys) {
	t.Helper()
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk", Key: bytes.Repeat([]byte{7}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	store := newMemKeys()
	svc, err := New(store, ring, Options{ProjectKeyProtocol: protocol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc, store
}

func TestProjectKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		protocol string
		bytes    int
	}{{"", 16}, {ProtocolAES128CBC, 16}, {ProtocolAES256CBC, 32}} {
		t.Run(tc.protocol, func(t *testing.T) {
			svc, _ := newKeyService(t, tc.protocol)
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
