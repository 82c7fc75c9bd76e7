// Package rewraptest is test support for the rewrap job: a node of one
// device (d1), a key service in memory, and encrypted objects written to
// the node as the object server writes them. Package rewrap's tests use
// it, and so does make bench's rewrap rate report (tools/speedreport
// rewrap), which runs the job outside a test.
//
// It is test support: import it from tests and benchmark tools only.
package rewraptest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/internal/etag"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Device is the node's one device.
const Device = "d1"

// NewNode makes a node with one device (Device) under dir, its writes not
// synced to disk (a test's files need not survive a crash).
func NewNode(dir string) (*diskfile.Manager, error) {
	if err := os.MkdirAll(filepath.Join(dir, Device), 0o750); err != nil {
		return nil, fmt.Errorf("rewraptest: node: %w", err)
	}
	return &diskfile.Manager{Devices: dir, NoFsync: true}, nil
}

// Keys is a key service in memory: a keyclient.Resolver whose keys are
// made by Rotate and destroyed by Destroy. It is safe for concurrent use.
type Keys struct {
	mu        sync.Mutex
	active    map[string]string
	material  map[string][]byte
	destroyed map[string]bool
}

// NewKeys returns a key service with no keys.
func NewKeys() *Keys {
	return &Keys{active: map[string]string{}, material: map[string][]byte{}, destroyed: map[string]bool{}}
}

// Rotate makes a new random key for project, now its active key, and
// returns its id.
func (k *Keys) Rotate(project string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := fmt.Sprintf("%s-key-%d", project, len(k.material))
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k.material[project+"/"+id] = b
	k.active[project] = id
	return id
}

// Destroy makes project's key id answer keyclient.ErrDestroyed.
func (k *Keys) Destroy(project, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.destroyed[project+"/"+id] = true
}

// ActiveKey is project's active key, keyclient.ErrNotFound before the
// first Rotate.
func (k *Keys) ActiveKey(_ context.Context, project string) (keyclient.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.active[project]
	if !ok {
		return keyclient.Key{}, keyclient.ErrNotFound
	}
	return keyclient.Key{ID: id, ProjectID: project}, nil
}

