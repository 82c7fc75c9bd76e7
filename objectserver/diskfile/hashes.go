package diskfile

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // G501: Swift's suffix hashes are MD5 by protocol
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/pickle"
)

const (
	hashesFile      = "hashes.pkl"
	invalidsFile    = "hashes.invalid"
	partitionLock   = ".lock"
	lockWaitTimeout = 10 * time.Second
)

// partLocks serialises this process's holders of a partition lock before
// they take the flock: flock has no queue, so goroutines of one process
// contending for it would poll and sleep (a PUT of a small object spent
// milliseconds there); a mutex hands the lock over directly. The flock is
// still taken, for Swift's Python daemons.
var partLocks = struct {
	sync.Mutex
	m map[string]*partLock
}{m: map[string]*partLock{}}

type partLock struct {
	mu   sync.Mutex
	refs int
}

func lockInProcess(partPath string) func() {
	partLocks.Lock()
	l := partLocks.m[partPath]
	if l == nil {
		l = &partLock{}
		partLocks.m[partPath] = l
	}
	l.refs++
	partLocks.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		partLocks.Lock()
		if l.refs--; l.refs == 0 {
			delete(partLocks.m, partPath)
		}
		partLocks.Unlock()
	}
}

// lockPartition takes Swift's flock on <part>/.lock (lock_path), the lock
// Swift's Python daemons take around hashes.pkl and hashes.invalid.
func lockPartition(partPath string) (func(), error) {
	unlockLocal := lockInProcess(partPath)
	lockPath := filepath.Join(partPath, partitionLock)
	// A bare descriptor (openRaw): an os.File would cost an fcntl(2) for
	// nothing here, and the lock is taken on every PUT and DELETE. No
	// partition file is opened through a symbolic link (O_NOFOLLOW): one
	// planted on the disk would have the server create, append to or
	// empty a file anywhere it may write.
	fd, err := openRaw(lockPath, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(partPath, 0o750); err != nil {
			unlockLocal()
			return nil, fsErr("creating partition dir", err)
		}
		fd, err = openRaw(lockPath, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	}
	if err != nil {
		unlockLocal()
		return nil, fsErr("opening partition lock", err)
	}
	deadline := time.Now().Add(lockWaitTimeout)
	wait := time.Millisecond
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				// closing the only descriptor of the open file releases
				// its flock (no LOCK_UN needed, as Swift's lock_path)
				_ = unix.Close(fd)
				unlockLocal()
			}, nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = unix.Close(fd)
			unlockLocal()
			return nil, fmt.Errorf("diskfile: locking %s: %w", partPath, err)
		}
		// held by another process (a Python daemon): poll, as Swift's
		// lock_path does (every 10 ms)
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// invalidate appends the suffix to hashes.invalid under the partition lock
// (Swift's invalidate_hash).
func (m *Manager) invalidate(partPath, suffix string) error {
	unlock, err := lockPartition(partPath)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(partPath, invalidsFile)
	fd, err := openRaw(path, unix.O_CREAT|unix.O_WRONLY|unix.O_APPEND|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fsErr("opening hashes.invalid", err)
	}
	defer func() { _ = unix.Close(fd) }()
	if err := writeAll(fd, []byte(suffix+"\n")); err != nil {
		return fsErr("writing hashes.invalid", &fs.PathError{Op: "write", Path: path, Err: err})
	}
	return nil
}

// writeAll is write(2) of all of b on a bare descriptor, retried on EINTR
// and continued after a short write, as os.File.Write.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

func validSuffix(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// readHashes reads hashes.pkl as Swift's read_hashes does: missing or
// corrupt gives valid=false.
func readHashes(partPath string) (map[string]any, bool) {
	data, err := os.ReadFile(filepath.Join(partPath, hashesFile)) //nolint:gosec // G304: validated partition path
	if err != nil {
		return map[string]any{}, false
	}
	v, err := pickle.Decode(data)
	if err != nil {
		return map[string]any{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}, false
	}
	for k := range m {
		if !validSuffix(k) && k != "valid" && k != "updated" {
			return map[string]any{}, false
		}
	}
	for k, v := range m {
		if fh, ok := pickle.AsFragHashes(v); ok && validSuffix(k) {
			m[k] = fh // an EC suffix's hashes
		}
	}
	valid, ok := m["valid"].(bool)
	if !ok {
		valid = true
	}
	return m, valid
}

// GetHashes returns the partition's suffix hashes (md5 hex, or "" for a
// suffix whose hash could not be computed), recomputing the given suffixes,
// every suffix named in hashes.invalid, and all of them when hashes.pkl is
// missing or invalid. It writes hashes.pkl and clears hashes.invalid, so
// Swift's replicator and ours agree.
func (m *Manager) GetHashes(ctx context.Context, device, partition string, policy int, recalculate []string) (map[string]string, error) {
	hashes, err := m.SuffixHashes(ctx, device, partition, policy, recalculate)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(hashes))
	for k, v := range hashes {
		s, _ := v.(string)
		out[k] = s
	}
	return out, nil
}

