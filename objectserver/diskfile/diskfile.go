package diskfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
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

func (d *DiskFile) partPath() string {
	return filepath.Join(d.devPath, PolicyDir("objects", d.policy), d.part)
}

// Dir is the object's hash directory.
func (d *DiskFile) Dir() string {
	return filepath.Join(d.partPath(), d.Hash[len(d.Hash)-3:], d.Hash)
}

// fileInfo is one file of a hash directory.
type fileInfo struct {
	name  string
	ext   string
	ts    Timestamp
	ctype *Timestamp // .meta with a content-type timestamp
}

// state is the outcome of looking at a hash directory, as Swift's
// get_ondisk_files decides it.
type state struct {
	data, meta, ctype, ts *fileInfo
	obsolete              []string
	files                 int // files that stay
}

func parseFile(name string) (fileInfo, bool) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	fi := fileInfo{name: name, ext: ext}
	var err error
	switch ext {
	case ".data", ".ts":
		fi.ts, err = ParseTimestamp(base)
	case ".meta":
		fi.ts, fi.ctype, err = parseMetaName(base)
	default:
		return fi, false
	}
	return fi, err == nil
}

// gather decides which files of a directory count (newest .data or .ts,
// newest .meta and the .meta with the newest content type) and which are
// obsolete, following Swift's replication policy rules.
func gather(names []string) state {
	var st state
	var datas, tss, metas []fileInfo
	for _, n := range names {
		fi, ok := parseFile(n)
		if !ok {
			st.files++ // unexpected files stay (rsync temp files, ...)
			continue
		}
		switch fi.ext {
		case ".data":
			datas = append(datas, fi)
		case ".ts":
			tss = append(tss, fi)
		case ".meta":
			metas = append(metas, fi)
		}
	}
	newestFirst := func(s []fileInfo) {
		sort.Slice(s, func(i, j int) bool { return s[i].ts.After(s[j].ts) })
	}
	newestFirst(datas)
	newestFirst(tss)
	newestFirst(metas)
	drop := func(fs []fileInfo) {
		for _, f := range fs {
			st.obsolete = append(st.obsolete, f.name)
		}
	}
	// split keeps the files newer than t (or not older, with orEqual).
	split := func(fs []fileInfo, t Timestamp, keepEqual bool) []fileInfo {
		var keep []fileInfo
		for _, f := range fs {
			c := f.ts.Compare(t)
			if c > 0 || (keepEqual && c == 0) {
				keep = append(keep, f)
			} else {
				st.obsolete = append(st.obsolete, f.name)
			}
		}
		return keep
	}
	if len(tss) > 0 {
		datas = split(datas, tss[0].ts, false)
		metas = split(metas, tss[0].ts, false)
		drop(tss[1:])
		tss = tss[:1]
	}
	if len(metas) > 1 {
		rest := append([]fileInfo(nil), metas[1:]...)
		sort.SliceStable(rest, func(i, j int) bool { return ctypeOf(rest[i]).After(ctypeOf(rest[j])) })
		retain := 1
		if ctypeOf(rest[0]).After(ctypeOf(metas[0])) {
			if rest[0].ts.Compare(metas[0].ts) == 0 {
				metas[0], rest[0] = rest[0], metas[0]
			} else {
				retain = 2
			}
		}
		all := append([]fileInfo{metas[0]}, rest...)
		drop(all[retain:])
		metas = all[:retain]
	}
	if len(datas) > 0 {
		drop(datas[1:])
		datas = datas[:1]
		tss = split(tss, datas[0].ts, false)
		metas = split(metas, datas[0].ts, false)
		st.data = &datas[0]
		if len(metas) > 0 {
			st.meta = &metas[0]
			last := metas[len(metas)-1]
			if last.ctype != nil && last.ctype.After(st.data.ts) {
				st.ctype = &last
			}
		}
	} else if len(tss) > 0 {
		st.ts = &tss[0]
	}
	st.files += len(datas) + len(tss) + len(metas)
	return st
}

