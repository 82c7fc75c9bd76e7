package diskfile

import (
	"bytes"
	"crypto/md5" //nolint:gosec // G501: Swift's metadata checksum is MD5 by protocol
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/pickle"
)

// This file holds what the object-key rewrap job (objectserver/rewrap)
// needs from the on-disk layout: finding an object's current .data file,
// reading its metadata exactly as stored, and replacing that metadata in
// place in steps each of which leaves a readable file. The reasoning is in
// objectserver/rewrap's package documentation.

// ErrNotAtomic: the metadata change would touch more than one xattr chunk,
// so it cannot be made with a single setxattr.
var ErrNotAtomic = errors.New("diskfile: metadata change spans more than one xattr")

// ErrMetadataChanged: the file's metadata is no longer what the caller read.
var ErrMetadataChanged = errors.New("diskfile: metadata changed meanwhile")

// ErrBadMetadata is the exported name of the error for unreadable metadata
// or a checksum mismatch (the object server quarantines such files).
var ErrBadMetadata = errBadMetadata

// CurrentData returns the name of the .data file that is the object's
// current version in the hash directory dir, as Swift decides it (the
// newest .data not older than the newest tombstone), or "" when the object
// is deleted or absent. It removes nothing.
func CurrentData(dir string) (string, error) {
	names, err := listDir(dir)
	if err != nil {
		return "", fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	st := gather(names)
	if isECDir(names) {
		// an erasure-coded policy's: its durable fragment archive, as an
		// open without preferences chooses it (the walk knows no policy)
		st = gatherEC(names, ecQuery{})
	}
	if st.data == nil {
		return "", nil
	}
	return st.data.name, nil
}

// LiveData returns the names of the .data files of the hash directory dir
// that hold a live version of the object, newest first. In a replicated
// policy's directory that is the current .data alone (CurrentData). In an
// erasure-coded policy's (<ts>#<idx>[#d].data) it is every fragment
// archive newer than the newest tombstone: a handoff may hold several
// fragment indexes of one timestamp, and a newer non-durable archive may
// sit beside the durable one; each is its own archive, each must stay
// readable. None when the object is deleted or absent. It removes
// nothing.
func LiveData(dir string) ([]string, error) {
	names, err := listDir(dir)
	if err != nil {
		return nil, fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	if !isECDir(names) {
		st := gather(names)
		if st.data == nil {
			return nil, nil
		}
		return []string{st.data.name}, nil
	}
	var datas []fileInfo
	var newestTS *Timestamp
	for _, n := range names {
		fi, ok := parseECFile(n, 0)
		if !ok {
			continue
		}
		switch fi.ext {
		case ".data":
			datas = append(datas, fi)
		case ".ts":
			if newestTS == nil || fi.ts.After(*newestTS) {
				t := fi.ts
				newestTS = &t
			}
		}
	}
	sort.Slice(datas, func(i, j int) bool {
		if c := datas[i].ts.Compare(datas[j].ts); c != 0 {
			return c > 0
		}
		return datas[i].name < datas[j].name
	})
	var out []string
	for _, fi := range datas {
		if newestTS == nil || fi.ts.After(*newestTS) {
			out = append(out, fi.name)
		}
	}
	return out, nil
}

// LockPartition takes Swift's partition lock (<partition>/.lock), the one
// held around hashes.pkl and hashes.invalid; the caller calls the returned
// function to release it.
func LockPartition(partPath string) (func(), error) {
	return lockPartition(partPath)
}

// RawMetadata is a file's pickled metadata exactly as stored: the xattr
// chunks, the checksum xattr (nil when absent) and the decoded values
// (Swift's stored form: Python 3 Swift's UTF-8-of-latin-1 for non-ASCII).
type RawMetadata struct {
	Chunks   [][]byte
	Checksum []byte
	Values   map[string]string
}

// Pickle is the whole pickle (the chunks joined).
func (r *RawMetadata) Pickle() []byte {
	return bytes.Join(r.Chunks, nil)
}

// ReadRawMetadata reads f's metadata xattrs without converting anything.
// A checksum that is present must match (ErrBadMetadata otherwise); an
// absent one is accepted, as Swift accepts it.
func ReadRawMetadata(f *os.File) (*RawMetadata, error) {
	fd := int(f.Fd())
	r := &RawMetadata{}
	for i := 0; ; i++ {
		if i >= maxMetadataChunks {
			return nil, fmt.Errorf("%w: too many metadata chunks", errBadMetadata)
		}
		chunk, err := getxattr(fd, chunkKey(i), nil)
		if errors.Is(err, unix.ENODATA) {
			if i == 0 {
				return nil, fmt.Errorf("%w: no metadata", errBadMetadata)
			}
			break
		}
		if err != nil {
			return nil, xattrErr("reading metadata", err)
		}
		r.Chunks = append(r.Chunks, chunk)
	}
	sum, err := getxattr(fd, metadataChecksumKey, nil)
	switch {
	case err == nil:
		r.Checksum = sum
	case !errors.Is(err, unix.ENODATA):
		return nil, xattrErr("reading metadata checksum", err)
	}
	data := r.Pickle()
	if r.Checksum != nil && string(r.Checksum) != checksum(data) {
		return nil, fmt.Errorf("%w: metadata checksum mismatch", errBadMetadata)
	}
	if r.Values, err = pickle.StringMap(data); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadMetadata, err)
	}
	return r, nil
}

