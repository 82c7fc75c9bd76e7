package diskfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/ringhash"
)

// Errors callers map to HTTP statuses.
var (
	// ErrDeviceUnavailable: the device does not exist or is not mounted (507).
	ErrDeviceUnavailable = errors.New("diskfile: device unavailable")
	// ErrNotFound: no data file (404); see NotFoundError for the tombstone.
	ErrNotFound = errors.New("diskfile: object not found")
	// ErrXattrNotSupported: the filesystem has no user xattrs (507).
	ErrXattrNotSupported = errors.New("diskfile: filesystem does not support xattrs")
	// ErrNoSpace: ENOSPC or EDQUOT (507).
	ErrNoSpace = errors.New("diskfile: no space left on device")
)

// NotFoundError is an ErrNotFound that may know a tombstone's timestamp
// (the proxy needs it as X-Backend-Timestamp) or that the file was just
// quarantined.
type NotFoundError struct {
	Tombstone   *Timestamp
	Quarantined string // the reason, when the object was quarantined
}

func (e *NotFoundError) Error() string {
	switch {
	case e.Quarantined != "":
		return "diskfile: object quarantined: " + e.Quarantined
	case e.Tombstone != nil:
		return "diskfile: object deleted at " + e.Tombstone.Internal()
	}
	return ErrNotFound.Error()
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Manager finds and writes objects on the devices of one server.
type Manager struct {
	Devices    string
	MountCheck bool
	ReclaimAge time.Duration
	Hasher     ringhash.Hasher
	// NoFsync skips fsync (tests only: it gives up durability).
	NoFsync bool
	// ECFragments gives, for each erasure-coded policy, its number of
	// fragments (ndata + nparity); other policies are replicated.
	ECFragments map[int]int
	// NamedTemp makes every Writer use a named temporary file in the
	// device's tmp directory, as where the file system refuses O_TMPFILE
	// (tests of that fallback).
	NamedTemp bool
	// FallocateReserve and DisableFallocate are Swift's fallocate_reserve
	// and disable_fallocate (Writer.Allocate); the zero Reserve checks
	// nothing.
	FallocateReserve Reserve
	DisableFallocate bool

	// noTmpfile: a device refused O_TMPFILE, or linking an unnamed file
	// through /proc failed; named temporary files from then on (Swift's
	// use_linkat = False).
	noTmpfile atomic.Bool
}

// PolicyDir is "objects" for policy 0 and "objects-N" otherwise; the same
// rule names async_pending and tmp.
func PolicyDir(base string, policy int) string {
	if policy == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(policy)
}

// validName rejects device or partition names that would escape Devices.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00") && len(s) <= 255
}

// DevicePath checks the device and returns its path.
func (m *Manager) DevicePath(device string) (string, error) {
	if !validName(device) {
		return "", fmt.Errorf("%w: bad device name", ErrDeviceUnavailable)
	}
	p := filepath.Join(m.Devices, device)
	// stat(2) into a Stat_t here, not os.Stat: every request checks its
	// device, and os.Stat allocates a FileInfo each time.
	var st unix.Stat_t
	if err := stat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", fmt.Errorf("%w: %s", ErrDeviceUnavailable, device)
	}
	if m.MountCheck {
		var parent unix.Stat_t
		if err := stat(m.Devices, &parent); err != nil {
			return "", fmt.Errorf("%w: %s", ErrDeviceUnavailable, device)
		}
		if st.Dev == parent.Dev {
			return "", fmt.Errorf("%w: %s is not mounted", ErrDeviceUnavailable, device)
		}
	}
	return p, nil
}

// DiskFile is one object's place on one device.
type DiskFile struct {
	m       *Manager
	devPath string
	policy  int
	part    string
	Hash    string
	// Name is "/account/container/object".
	Name string
	// EC chooses the fragment Open opens under an EC policy (nil: the
	// durable one with the highest index, as Swift without preferences).
	EC *ECOptions
	// uncheckedDevice is the device ObjectToRead did not check yet (Open
	// does when the object's directory does not list).
	uncheckedDevice string
}