func ctypeOf(f fileInfo) Timestamp {
	if f.ctype == nil {
		return Timestamp{}
	}
	return *f.ctype
}

func listDir(dir string) ([]string, error) {
	names, err := readDirNames(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	return names, err
}

// dirBufPool holds getdents buffers (os.File's size).
var dirBufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// readDirNames lists dir as os.File.Readdirnames(-1) does (without "."
// and ".."), with open(2), getdents(2) and close(2) on a bare descriptor:
// every GET, HEAD and PUT lists a hash directory, and an os.File costs an
// fcntl(2) and three allocations besides.
func readDirNames(dir string) ([]string, error) {
	fd, err := openRaw(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }()
	return readDirFd(fd, dir)
}

// fsyncFd is fsync(2), retried on EINTR as os.File.Sync does; like the
// directory syncs of Swift's renamer, its failure is not an error.
func fsyncFd(fd int) {
	for {
		if err := unix.Fsync(fd); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// readDirFd lists the open directory fd (named dir in errors).
func readDirFd(fd int, dir string) ([]string, error) {
	bp := dirBufPool.Get().(*[]byte)
	defer dirBufPool.Put(bp)
	buf := *bp
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return names, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		for b := buf[:n]; len(b) > 0; {
			consumed, _, more := unix.ParseDirent(b, -1, names)
			names = more
			if consumed <= 0 {
				break
			}
			b = b[consumed:]
		}
	}
}

// cleanup removes obsolete files (and a reclaimable tombstone) from dir and
// returns what remains, as Swift's cleanup_ondisk_files does.
func (m *Manager) cleanup(dir string) (state, error) {
	names, err := listDir(dir)
	if err != nil {
		return state{}, err
	}
	return m.cleanupNames(dir, names)
}

// cleanupNames is cleanup with the directory already listed.
func (m *Manager) cleanupNames(dir string, names []string) (state, error) {
	st := gather(names)
	if st.ts != nil && m.ReclaimAge > 0 && time.Since(st.ts.ts.Time()) > m.ReclaimAge {
		st.obsolete = append(st.obsolete, st.ts.name)
		st.ts = nil
		st.files--
	}
	for _, n := range st.obsolete {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("diskfile: cleanup: %w", err)
		}
	}
	if st.files == 0 && len(names) > 0 {
		_ = os.Remove(dir) // fails harmlessly when something was added meanwhile
	}
	return st, nil
}

// Object is an opened object: its merged metadata and, unless it is a
// tombstone, its data file.
type Object struct {
	File *os.File
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
	if err != nil {
		return nil, fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	st := gather(names)
	if st.data == nil {
		nf := &NotFoundError{}
		if st.ts != nil {
			t := st.ts.ts
			nf.Tombstone = &t
		}
		return nil, nf
	}
	f, err := openFile(filepath.Join(dir, st.data.name), unix.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotFoundError{}
		}
		return nil, fmt.Errorf("diskfile: opening data: %w", err)
	}
	obj := &Object{File: f, DataTS: st.data.ts}
	fail := func(err error) (*Object, error) {
		f.Close()
		if errors.Is(err, errBadMetadata) {
			return nil, d.quarantine(err.Error())
		}
		return nil, err
	}
	obj.DataMetadata, err = readMetadata(f)
	if err != nil {
		return fail(err)
	}
	if obj.DataMetadata["name"] != d.Name {
		return fail(fmt.Errorf("%w: name %q does not match", errBadMetadata, obj.DataMetadata["name"]))
	}
	// fstat(2) into a Stat_t: os.File.Stat allocates a FileInfo.
	var fst unix.Stat_t
	if err := fstat(f, &fst); err != nil {
		return fail(fmt.Errorf("diskfile: stat: %w", err))
	}
	obj.Size = fst.Size
	if cl, ok := obj.DataMetadata["Content-Length"]; ok && cl != strconv.FormatInt(obj.Size, 10) {
		return fail(fmt.Errorf("%w: Content-Length %s but %d bytes on disk", errBadMetadata, cl, obj.Size))
	}
	obj.ContentTypeTS = st.data.ts
	if st.meta == nil {
		obj.Metadata = obj.DataMetadata
		return obj, nil
	}
	obj.MetaMetadata, err = d.readMetaFile(st.meta.name)
	if err != nil {
		return fail(err)
	}
	if st.ctype != nil && st.ctype.name != st.meta.name {
		cm, err := d.readMetaFile(st.ctype.name)
		if err != nil {
			return fail(err)
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
	return obj, nil
}

func (d *DiskFile) readMetaFile(name string) (map[string]string, error) {
	f, err := openFile(filepath.Join(d.Dir(), name), unix.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotFoundError{}
		}
		return nil, fmt.Errorf("diskfile: opening meta: %w", err)
	}
	defer f.Close()
	m, err := readMetadata(f)
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

// Writer writes one new file (a .data, .meta or .ts) for an object: into
// a temporary file first, then renamed into place by Commit.
type Writer struct {
	d       *DiskFile
	f       *os.File
	tmpPath string
	done    bool
}

// Create starts a new file for the object in the device's tmp directory.
func (d *DiskFile) Create() (*Writer, error) {
	tmpDir := filepath.Join(d.devPath, PolicyDir("tmp", d.policy))
	f, err := createTemp(tmpDir, "tmp")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(tmpDir, 0o750); err != nil {
			return nil, fsErr("creating tmp dir", err)
		}
		f, err = createTemp(tmpDir, "tmp")
	}
	if err != nil {
		return nil, fsErr("creating temp file", err)
	}
	return &Writer{d: d, f: f, tmpPath: f.Name()}, nil
}

func fsErr(op string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %s: %w", ErrNoSpace, op, err)
	}
	return fmt.Errorf("diskfile: %s: %w", op, err)
}

// File is the temporary file to write the body to.
func (w *Writer) File() *os.File { return w.f }

// Abort removes the temporary file; harmless after Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.tmpPath)
}