func checksum(data []byte) string {
	sum := md5.Sum(data) //nolint:gosec // G401: Swift's metadata checksum
	return hex.EncodeToString(sum[:])
}

// changedChunk returns the one chunk index where newPickle differs from
// the stored chunks, or ErrNotAtomic when the change is not confined to
// one chunk (or needs a chunk to appear or disappear).
func changedChunk(old [][]byte, newPickle []byte) (int, error) {
	if len(old) == 1 {
		if len(newPickle) > xattrChunk {
			return 0, fmt.Errorf("%w: new metadata is %d bytes", ErrNotAtomic, len(newPickle))
		}
		return 0, nil
	}
	total := 0
	for _, c := range old {
		total += len(c)
	}
	if total != len(newPickle) {
		return 0, fmt.Errorf("%w: %d chunks and the length changes", ErrNotAtomic, len(old))
	}
	changed, off := -1, 0
	for i, c := range old {
		if !bytes.Equal(c, newPickle[off:off+len(c)]) {
			if changed >= 0 {
				return 0, fmt.Errorf("%w: chunks %d and %d change", ErrNotAtomic, changed, i)
			}
			changed = i
		}
		off += len(c)
	}
	if changed < 0 {
		changed = 0
	}
	return changed, nil
}

// ReplacePickle replaces f's metadata, read as old, by newPickle in two
// steps that each leave a readable file: it removes the checksum xattr
// (the old pickle stays, unchecked), then replaces the one chunk that
// differs with a single setxattr (the new pickle, unchecked). The caller
// restores the checksum later with SetChecksum. It returns the number of
// xattr calls made.
func ReplacePickle(f *os.File, old *RawMetadata, newPickle []byte) (int, error) {
	i, err := changedChunk(old.Chunks, newPickle)
	if err != nil {
		return 0, err
	}
	off := 0
	for _, c := range old.Chunks[:i] {
		off += len(c)
	}
	end := len(newPickle)
	if i < len(old.Chunks)-1 {
		end = off + len(old.Chunks[i])
	}
	fd := int(f.Fd())
	calls := 1
	if err := unix.Fremovexattr(fd, metadataChecksumKey); err != nil && !errors.Is(err, unix.ENODATA) {
		return calls, xattrErr("removing metadata checksum", err)
	}
	calls++
	if err := unix.Fsetxattr(fd, chunkKey(i), newPickle[off:end], unix.XATTR_REPLACE); err != nil {
		return calls, xattrErr("replacing metadata", err)
	}
	return calls, nil
}

