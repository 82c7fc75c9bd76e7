package rewrap

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// metaFixture: four objects whose .meta files are on the old key (two),
// in the clear as an older release wrote them (one) and on the active key
// (one), the .data files on either key.
func metaFixture(t *testing.T) (*diskfile.Manager, *rewraptest.Keys, string, string) {
	m := newNode(t)
	keys := rewraptest.NewKeys()
	old := keys.Rotate("p1")
	putObject(t, m, keys, "p1", "old-data-old-meta", body(1), nil)
	if err := postObject(m, keys, "p1", "old-data-old-meta", map[string]string{"X-Object-Meta-Posted": "secret-one"}); err != nil {
		t.Fatal(err)
	}
	putObject(t, m, keys, "p1", "new-data-old-meta", body(2), nil)
	active := keys.Rotate("p1")
	putObject(t, m, keys, "p1", "new-data-old-meta", body(2), nil)
	// the .meta after the .data: sealed under the key rotated out
	if err := postUnder(m, keys, "p1", "new-data-old-meta", old, map[string]string{"X-Object-Meta-Posted": "secret-two"}); err != nil {
		t.Fatal(err)
	}
	putObject(t, m, keys, "p1", "plain-meta", body(3), nil)
	if err := postPlain(m, "p1", "plain-meta", map[string]string{"X-Object-Meta-Posted": "secret-three"}); err != nil {
		t.Fatal(err)
	}
	putObject(t, m, keys, "p1", "sealed-meta", body(4), nil)
	if err := postObject(m, keys, "p1", "sealed-meta", map[string]string{"X-Object-Meta-Posted": "secret-four"}); err != nil {
		t.Fatal(err)
	}
	return m, keys, old, active
}

// metaValues is every value in every .meta's metadata on the node.
func metaValues(t *testing.T, m *diskfile.Manager) []map[string]string {
	var out []map[string]string
	_ = filepath.Walk(m.Devices, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".meta") {
			raw, err := readRaw(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			out = append(out, raw.Values)
		}
		return nil
	})
	return out
}

// TestStatusCountsAndRewrapMovesMetaFiles: status counts the .meta files
// still on an old key and those in the clear (an older release's POST);
// the rewrap reseals the first and seals the second onto the active key,
// after which status counts none and every object shows its metadata.
func TestStatusCountsAndRewrapMovesMetaFiles(t *testing.T) {
	m, keys, old, active := metaFixture(t)
	dry := run(t, m, keys, func(o *Options) { o.DryRun = true })
	if dry.Metas(true) != 2 || dry.MetaKeys[KeyRef{"p1", old}] != 2 || dry.MetaPlain != 1 ||
		dry.MetaKeys[KeyRef{"p1", active}] != 1 || dry.MetaResealed != 2 || dry.MetaUpgraded != 1 {
		t.Fatalf("status: %+v", dry)
	}
	var out bytes.Buffer
	Report(&out, dry, true)
	if !strings.Contains(out.String(), ".meta files on inactive keys: 2, in the clear: 1") {
		t.Fatalf("status report:\n%s", out.String())
	}
	s := run(t, m, keys, nil)
	if s.Failed != 0 || s.MetaResealed != 2 || s.MetaUpgraded != 1 || s.Metas(true) != 0 || s.MetaPlain != 0 || s.MetaKeys[KeyRef{"p1", active}] != 4 {
		t.Fatalf("run: %+v", s)
	}
	for _, v := range metaValues(t, m) {
		for k, val := range v {
			if sysmeta.IsUserMeta(k) || strings.Contains(val, "secret-") {
				t.Errorf(".meta holds %s = %q after the rewrap", k, val)
			}
		}
		if v[sysmeta.TransientMetaKeyID] != active {
			t.Errorf(".meta on key %q, want %s", v[sysmeta.TransientMetaKeyID], active)
		}
	}
	want := map[string]string{"old-data-old-meta": "secret-one", "new-data-old-meta": "secret-two", "plain-meta": "secret-three", "sealed-meta": "secret-four"}
	keys.Destroy("p1", old)
	for obj, v := range want {
		if _, o := readObject(t, m, keys, "p1", obj); o.Metadata["X-Object-Meta-Posted"] != v {
			t.Errorf("%s: Posted %q, want %q", obj, o.Metadata["X-Object-Meta-Posted"], v)
		}
	}
	if again := run(t, m, keys, func(o *Options) { o.DryRun = true }); again.Metas(true) != 0 || again.MetaPlain != 0 || again.MetaResealed+again.MetaUpgraded != 0 {
		t.Fatalf("status after the rewrap: %+v", again)
	}
}

// lockSpy is a key service that records every request made while some
// partition lock of the node is held (flock is per open file, so a
// second open of the lock file in this process sees the job's lock).
type lockSpy struct {
	keyclient.Resolver
	devices string
	mu      sync.Mutex
	calls   int
	locked  []string
}

func (l *lockSpy) check(what string) {
	locks, _ := filepath.Glob(filepath.Join(l.devices, "*", "objects*", "*", ".lock"))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	for _, p := range locks {
		f, err := os.OpenFile(p, os.O_WRONLY, 0) //nolint:gosec // G304: the test's own node
		if err != nil {
			continue
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			l.locked = append(l.locked, what+" under "+p)
		} else {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
		f.Close()
	}
}

func (l *lockSpy) ActiveKey(ctx context.Context, project string) (keyclient.Key, error) {
	l.check("active key of " + project)
	return l.Resolver.ActiveKey(ctx, project)
}

func (l *lockSpy) KeyMaterial(ctx context.Context, project, id string) ([]byte, error) {
	l.check("material of " + id)
	return l.Resolver.KeyMaterial(ctx, project, id)
}

// TestNoKeyRequestUnderPartitionLock: every request to the key service
// (behind a client cache, as keyclient.Client) is made with no partition
// lock held, .meta keys included: a key service that is slow would
// otherwise hold up the object server's PUTs and the replicator on the
// partition. The job that asked for a .meta's keys while it held the lock
// made such requests.
func TestNoKeyRequestUnderPartitionLock(t *testing.T) {
	m, keys, _, _ := metaFixture(t)
	// a legacy object on the active key needs the active key's material too
	if err := rewraptest.PutLegacyObject(m, keys, "p1", "legacy", body(5), map[string]string{"X-Object-Meta-Color": "ochre"}); err != nil {
		t.Fatal(err)
	}
	spy := &lockSpy{Resolver: keys, devices: m.Devices}
	s := run(t, m, keys, func(o *Options) { o.Workers, o.Keys = 1, newTTLKeys(spy, time.Minute) })
	if s.Failed != 0 || s.MetaResealed != 2 || s.MetaUpgraded != 1 || s.Rewrapped != 2 {
		t.Fatalf("run: %+v", s)
	}
	if spy.calls == 0 || len(spy.locked) > 0 {
		t.Fatalf("%d key service requests, under a partition lock: %v", spy.calls, spy.locked)
	}
}