// Commit stores meta (raw header values; "name" is set here) in the file's
// xattrs, makes it durable and renames it to <dir>/<filename>, then
// cleans up files it made obsolete and invalidates the suffix hash.
func (w *Writer) Commit(ctx context.Context, filename string, meta map[string]string) error {
	if w.done {
		return errors.New("diskfile: writer already finished")
	}
	defer w.Abort()
	if err := ctx.Err(); err != nil {
		return err
	}
	stored := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		stored[toStored(k)] = toStored(v)
	}
	stored["name"] = w.d.Name
	if err := writeMetadata(w.f, stored); err != nil {
		return err
	}
	if !w.d.m.NoFsync {
		if err := w.f.Sync(); err != nil {
			return fsErr("fsync", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Rename first and create the directories only when missing (a new
	// object, or a concurrent suffix hashing removed the empty directory):
	// an existing object costs no stat.
	dir := w.d.Dir()
	target := filepath.Join(dir, filename)
	created := 0
	err := rename(w.tmpPath, target)
	for try := 0; errors.Is(err, fs.ErrNotExist) && try < 2; try++ {
		var n int
		n, err = mkdirs(dir, 0o750)
		created += n
		if err != nil {
			return fsErr("creating object dir", err)
		}
		err = rename(w.tmpPath, target)
	}
	if err != nil {
		return fsErr("renaming into place", err)
	}
	w.done = true
	w.f.Close()
	// One open of the directory serves its fsync (Swift's renamer: the
	// directory, and the parents of any it created) and the listing that
	// cleanup needs.
	// A bare descriptor, as in readDirNames: no os.File to set up.
	df, err := openRaw(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fsErr("opening object dir", err)
	}
	if !w.d.m.NoFsync {
		fsyncFd(df)
		if created > 0 {
			fsyncDirs(filepath.Dir(dir), created-1)
		}
	}
	names, err := readDirFd(df, dir)
	_ = unix.Close(df)
	if err != nil {
		return fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	if _, err := w.d.m.cleanupNames(dir, names); err != nil {
		return err
	}
	return w.d.m.invalidate(w.d.partPath(), w.d.Hash[len(w.d.Hash)-3:])
}
