package diskfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// ReadFile is a file opened to be read and closed only: an object's .data
// or .meta file. It holds the bare descriptor: os.NewFile asks the kernel
// for the descriptor's flags (fcntl(2)) on every open, about one in twelve
// of a small GET's system calls, for poller bookkeeping a regular file
// does not use.
//
// ReadAt may run on several goroutines at once (objcrypt's Reader opens
// segments in parallel). Close waits for the reads in flight and makes
// later ones fail with os.ErrClosed, so that no read ever reaches a
// descriptor number closed meanwhile and reused by another open.
type ReadFile struct {
	mu      sync.RWMutex
	fd      int // -1 once closed
	name    string
	cleanup runtime.Cleanup
}

// openReadFile opens path read-only (open(2) with O_CLOEXEC).
func openReadFile(path string) (*ReadFile, error) {
	fd, err := openRaw(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	f := &ReadFile{fd: fd, name: path}
	// As os.File's finalizer does: a file a caller failed to close is
	// closed once unreachable (Close cancels this first, so that the
	// number, reused by then, is never closed twice).
	f.cleanup = runtime.AddCleanup(f, closeFd, fd)
	return f, nil
}

// closeFd is ReadFile's cleanup.
func closeFd(fd int) { _ = unix.Close(fd) }

// Name is the path the file was opened as.
func (f *ReadFile) Name() string { return f.name }

// ReadAt is pread(2) until b is full, as os.File.ReadAt: an error whenever
// it reads fewer than len(b) bytes, io.EOF at the end of the file.
func (f *ReadFile) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.name, Err: errors.New("negative offset")}
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: os.ErrClosed}
	}
	n := 0
	for len(b) > 0 {
		m, err := unix.Pread(f.fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
		b = b[m:]
		off += int64(m)
	}
	return n, nil
}

// withFd runs fn on the descriptor while no Close can run, and fails with
// os.ErrClosed after one did.
func (f *ReadFile) withFd(op string, fn func(fd int) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.fd < 0 {
		return &fs.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	return fn(f.fd)
}

// Close closes the descriptor once reads in flight are done; a second
// Close answers os.ErrClosed, as os.File's does.
func (f *ReadFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.cleanup.Stop()
	// close(2) is not retried on EINTR: on Linux the descriptor is
	// released whatever it answers.
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}