// nfrags is the policy's fragment count, 0 for a replicated policy.
func (d *DiskFile) nfrags() int { return d.m.ECFragments[d.policy] }

// IsEC reports whether the object's policy is erasure-coded.
func (d *DiskFile) IsEC() bool { return d.nfrags() > 0 }

// Fragments is X-Backend-Fragments: the fragment indexes on disk at each
// timestamp (newest first), durable or not.
type Fragments []FragSet

// FragSet is the fragment indexes present at one timestamp.
type FragSet struct {
	Timestamp Timestamp
	Indexes   []int
}

// Object locates an object. It checks the device, not the object.
func (m *Manager) Object(device, partition string, policy int, account, container, object string) (*DiskFile, error) {
	dev, err := m.DevicePath(device)
	if err != nil {
		return nil, err
	}
	if !validName(partition) {
		return nil, fmt.Errorf("%w: bad partition", ErrDeviceUnavailable)
	}
	return &DiskFile{
		m: m, devPath: dev, policy: policy, part: partition,
		Hash: m.Hasher.HashPath(account, container, object),
		Name: "/" + account + "/" + container + "/" + object,
	}, nil
}

// ObjectToRead is Object for a GET or HEAD, which lists the object's
// directory at once: without mount_check the device's stat(2) (Swift's
// isdir) is left to Open, which makes it only when the directory does not
// list, since a directory that lists is on a device that is there. A
// missing device is still ErrDeviceUnavailable, from Open; an object
// found costs one system call less.
func (m *Manager) ObjectToRead(device, partition string, policy int, account, container, object string) (*DiskFile, error) {
	if m.MountCheck {
		return m.Object(device, partition, policy, account, container, object)
	}
	if !validName(device) {
		return nil, fmt.Errorf("%w: bad device name", ErrDeviceUnavailable)
	}
	if !validName(partition) {
		return nil, fmt.Errorf("%w: bad partition", ErrDeviceUnavailable)
	}
	return &DiskFile{
		m: m, devPath: filepath.Join(m.Devices, device), policy: policy, part: partition,
		Hash:            m.Hasher.HashPath(account, container, object),
		Name:            "/" + account + "/" + container + "/" + object,
		uncheckedDevice: device,
	}, nil
}

// ObjectFromHash locates an object by its hash (SSYNC's missing check):
// its name is then whatever its .data file's metadata says.
func (m *Manager) ObjectFromHash(device, partition string, policy int, hash string) (*DiskFile, error) {
	dev, err := m.DevicePath(device)
	if err != nil {
		return nil, err
	}
	if !validName(partition) || len(hash) != 32 || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: bad partition or hash", ErrDeviceUnavailable)
	}
	return &DiskFile{m: m, devPath: dev, policy: policy, part: partition, Hash: hash}, nil
}

func (d *DiskFile) partPath() string {
	return filepath.Join(d.devPath, PolicyDir("objects", d.policy), d.part)
}

// Dir is the object's hash directory.
func (d *DiskFile) Dir() string {
	return filepath.Join(d.partPath(), d.Hash[len(d.Hash)-3:], d.Hash)
}

// Object is an opened object: its merged metadata and, unless it is a
// tombstone, its data file.
type Object struct {
	File *ReadFile
	Size int64 // bytes of the data file
	// Metadata is what Swift's DiskFile reports: the .meta file's values
	// over the .data file's, with Content-Length, ETag, deleted,
	// X-Static-Large-Object and all sysmeta always from the .data file.
	// Values are raw header bytes.
	Metadata     map[string]string
	DataMetadata map[string]string
	MetaMetadata map[string]string // nil without a .meta file
	DataTS       Timestamp
	// ContentTypeTS is when the content type was last set.
	ContentTypeTS Timestamp
	// EC policies: the fragment archive's index, the newest durable
	// timestamp (nil when none) and every fragment on disk.
	FragIndex int
	DurableTS *Timestamp
	Fragments Fragments
}