// SetChecksum writes the checksum xattr for f's current pickle when that
// pickle is want; ErrMetadataChanged when it is not. A present, matching
// checksum is left alone. It returns the xattr reads and writes it made.
func SetChecksum(f *os.File, want []byte) (reads, writes int, err error) {
	r, err := ReadRawMetadata(f)
	if r == nil {
		return 1, 0, err
	}
	reads = len(r.Chunks) + 2
	if !bytes.Equal(r.Pickle(), want) {
		return reads, 0, ErrMetadataChanged
	}
	if r.Checksum != nil {
		return reads, 0, nil
	}
	if err := unix.Fsetxattr(int(f.Fd()), metadataChecksumKey, []byte(checksum(want)), 0); err != nil {
		return reads, 1, xattrErr("writing metadata checksum", err)
	}
	return reads, 1, nil
}

// isECDir reports whether a hash directory holds fragment archives
// (<ts>#<index>[#d].data), which only erasure-coded policies write.
func isECDir(names []string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, ".data") && strings.Contains(n, "#") {
			return true
		}
	}
	return false
}

// ReplaceData replaces the .data file at path, open as old, by tmp, a new
// file in the device's tmp directory whose bytes the caller wrote, with
// pickle as its metadata, as Swift writes any file: the metadata and its
// checksum on the new file, its mode, owner and times copied from the old
// one, fsync, an atomic rename over path, fsync of the directory. The
// rename exchanges the two files (renameat2 RENAME_EXCHANGE, where the
// file system has it), so a path that a newer PUT's or a DELETE's cleanup
// removed meanwhile is never created again, and a path that no longer
// names old is put back: ErrMetadataChanged, nothing replaced. The old
// file is unlinked; tmp is closed (and removed on failure).
func ReplaceData(tmp, old *os.File, path string, pickle []byte, noFsync bool) error {
	tmpPath := tmp.Name()
	defer func() {
		tmp.Close()
		os.Remove(tmpPath)
	}()
	var ost unix.Stat_t
	if err := fstat(old, &ost); err != nil {
		return fsErr("stat of the old file", err)
	}
	if err := writePickle(tmp, pickle); err != nil {
		return err
	}
	fd := int(tmp.Fd())
	if err := unix.Fchmod(fd, ost.Mode&0o7777); err != nil {
		return fsErr("chmod", err)
	}
	if err := unix.Fchown(fd, int(ost.Uid), int(ost.Gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return fsErr("chown", err)
	}
	times := []unix.Timespec{ost.Atim, ost.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmpPath, times, 0); err != nil {
		return fsErr("setting times", err)
	}
	if !noFsync {
		if err := tmp.Sync(); err != nil {
			return fsErr("fsync", err)
		}
	}
	same := func(p string) bool {
		var st unix.Stat_t
		return stat(p, &st) == nil && st.Dev == ost.Dev && st.Ino == ost.Ino
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmpPath, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %s is gone", ErrMetadataChanged, path)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP):
		// no exchange on this file system: check, then rename over
		if !same(path) {
			return fmt.Errorf("%w: %s is not the file read", ErrMetadataChanged, path)
		}
		if err := rename(tmpPath, path); err != nil {
			return fsErr("renaming into place", err)
		}
	case err != nil:
		return fsErr("renaming into place", err)
	default:
		// tmpPath now names what path named: it must be the file read
		if !same(tmpPath) {
			if err := unix.Renameat2(unix.AT_FDCWD, tmpPath, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
				return fsErr("putting back a file replaced meanwhile", err)
			}
			return fmt.Errorf("%w: %s is not the file read", ErrMetadataChanged, path)
		}
		if err := os.Remove(tmpPath); err != nil {
			return fsErr("removing the old file", err)
		}
	}
	if !noFsync {
		syncDir(filepath.Dir(path))
	}
	return nil
}