// SuffixHashes is GetHashes with each suffix's value as REPLICATE pickles
// it: its md5 hex, nil when it could not be computed, or for an EC policy
// a pickle.FragHashes (one hash per fragment index and one, under None,
// for the other files), as Swift's ECDiskFileManager keeps them.
func (m *Manager) SuffixHashes(ctx context.Context, device, partition string, policy int, recalculate []string) (map[string]any, error) {
	dev, err := m.DevicePath(device)
	if err != nil {
		return nil, err
	}
	if !validName(partition) {
		return nil, fmt.Errorf("%w: bad partition", ErrDeviceUnavailable)
	}
	partPath := filepath.Join(dev, PolicyDir("objects", policy), partition)
	if _, err := os.Stat(partPath); errors.Is(err, fs.ErrNotExist) {
		return map[string]any{}, nil
	}
	unlock, err := lockPartition(partPath)
	if err != nil {
		return nil, err
	}
	defer unlock()
	hashes, err := knownHashes(partPath, recalculate)
	if err != nil {
		return nil, err
	}
	if err := m.rehash(ctx, partPath, policy, hashes); err != nil {
		return nil, err
	}
	return m.saveHashes(partPath, hashes)
}

// knownHashes is the partition's hashes.pkl (when valid) with the
// suffixes to compute again set to nil: those in hashes.invalid, those
// asked for, and every suffix directory when hashes.pkl was not valid.
func knownHashes(partPath string, recalculate []string) (map[string]any, error) {
	old, valid := readHashes(partPath)
	hashes := map[string]any{}
	if valid {
		for k, v := range old {
			if validSuffix(k) {
				hashes[k] = v
			}
		}
	}
	if inv, err := os.ReadFile(filepath.Join(partPath, invalidsFile)); err == nil { //nolint:gosec // G304: validated partition path
		sc := bufio.NewScanner(strings.NewReader(string(inv)))
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); validSuffix(s) {
				hashes[s] = nil
			}
		}
	}
	if !valid {
		names, err := listDir(partPath)
		if err != nil {
			return nil, fmt.Errorf("diskfile: listing partition: %w", err)
		}
		for _, n := range names {
			if validSuffix(n) {
				hashes[n] = nil
			}
		}
	}
	for _, s := range recalculate {
		if validSuffix(s) {
			hashes[s] = nil
		}
	}
	return hashes, nil
}

// rehash computes the suffix hashes that are missing; a suffix that is
// gone is dropped, one that cannot be hashed stays nil.
func (m *Manager) rehash(ctx context.Context, partPath string, policy int, hashes map[string]any) error {
	for suffix, h := range hashes {
		switch hv := h.(type) {
		case string:
			if hv != "" {
				continue
			}
		case pickle.FragHashes:
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var sum any
		var exists bool
		var err error
		if m.ECFragments[policy] > 0 {
			sum, exists, err = m.hashSuffixEC(filepath.Join(partPath, suffix), policy)
		} else {
			sum, exists, err = m.hashSuffix(filepath.Join(partPath, suffix), policy)
		}
		switch {
		case err != nil:
			hashes[suffix] = nil
		case !exists:
			delete(hashes, suffix)
		default:
			hashes[suffix] = sum
		}
	}
	return nil
}

// saveHashes writes hashes.pkl, empties hashes.invalid and returns the
// hashes ("" for a suffix that could not be hashed).
func (m *Manager) saveHashes(partPath string, hashes map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(hashes)+2)
	result := make(map[string]any, len(hashes))
	for k, v := range hashes {
		switch v.(type) {
		case string, pickle.FragHashes:
		default:
			v = nil
		}
		out[k], result[k] = v, v
	}
	out["valid"] = true
	out["updated"] = float64(time.Now().UnixNano()) / 1e9
	data, err := pickle.Encode(out)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(partPath, hashesFile), data, partPath, m.NoFsync); err != nil {
		return nil, err
	}
	fd, err := openRaw(filepath.Join(partPath, invalidsFile), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fsErr("clearing hashes.invalid", err)
	}
	_ = unix.Close(fd)
	return result, nil
}

