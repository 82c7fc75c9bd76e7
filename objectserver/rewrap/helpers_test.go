package rewrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/internal/etag"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// fakeKeys is a key service in memory.
type fakeKeys struct {
	mu        sync.Mutex
	active    map[string]string
	material  map[string][]byte
	destroyed map[string]bool
}

func newFakeKeys() *fakeKeys {
	return &fakeKeys{active: map[string]string{}, material: map[string][]byte{}, destroyed: map[string]bool{}}
}

func (k *fakeKeys) rotate(project string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := fmt.Sprintf("%s-key-%d", project, len(k.material))
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k.material[project+"/"+id] = b
	k.active[project] = id
	return id
}

func (k *fakeKeys) destroy(project, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.destroyed[project+"/"+id] = true
}

func (k *fakeKeys) ActiveKey(_ context.Context, project string) (keyclient.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.active[project]
	if !ok {
		return keyclient.Key{}, keyclient.ErrNotFound
	}
	return keyclient.Key{ID: id, ProjectID: project}, nil
}

func (k *fakeKeys) KeyMaterial(_ context.Context, project, id string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed[project+"/"+id] {
		return nil, keyclient.ErrDestroyed
	}
	b, ok := k.material[project+"/"+id]
	if !ok {
		return nil, keyclient.ErrNotFound
	}
	return b, nil
}

var tsCounter struct {
	sync.Mutex
	last time.Time
}

func nextTS() diskfile.Timestamp {
	tsCounter.Lock()
	defer tsCounter.Unlock()
	t := time.Now()
	if !t.After(tsCounter.last) {
		t = tsCounter.last.Add(time.Microsecond * 10)
	}
	tsCounter.last = t
	ts, err := diskfile.ParseTimestamp(fmt.Sprintf("%.5f", float64(t.UnixNano())/1e9))
	if err != nil {
		panic(err)
	}
	return ts
}

// partFor spreads objects over 8 partitions.
func partFor(obj string) string {
	n := 0
	for _, c := range []byte(obj) {
		n += int(c)
	}
	return fmt.Sprint(n % 8)
}

// putObject writes an encrypted object as the object server does.
func putObject(tb testing.TB, m *diskfile.Manager, keys *fakeKeys, project, obj string, body []byte, extra map[string]string) {
	tb.Helper()
	if err := writeObject(m, keys, project, obj, body, extra); err != nil {
		tb.Fatal(err)
	}
}

// writeObject is putObject returning its error, for goroutines (a test
// may not fail from them with Fatal).
func writeObject(m *diskfile.Manager, keys *fakeKeys, project, obj string, body []byte, extra map[string]string) error {
	df, err := m.Object("d1", partFor(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		return err
	}
	id, err := keys.ActiveKey(context.Background(), project)
	if err != nil {
		return err
	}
	pk, err := keys.KeyMaterial(context.Background(), project, id.ID)
	if err != nil {
		return err
	}
	w, err := df.Create()
	if err != nil {
		return err
	}
	defer w.Abort()
	sums := etag.New(true)
	ow, err := objcrypt.NewWriter(w.File(), objcrypt.ProjectKey{ID: id.ID, Key: pk}, df.Name, &objcrypt.WriterOptions{Algorithm: objcrypt.AES256CBC, Observer: sums})
	if err != nil {
		return err
	}
	if _, err := ow.Write(body); err != nil {
		return err
	}
	if err := ow.Close(); err != nil {
		return err
	}
	cm := sysmeta.Object{Metadata: ow.Metadata(), PlaintextEtag: sums.Plaintext()}
	meta := cm.Map()
	meta["Content-Length"] = fmt.Sprint(cm.StoredLength)
	meta["ETag"] = sums.Stored()
	meta["Content-Type"] = "text/plain"
	ts := nextTS()
	meta["X-Timestamp"] = ts.Internal()
	for k, v := range extra {
		meta[k] = v
	}
	return w.Commit(context.Background(), ts.Internal()+".data", meta)
}

// postObject writes a .meta file with the user metadata meta, as the
// object server's POST does (it never carries crypto metadata).
func postObject(m *diskfile.Manager, project, obj string, meta map[string]string) error {
	return commitFile(m, project, obj, func(ts diskfile.Timestamp) (string, map[string]string) {
		values := map[string]string{"X-Timestamp": ts.Internal()}
		for k, v := range meta {
			values[k] = v
		}
		return diskfile.MetaName(ts, nil) + ".meta", values
	})
}

// deleteObject writes a tombstone, as the object server's DELETE does.
func deleteObject(m *diskfile.Manager, project, obj string) error {
	return commitFile(m, project, obj, func(ts diskfile.Timestamp) (string, map[string]string) {
		return ts.Internal() + ".ts", map[string]string{"X-Timestamp": ts.Internal()}
	})
}

// commitFile commits one bodiless file (.meta, .ts) of obj; file names it
// and gives its metadata for the timestamp the write gets.
func commitFile(m *diskfile.Manager, project, obj string, file func(diskfile.Timestamp) (string, map[string]string)) error {
	df, err := m.Object("d1", partFor(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		return err
	}
	w, err := df.Create()
	if err != nil {
		return err
	}
	defer w.Abort()
	name, values := file(nextTS())
	return w.Commit(context.Background(), name, values)
}

// readObject reads an object back as the object server's GET does: key id
// and wrapped key from the metadata.
func readObject(tb testing.TB, m *diskfile.Manager, keys *fakeKeys, project, obj string) ([]byte, *diskfile.Object) {
	tb.Helper()
	df, err := m.Object("d1", partFor(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		tb.Fatal(err)
	}
	o, err := df.Open()
	if err != nil {
		tb.Fatalf("open %s: %v", obj, err)
	}
	defer o.Close()
	cm, err := sysmeta.Parse(o.Metadata)
	if err != nil {
		tb.Fatal(err)
	}
	pk, err := keys.KeyMaterial(context.Background(), project, cm.KeyID)
	if err != nil {
		tb.Fatalf("%s: key %s: %v", obj, cm.KeyID, err)
	}
	r, err := objcrypt.NewReader(o.File, o.Size, objcrypt.ProjectKey{ID: cm.KeyID, Key: pk}, o.Metadata["name"],
		&objcrypt.ReaderOptions{KeyID: cm.KeyID, WrappedKey: cm.WrappedKey, Parallelism: 1})
	if err != nil {
		tb.Fatalf("%s: reader: %v", obj, err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		tb.Fatalf("%s: read: %v", obj, err)
	}
	return buf.Bytes(), o
}
