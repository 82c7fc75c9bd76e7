package diskfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Writer writes one new file (a .data, .meta or .ts) for an object. As
// Swift's DiskFileWriter with use_linkat, the file is an unnamed one
// (open(2) with O_TMPFILE) in the object's own directory, linked into
// place by Commit once written, its metadata set and fsynced: no name is
// created in the device's tmp directory and renamed away, and a write
// that dies before Commit leaves nothing anyone can see (the kernel frees
// the inode). Where the file system refuses O_TMPFILE, Swift's fallback:
// a named temporary file in the device's tmp directory, renamed into
// place, which RemoveStaleTemp sweeps after a crash.
type Writer struct {
	d       *DiskFile
	f       *os.File
	tmpPath string // the named temporary file; "" for an unnamed one
	// created is how many directories Create made to hold the unnamed
	// file (Swift's dirs_created): Commit fsyncs their parents.
	created int
	done    bool
}

// Create starts a new file for the object: an unnamed file in the
// object's directory (created if missing, as Swift's makedirs_count), or
// a named one in the device's tmp directory where the file system refuses
// O_TMPFILE.
func (d *DiskFile) Create() (*Writer, error) {
	if !d.m.NamedTemp && !d.m.noTmpfile.Load() && procFdAvailable() {
		if w, refused, err := d.createUnnamed(); !refused {
			return w, err
		}
	}
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

// openTmpfile opens a new unnamed file in dir (a variable: tests make
// it refuse, as a file system without O_TMPFILE).
var openTmpfile = func(dir string) (int, error) {
	return openRaw(dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
}

// createUnnamed opens an O_TMPFILE file in the object's directory. It
// reports refused when the file system refuses O_TMPFILE (EOPNOTSUPP,
// EISDIR or EINVAL, as Swift's _get_tempfile tells them), and then the
// Manager uses named temporary files from now on, as Swift.
// The directory is made only when the open finds it missing: an object
// that exists costs no stat(2) or mkdir(2).
func (d *DiskFile) createUnnamed() (w *Writer, refused bool, err error) {
	dir := d.Dir()
	created := 0
	fd, err := openTmpfile(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if created, err = mkdirs(dir, 0o750); err != nil {
			return nil, false, fsErr("creating object dir", err)
		}
		fd, err = openTmpfile(dir)
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		d.m.noTmpfile.Store(true)
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fsErr("creating temp file", err)
	}
	return &Writer{d: d, f: os.NewFile(uintptr(fd), dir), created: created}, false, nil
}

// File is the temporary file to write the body to.
func (w *Writer) File() *os.File { return w.f }

// Abort closes the file and removes a named one (an unnamed one goes
// with its last descriptor); harmless after Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	if w.tmpPath != "" {
		os.Remove(w.tmpPath)
	}
}

// Commit stores meta (raw header values; "name" is set here) in the file's
// xattrs, makes it durable and links (or renames) it to <dir>/<filename>,
// fsyncs the directory (and the parents of any directory it made), then
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
	// Link or rename first and create the directories only when missing
	// (a new object written through a named temporary file, or a
	// concurrent suffix hashing removed the empty directory): an
	// existing object costs no stat.
	dir := w.d.Dir()
	target := filepath.Join(dir, filename)
	created := w.created
	place := w.place
	err := place(target)
	for try := 0; errors.Is(err, fs.ErrNotExist) && try < 2; try++ {
		var n int
		n, err = mkdirs(dir, 0o750)
		created += n
		if err != nil {
			return fsErr("creating object dir", err)
		}
		err = place(target)
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
	if _, err := w.d.m.cleanupNames(dir, names, w.d.policy); err != nil {
		return err
	}
	return w.d.m.invalidate(w.d.partPath(), w.d.Hash[len(w.d.Hash)-3:])
}

// place gives the written file the name target: a rename of the named
// temporary file, or a link of the unnamed one.
func (w *Writer) place(target string) error {
	if w.tmpPath != "" {
		return rename(w.tmpPath, target)
	}
	err := linkFd(int(w.f.Fd()), target)
	if errors.Is(err, fs.ErrExist) {
		// A file of the same name is there (a write of the same timestamp
		// raced this one, or replication brought it): rename(2) replaces
		// it in one step, linkat(2) cannot. Swift unlinks the target and
		// links again, which leaves a moment with neither file; a name in
		// the device's tmp directory and a rename over the target do not.
		return w.replaceWithLink(target)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(procFdPath(int(w.f.Fd()))); serr != nil {
			// not the object's directory missing but /proc: no unnamed
			// file can be linked on this system (not an ErrNotExist, so
			// that Commit does not make directories and try again)
			w.d.m.noTmpfile.Store(true)
			return fmt.Errorf("linking an O_TMPFILE file: %w: %s", errNoProcFd, serr.Error())
		}
	}
	return err
}

// procFdAvailable reports whether /proc/self/fd, through which an
// unnamed file is linked, is there (it is not in a chroot or container
// without /proc): where it is not, every write takes a named temporary
// file from the first, rather than the first failing with a 500.
var procFdAvailable = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// errNoProcFd: /proc/self/fd, through which an unnamed file is linked, is
// not there.
var errNoProcFd = errors.New("/proc/self/fd is not available")

// replaceWithLink links the unnamed file into the device's tmp directory
// under a fresh name, then renames it over target.
func (w *Writer) replaceWithLink(target string) error {
	tmpDir := filepath.Join(w.d.devPath, PolicyDir("tmp", w.d.policy))
	if err := os.MkdirAll(tmpDir, 0o750); err != nil {
		return err
	}
	for try := 0; ; try++ {
		// A name, not a secret: linkat(2) refuses an existing one.
		name := filepath.Join(tmpDir, "tmp"+strconv.FormatUint(uint64(rand.Uint32()), 10)) //nolint:gosec // see above
		err := linkFd(int(w.f.Fd()), name)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		if err != nil {
			return err
		}
		if err := rename(name, target); err != nil {
			_ = os.Remove(name)
			return err
		}
		return nil
	}
}
