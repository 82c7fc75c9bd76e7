package rewrap

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// ttlKeys caches a resolver's answers for ttl since they were fetched, as
// keyclient.Client does (active_key_cache_ttl, key_cache_ttl).
type ttlKeys struct {
	keys     keyclient.Resolver
	ttl      time.Duration
	mu       sync.Mutex
	active   map[string]ttlEntry
	material map[string]ttlEntry
}

type ttlEntry struct {
	at  time.Time
	id  string
	raw []byte
}

func newTTLKeys(keys keyclient.Resolver, ttl time.Duration) *ttlKeys {
	return &ttlKeys{keys: keys, ttl: ttl, active: map[string]ttlEntry{}, material: map[string]ttlEntry{}}
}

func (c *ttlKeys) ActiveKey(ctx context.Context, project string) (keyclient.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.active[project]; ok && time.Since(e.at) < c.ttl {
		return keyclient.Key{ID: e.id, ProjectID: project}, nil
	}
	// the answer is as old as the request, not its reply
	at := time.Now()
	k, err := c.keys.ActiveKey(ctx, project)
	if err == nil {
		c.active[project] = ttlEntry{at: at, id: k.ID}
	}
	return k, err
}

func (c *ttlKeys) KeyMaterial(ctx context.Context, project, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.material[project+"/"+id]; ok && time.Since(e.at) < c.ttl {
		return e.raw, nil
	}
	// the answer is as old as the request, not its reply
	at := time.Now()
	raw, err := c.keys.KeyMaterial(ctx, project, id)
	if err == nil {
		c.material[project+"/"+id] = ttlEntry{at: at, raw: raw}
	}
	return raw, err
}

// askedKeys records the key material asked for, and marks (rotated) the
// instant a test rotates a key.
type askedKeys struct {
	keyclient.Resolver
	mu    sync.Mutex
	asked []string
}

func (a *askedKeys) KeyMaterial(ctx context.Context, project, id string) ([]byte, error) {
	a.mu.Lock()
	a.asked = append(a.asked, id)
	a.mu.Unlock()
	return a.Resolver.KeyMaterial(ctx, project, id)
}

func (a *askedKeys) rotated() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, "(rotated)")
}

// since lists the key ids asked for after the last rotation.
func (a *askedKeys) since() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.asked) - 1; i >= 0; i-- {
		if a.asked[i] == "(rotated)" {
			return append([]string(nil), a.asked[i+1:]...)
		}
	}
	return nil
}

// TestRotationDuringRunCommitsNothingOnTheOldKey rotates the project's key
// while a run is rewrapping onto it. arca-api lets a key deactivated
// active_key_cache_ttl ago be destroyed, so an object committed onto it
// after the rotation would be lost: every object must end on the key that
// is active when its rewrite is committed. A job that resolved the active
// key once per run moved every object onto the key rotated out.
func TestRotationDuringRunCommitsNothingOnTheOldKey(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	const n = 20
	for i := range n {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	target := keys.Rotate("p1")
	var once sync.Once
	var now string
	asked := &askedKeys{Resolver: keys}
	beforeReplace = func(string) { once.Do(func() { now = keys.Rotate("p1"); asked.rotated() }) }
	t.Cleanup(func() { beforeReplace = nil })
	s := run(t, m, keys, func(o *Options) { o.Workers, o.Keys = 1, asked })
	if s.Rewrapped != n || s.Failed != 0 || s.Keys[KeyRef{"p1", now}] != n || s.Active["p1"] != now {
		t.Fatalf("%+v", s)
	}
	// The object caught by the rotation is examined again after asking, with
	// no lock held, for the keys it needs: its own old key and the new one,
	// never the key rotated out.
	for _, id := range asked.since() {
		if id == target {
			t.Fatalf("asked for the material of %s after it was rotated out: %v", target, asked.since())
		}
	}
	for i := range n {
		obj := fmt.Sprint("o", i)
		got, o := readObject(t, m, keys, "p1", obj)
		cm, err := sysmeta.Parse(o.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if cm.KeyID == target {
			t.Errorf("%s committed onto %s, rotated out before the commit", obj, target)
		}
		if string(got) != string(body(i)) {
			t.Errorf("%s reads %q", obj, got)
		}
	}
}

// TestDestroyDuringRunStopsWithinKeyCacheTTL destroys the old key while a
// run is moving objects off it. Crypto-shredding must hold: once the key
// client's key_cache_ttl has passed, no object under the destroyed key is
// opened and rewrapped onto the active key (which would resurrect it). A
// job that kept the old key's bytes for the whole run rewrapped them all.
func TestDestroyDuringRunStopsWithinKeyCacheTTL(t *testing.T) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	const n = 30
	for i := range n {
		putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
	}
	active := keys.Rotate("p1")
	const ttl = 150 * time.Millisecond
	var mu sync.Mutex
	var calls int
	var destroyed time.Time
	rewrapAt := map[string]time.Time{}
	beforeReplace = func(path string) {
		mu.Lock()
		defer mu.Unlock()
		rewrapAt[path] = time.Now()
		if calls++; calls == 3 {
			keys.Destroy("p1", old)
			destroyed = time.Now()
		}
	}
	t.Cleanup(func() { beforeReplace = nil })
	s := run(t, m, keys, func(o *Options) {
		o.Keys = newTTLKeys(keys, ttl)
		o.Rate = 40 // about 0.75 s: several key_cache_ttl after the destroy
		o.Workers = 2
	})
	if destroyed.IsZero() {
		t.Fatalf("the key was never destroyed: %+v", s)
	}
	if s.Reasons["old key: key destroyed"] < n/2 || s.Rewrapped+s.Failed != n {
		t.Errorf("objects still rewrapped after the destroy: %+v", s)
	}
	for i := range n {
		obj := fmt.Sprint("o", i)
		df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_p1", "c", obj)
		if err != nil {
			t.Fatal(err)
		}
		o, err := df.Open()
		if err != nil {
			t.Fatal(err)
		}
		cm, err := sysmeta.Parse(o.Metadata)
		o.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cm.KeyID != active {
			continue
		}
		at, ok := rewrapAt[o.File.Name()]
		if !ok {
			t.Fatalf("%s is on the active key and was never rewrapped", o.File.Name())
		}
		if at.Sub(destroyed) >= ttl {
			t.Errorf("%s rewrapped %v after its key was destroyed (key_cache_ttl %v)", obj, at.Sub(destroyed), ttl)
		}
	}
}
