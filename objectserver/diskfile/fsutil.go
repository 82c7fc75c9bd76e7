package diskfile

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// openFile opens path with open(2) and wraps the descriptor without the
// runtime poller. os.OpenFile offers every descriptor to epoll, which
// regular files and directories refuse: four wasted system calls per open
// (fcntl, fcntl, epoll_ctl, fcntl, fcntl), and an object PUT opens about
// seven files. The file is blocking, like one from os.OpenFile.
func openFile(path string, flags int, perm uint32) (*os.File, error) {
	fd, err := openRaw(path, flags, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openRaw is open(2) with O_CLOEXEC, retried on EINTR, its error an
// *fs.PathError as os.OpenFile's.
func openRaw(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// fstat is fstat(2) on f, retried on EINTR as os.File.Stat does.
func fstat(f *os.File, st *unix.Stat_t) error {
	return fstatFd(int(f.Fd()), f.Name(), st)
}

// fstatFd is fstat(2) on the file fd (named name in errors), retried on
// EINTR.
func fstatFd(fd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "stat", Path: name, Err: err}
		}
		return nil
	}
}

// stat is stat(2), retried on EINTR as os.Stat does.
func stat(path string, st *unix.Stat_t) error {
	for {
		err := unix.Stat(path, st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "stat", Path: path, Err: err}
		}
		return nil
	}
}

// rename is rename(2): os.Rename first lstats the target to refuse
// renaming over a directory, which the object layout never has (and
// rename(2) refuses a file over a directory itself).
func rename(from, to string) error {
	for {
		err := unix.Rename(from, to)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
		return nil
	}
}

// linkFd gives the open file fd the name target with linkat(2) through
// /proc/self/fd/<fd>, as Swift's link_fd_to_path: linkat with
// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH. Its error is an
// *os.LinkError, as rename's.
func linkFd(fd int, target string) error {
	from := procFdPath(fd)
	for {
		err := unix.Linkat(unix.AT_FDCWD, from, unix.AT_FDCWD, target, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "link", Old: from, New: target, Err: err}
		}
		return nil
	}
}

// procFdPath is the /proc path of this process's descriptor fd.
func procFdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openDir opens a directory for listing and fsync.
func openDir(dir string) (*os.File, error) {
	return openFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
}

// createTemp creates a new file in dir named prefix followed by random
// digits, as os.CreateTemp names them (tmpclean recognises the names).
func createTemp(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		// A name, not a secret: O_EXCL below settles any collision.
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)) //nolint:gosec // see above
		f, err := openFile(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// mkdirs creates dir and any missing parents, returning how many it
// created (Swift's makedirs_count), so the caller can fsync the parents of
// every directory it made, as Swift's renamer does.
func mkdirs(dir string, perm os.FileMode) (int, error) {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return 0, &fs.PathError{Op: "mkdir", Path: dir, Err: unix.ENOTDIR}
		}
		return 0, nil
	}
	count := 0
	if parent := filepath.Dir(dir); parent != dir {
		n, err := mkdirs(parent, perm)
		if err != nil {
			return n, err
		}
		count += n
	}
	err = os.Mkdir(dir, perm)
	switch {
	case err == nil:
		count++
	case errors.Is(err, fs.ErrExist):
		// made by someone else meanwhile
	default:
		return count, err
	}
	return count, nil
}

// fsyncDirs fsyncs dir and then the parents of the count directories that
// were created to hold it (Swift's renamer with fsync=True).
func fsyncDirs(dir string, count int) {
	for i := 0; i <= count; i++ {
		syncDir(dir)
		dir = filepath.Dir(dir)
	}
}

func syncDir(dir string) {
	if f, err := openDir(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