// KeyMaterial is the bytes of project's key id.
func (k *Keys) KeyMaterial(_ context.Context, project, id string) ([]byte, error) {
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

var lastTS struct {
	sync.Mutex
	raw int64
}

// NextTimestamp is now as a Swift timestamp, later than every one it
// returned before (one write per timestamp, as the object server has it).
func NextTimestamp() diskfile.Timestamp {
	lastTS.Lock()
	defer lastTS.Unlock()
	raw := time.Now().UnixNano() / int64(10*time.Microsecond)
	if raw <= lastTS.raw {
		raw = lastTS.raw + 1
	}
	lastTS.raw = raw
	return diskfile.Timestamp{Raw: raw}
}

// Partition spreads objects over 8 partitions by name.
func Partition(obj string) string {
	n := 0
	for _, c := range []byte(obj) {
		n += int(c)
	}
	return fmt.Sprint(n % 8)
}

// PutObject writes obj of account AUTH_<project>, container c, encrypted
// under project's active key, as the object server's PUT does: AES-256,
// the plaintext ETag sealed and MACed, the stored ETag, its crypto sysmeta,
// and extra metadata on top (its user metadata sealed).
func PutObject(m *diskfile.Manager, keys *Keys, project, obj string, body []byte, extra map[string]string) error {
	if err := putObject(m, keys, project, obj, body, extra, false, -1); err != nil {
		return fmt.Errorf("rewraptest: putting %s of %s: %w", obj, project, err)
	}
	return nil
}

// PutOldECArchive writes obj as an erasure-coded fragment archive (index
// fragIndex, durable: <ts>#<index>#d.data) stored as the object server
// stored every archive before objcrypt's EC layout: one objcrypt stream,
// its sealed ETag that of the archive. An X-Object-Sysmeta-Ec-Etag in
// extra is stored sealed, as the object server stores it.
func PutOldECArchive(m *diskfile.Manager, keys *Keys, project, obj string, archive []byte, fragIndex int, extra map[string]string) error {
	if err := putObject(m, keys, project, obj, archive, extra, false, fragIndex); err != nil {
		return fmt.Errorf("rewraptest: putting archive %s of %s: %w", obj, project, err)
	}
	return nil
}

// FragmentArchive is a fragment archive as liberasurecode 1.6 lays it out
// (rs_vand 4+2, header fields as pyeclib writes them): frags fragments of
// stride payload bytes, the last of last bytes, random payloads.
func FragmentArchive(idx uint32, frags, stride, last int) []byte {
	var out []byte
	for i := range frags {
		n := stride
		if i == frags-1 {
			n = last
		}
		h := make([]byte, objcrypt.ECHeaderLen)
		binary.LittleEndian.PutUint32(h[0:], idx)
		binary.LittleEndian.PutUint32(h[4:], uint32(n))
		binary.LittleEndian.PutUint64(h[12:], uint64(4*n))
		h[20], h[54] = 1, 6
		binary.LittleEndian.PutUint32(h[55:], 0x10000)
		binary.LittleEndian.PutUint32(h[59:], 0xb0c5ecc)
		binary.LittleEndian.PutUint32(h[63:], 0x10602)
		binary.LittleEndian.PutUint32(h[67:], crc32.ChecksumIEEE(h[:59]))
		out = append(out, h...)
		p := make([]byte, n)
		_, _ = rand.Read(p)
		out = append(out, p...)
	}
	return out
}

// ECEtagDomain is what the path of an EC object's sealed whole-object ETag
// is followed by (objcrypt/SPEC.md, "Fragment index and EC metadata").
const ECEtagDomain = "\x00X-Object-Sysmeta-Ec-Etag"

// PutLegacyObject writes obj as the object server did before ETags and
// metadata were encrypted: the plaintext ETag in sysmeta, extra metadata
// in clear.
func PutLegacyObject(m *diskfile.Manager, keys *Keys, project, obj string, body []byte, extra map[string]string) error {
	if err := putObject(m, keys, project, obj, body, extra, true, -1); err != nil {
		return fmt.Errorf("rewraptest: putting %s of %s: %w", obj, project, err)
	}
	return nil
}

func putObject(m *diskfile.Manager, keys *Keys, project, obj string, body []byte, extra map[string]string, legacy bool, fragIndex int) error {
	ctx := context.Background()
	df, err := m.Object(Device, Partition(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		return err
	}
	id, err := keys.ActiveKey(ctx, project)
	if err != nil {
		return err
	}
	pk, err := keys.KeyMaterial(ctx, project, id.ID)
	if err != nil {
		return err
	}
	w, err := df.Create()
	if err != nil {
		return err
	}
	defer w.Abort()
	sums := etag.New(true)
	ow, err := objcrypt.NewWriter(w.File(), objcrypt.ProjectKey{ID: id.ID, Key: pk}, df.Name,
		&objcrypt.WriterOptions{Algorithm: objcrypt.AES256CBC, Observer: sums})
	if err != nil {
		return err
	}
	if _, err := ow.Write(body); err != nil {
		return err
	}
	if err := ow.Close(); err != nil {
		return err
	}
	key := objcrypt.ProjectKey{ID: id.ID, Key: pk}
	cm := sysmeta.Object{Metadata: ow.Metadata(), PlaintextEtag: sums.Plaintext()}
	if !legacy {
		cm.PlaintextEtag = ""
		if cm.SealedEtag, err = ow.ETagKeys().EncryptETag(sums.Plaintext(), df.Name, nil); err != nil {
			return err
		}
		cm.EtagMAC = ow.ETagKeys().ETagMAC(sums.Plaintext())
	}
	meta := cm.Map()
	meta["Content-Length"] = fmt.Sprint(cm.StoredLength)
	meta["ETag"] = sums.Stored()
	meta["Content-Type"] = "text/plain"
	ts := NextTimestamp()
	meta["X-Timestamp"] = ts.Internal()
	for k, v := range extra {
		meta[k] = v
	}
	name := ts.Internal() + ".data"
	if fragIndex >= 0 {
		name = diskfile.ECFileName(ts, fragIndex, true)
		meta["X-Object-Sysmeta-Ec-Frag-Index"] = fmt.Sprint(fragIndex)
		if v, ok := meta["X-Object-Sysmeta-Ec-Etag"]; ok {
			delete(meta, "X-Object-Sysmeta-Ec-Etag")
			if meta[sysmeta.Prefix+sysmeta.EcEtag], err = ow.ETagKeys().EncryptETag(v, df.Name+ECEtagDomain, nil); err != nil {
				return err
			}
		}
	}
	if !legacy {
		mk, err := objcrypt.NewMetaKey(key)
		if err != nil {
			return err
		}
		if err := sysmeta.SealUserMeta(meta, mk, df.Name, sysmeta.DataSet, nil); err != nil {
			return err
		}
	}
	return w.Commit(ctx, name, meta)
}