// Close closes the data file.
func (o *Object) Close() error {
	if o.File == nil {
		return nil
	}
	return o.File.Close()
}

// Timestamp is the object's newest timestamp (X-Backend-Timestamp).
func (o *Object) Timestamp() Timestamp {
	t, _ := ParseTimestamp(o.Metadata["X-Timestamp"])
	return t
}

// reserved names the .data metadata that a .meta never overrides.
var reservedDataMeta = map[string]bool{"content-length": true, "deleted": true, "etag": true, "x-static-large-object": true}

// Open opens the object. A missing object is a *NotFoundError (with the
// tombstone's timestamp when there is one); a file whose metadata is
// unreadable, fails its checksum, names another object or whose size
// disagrees is quarantined and reported as not found.
func (d *DiskFile) Open() (*Object, error) {
	dir := d.Dir()
	names, err := listDir(dir)
	if d.uncheckedDevice != "" && (err != nil || len(names) == 0) {
		if _, derr := d.m.DevicePath(d.uncheckedDevice); derr != nil {
			return nil, derr
		}
		d.uncheckedDevice = ""
	}
	if err != nil {
		return nil, fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	st := d.m.gatherFor(names, d.policy, d.EC)
	if st.data == nil {
		nf := &NotFoundError{}
		if st.ts != nil {
			t := st.ts.ts
			nf.Tombstone = &t
		}
		return nil, nf
	}
	f, err := openReadFile(filepath.Join(dir, st.data.name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotFoundError{}
		}
		return nil, fmt.Errorf("diskfile: opening data: %w", err)
	}
	obj := &Object{File: f, DataTS: st.data.ts, ContentTypeTS: st.data.ts, FragIndex: st.data.frag, DurableTS: st.durableTS}
	for _, set := range st.fragSets {
		fs := FragSet{Timestamp: set[0].ts}
		for _, f := range set {
			fs.Indexes = append(fs.Indexes, f.frag)
		}
		obj.Fragments = append(obj.Fragments, fs)
	}
	err = d.checkData(obj)
	if err == nil {
		err = d.mergeMeta(obj, &st)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, errBadMetadata) {
			return nil, d.quarantine(err.Error())
		}
		return nil, err
	}
	return obj, nil
}