// hashSuffix computes Swift's suffix hash, cleaning up each object
// directory on the way; exists is false when the suffix directory is gone
// (or was empty and has been removed).
func (m *Manager) hashSuffix(dir string, policy int) (string, bool, error) {
	names, err := readDirNames(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return "", false, nil
		}
		return "", false, err
	}
	sort.Strings(names)
	h := md5.New() //nolint:gosec // G401: Swift's suffix hash
	for _, hsh := range names {
		st, err := m.cleanupPolicy(filepath.Join(dir, hsh), policy)
		if err != nil {
			return "", false, err
		}
		if st.files == 0 {
			continue
		}
		if st.meta != nil {
			h.Write([]byte(st.meta.ts.Internal() + ".meta"))
		}
		if st.ts != nil {
			h.Write([]byte(st.ts.ts.Internal() + ".ts"))
		}
		if st.data != nil {
			h.Write([]byte(st.data.ts.Internal() + ".data"))
		}
		if st.ctype != nil {
			h.Write([]byte(st.ctype.ctype.Internal() + "_ctype"))
		}
	}
	if err := os.Remove(dir); err == nil {
		return "", false, nil
	}
	return hex.EncodeToString(h.Sum(nil)), true, nil
}

// writeFileAtomic writes via a temp file in tmpDir, fsync and rename.
func writeFileAtomic(path string, data []byte, tmpDir string, noFsync bool) error {
	f, err := createTemp(tmpDir, ".tmp")
	if err != nil {
		return fsErr("creating temp file", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fsErr("writing "+filepath.Base(path), err)
	}
	if !noFsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fsErr("fsync", err)
		}
	}
	if err := f.Close(); err != nil {
		return fsErr("closing", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fsErr("renaming "+filepath.Base(path), err)
	}
	if !noFsync {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// AsyncUpdate is a container update saved for swift-object-updater.
type AsyncUpdate struct {
	Op, Account, Container, Object string
	Headers                        map[string]string
	ContainerPath                  string // "account/container" of a shard, if any
}

// WriteAsyncPending saves a failed container update as
// <dev>/async_pending[-N]/<hash[-3:]>/<hash>-<timestamp>, a pickle Swift's
// Python updater reads (strings as Python 3 str; header values as the
// latin-1 reading of their bytes, as Swift's WSGI strings are).
func (m *Manager) WriteAsyncPending(device string, policy int, u AsyncUpdate, ts Timestamp) error {
	dev, err := m.DevicePath(device)
	if err != nil {
		return err
	}
	hash := m.Hasher.HashPath(u.Account, u.Container, u.Object)
	headers := make(map[pickle.Unicode]any, len(u.Headers))
	for k, v := range u.Headers {
		headers[pickle.Unicode(latin1(k))] = pickle.Unicode(latin1(v))
	}
	data := map[pickle.Unicode]any{
		"op":        pickle.Unicode(u.Op),
		"account":   pickle.Unicode(validUTF8(u.Account)),
		"container": pickle.Unicode(validUTF8(u.Container)),
		"obj":       pickle.Unicode(validUTF8(u.Object)),
		"headers":   headers,
	}
	if u.ContainerPath != "" {
		data["container_path"] = pickle.Unicode(validUTF8(u.ContainerPath))
	}
	out, err := pickle.Encode(data)
	if err != nil {
		return err
	}
	dir := filepath.Join(dev, PolicyDir("async_pending", policy), hash[len(hash)-3:])
	tmp := filepath.Join(dev, PolicyDir("tmp", policy))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fsErr("creating async_pending dir", err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fsErr("creating tmp dir", err)
	}
	return writeFileAtomic(filepath.Join(dir, hash+"-"+ts.Internal()), out, tmp, m.NoFsync)
}

// latin1 reads raw bytes as latin-1 text (Swift's WSGI string).
func latin1(s string) string { return toStored(s) }

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// Invalidate marks suffixes of a partition for rehashing (REPLICATE with
// suffixes, as Swift's get_hashes with skip_rehash).
func (m *Manager) Invalidate(device, partition string, policy int, suffixes []string) error {
	dev, err := m.DevicePath(device)
	if err != nil {
		return err
	}
	if !validName(partition) {
		return fmt.Errorf("%w: bad partition", ErrDeviceUnavailable)
	}
	partPath := filepath.Join(dev, PolicyDir("objects", policy), partition)
	for _, s := range suffixes {
		if validSuffix(s) {
			if err := m.invalidate(partPath, s); err != nil {
				return err
			}
		}
	}
	return nil
}