// checkData reads the .data file's metadata and checks that it names this
// object and the file's size.
func (d *DiskFile) checkData(obj *Object) error {
	var fst unix.Stat_t
	err := obj.File.withFd("read", func(fd int) error {
		var err error
		if obj.DataMetadata, err = readMetadata(fd); err != nil {
			return err
		}
		// fstat(2) into a Stat_t: os.File.Stat allocates a FileInfo.
		if err := fstatFd(fd, obj.File.name, &fst); err != nil {
			return fmt.Errorf("diskfile: stat: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d.Name == "" {
		d.Name = obj.DataMetadata["name"] // located by hash
	}
	if obj.DataMetadata["name"] != d.Name {
		return fmt.Errorf("%w: name %q does not match", errBadMetadata, obj.DataMetadata["name"])
	}
	obj.Size = fst.Size
	if cl, ok := obj.DataMetadata["Content-Length"]; ok && cl != strconv.FormatInt(obj.Size, 10) {
		return fmt.Errorf("%w: Content-Length %s but %d bytes on disk", errBadMetadata, cl, obj.Size)
	}
	if n := d.nfrags(); n > 0 {
		// The file's name and its metadata must agree on the fragment
		// index: the proxy decodes by the index the metadata gives.
		fi, err := validFragIndex(obj.DataMetadata["X-Object-Sysmeta-Ec-Frag-Index"], n)
		if err != nil || fi != obj.FragIndex {
			return fmt.Errorf("%w: fragment index %q in a file of fragment %d", errBadMetadata, obj.DataMetadata["X-Object-Sysmeta-Ec-Frag-Index"], obj.FragIndex)
		}
	}
	return nil
}

// mergeMeta reads the .meta files that count and merges them over the
// .data file's metadata as Swift does: the .data file keeps its reserved
// keys and all sysmeta, the content type goes with its timestamp.
func (d *DiskFile) mergeMeta(obj *Object, st *state) error {
	if st.meta == nil {
		obj.Metadata = obj.DataMetadata
		return nil
	}
	var err error
	obj.MetaMetadata, err = d.readMetaFile(st.meta.name)
	if err != nil {
		return err
	}
	if st.ctype != nil && st.ctype.name != st.meta.name {
		cm, err := d.readMetaFile(st.ctype.name)
		if err != nil {
			return err
		}
		for _, k := range []string{"Content-Type", "Content-Type-Timestamp"} {
			if v, ok := cm[k]; ok {
				obj.MetaMetadata[k] = v
			}
		}
	}
	merged := make(map[string]string, len(obj.DataMetadata)+len(obj.MetaMetadata))
	for k, v := range obj.MetaMetadata {
		merged[k] = v
	}
	for k, v := range obj.DataMetadata {
		lk := strings.ToLower(k)
		if reservedDataMeta[lk] || strings.HasPrefix(lk, "x-object-sysmeta-") {
			merged[k] = v
		}
	}
	if ct, ok := merged["Content-Type-Timestamp"]; ok {
		if t, err := ParseTimestamp(ct); err == nil && !st.data.ts.After(t) {
			obj.ContentTypeTS = t
		} else {
			merged["Content-Type"] = obj.DataMetadata["Content-Type"]
			delete(merged, "Content-Type-Timestamp")
		}
	} else {
		merged["Content-Type"] = obj.DataMetadata["Content-Type"]
	}
	delete(obj.MetaMetadata, "name")
	obj.Metadata = merged
	return nil
}

func (d *DiskFile) readMetaFile(name string) (map[string]string, error) {
	f, err := openReadFile(filepath.Join(d.Dir(), name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotFoundError{}
		}
		return nil, fmt.Errorf("diskfile: opening meta: %w", err)
	}
	defer f.Close()
	var m map[string]string
	err = f.withFd("read", func(fd int) (err error) {
		m, err = readMetadata(fd)
		return err
	})
	if err != nil {
		return nil, err
	}
	if m["name"] != d.Name {
		return nil, fmt.Errorf("%w: .meta name %q does not match", errBadMetadata, m["name"])
	}
	return m, nil
}

// Quarantine moves the object's hash directory to
// <device>/quarantined/objects[-N]/<hash>, as Swift's diskfile and auditor
// do with a file they cannot trust, so that replication restores a good
// copy from another node and nothing serves this one again. It returns the
// *NotFoundError (Quarantined set to reason) that the caller answers: a
// 404, which the proxy takes as "not on this node" and so asks the next.
// Callers use it for objects that open fine but that the object server
// refuses (what the disk says about encryption is not trusted).
func (d *DiskFile) Quarantine(reason string) error { return d.quarantine(reason) }

// quarantine moves the hash directory aside, as Swift does, so replication
// restores a good copy; it reports not found.
func (d *DiskFile) quarantine(reason string) error {
	to := filepath.Join(d.devPath, "quarantined", PolicyDir("objects", d.policy), d.Hash)
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err == nil {
		if err := os.Rename(d.Dir(), to); err != nil {
			_ = os.Rename(d.Dir(), fmt.Sprintf("%s-%d", to, time.Now().UnixNano()))
		}
	}
	_ = d.m.invalidate(d.partPath(), d.Hash[len(d.Hash)-3:])
	return &NotFoundError{Quarantined: reason}
}

func fsErr(op string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %s: %w", ErrNoSpace, op, err)
	}
	return fmt.Errorf("diskfile: %s: %w", op, err)
}
