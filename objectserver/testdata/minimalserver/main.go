// Command minimalserver is the baseline beside the object server
// benchmark (issue 21.2), as goproxy is the filter's: the least a
// straightforward Go process that stores objects as Swift does is. It is
// net/http's server and, per request, only the system calls and hashing
// that Swift's protocol and on-disk layout ask of any object server:
//
//   - PUT: an unnamed file (O_TMPFILE) in the object's directory (made
//     when missing), the body written through an MD5 (the ETag), the
//     metadata in the user.swift.metadata xattr, fsync, the file linked
//     into place as <timestamp>.data, the directory opened, fsynced and
//     listed, older .data files unlinked, and the suffix appended to the
//     partition's hashes.invalid under its flock;
//   - GET: the directory listed, the newest .data opened, its xattr read,
//     fstat, the bytes sent, the file closed.
//
// No ring, no pickle, no policy, no keys, no logs, no metrics, no checks
// beyond what it needs to answer. Its PUT is what this machine charges for
// a durable Swift write with net/http in front; it is not a strict floor
// (arca-object-server's lean answers can read for less). tools/bench-
// objectserver.sh builds it and measures it beside arca-object-server and
// Debian's Python object server, in the same run, its CPU read from its
// process group as theirs is. Not for use beyond that.
//
// Usage: minimalserver DEVICES HOST:PORT. Objects are at
// /<device>/<partition>/<account>/<container>/<object>; GET /healthcheck
// answers OK.
package main

import (
	"crypto/md5" //nolint:gosec // Swift's ETag, not a security function
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const metadataXattr = "user.swift.metadata"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: minimalserver DEVICES HOST:PORT")
		os.Exit(2)
	}
	s := &server{devices: os.Args[1]}
	if err := http.ListenAndServe(os.Args[2], s); err != nil { //nolint:gosec // a benchmark baseline on loopback
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type server struct{ devices string }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthcheck" {
		_, _ = io.WriteString(w, "OK")
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) != 5 || slices.Contains(parts[:2], "..") || slices.Contains(parts[:2], ".") {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	sum := md5.Sum([]byte(r.URL.Path)) //nolint:gosec // a directory name, as Swift's hash_path
	hash := hex.EncodeToString(sum[:])
	part := filepath.Join(s.devices, parts[0], "objects", parts[1])
	suffix := hash[len(hash)-3:]
	dir := filepath.Join(part, suffix, hash)
	var err error
	switch r.Method {
	case http.MethodPut:
		err = put(w, r, part, suffix, dir)
	case http.MethodGet:
		err = get(w, dir)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "not found", http.StatusNotFound)
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func put(w http.ResponseWriter, r *http.Request, part, suffix, dir string) error {
	ts := r.Header.Get("X-Timestamp")
	if _, err := strconv.ParseFloat(ts, 64); err != nil {
		http.Error(w, "bad X-Timestamp", http.StatusBadRequest)
		return nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ENOENT) {
		if err = os.MkdirAll(dir, 0o750); err == nil {
			fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	h := md5.New() //nolint:gosec // Swift's ETag
	n, err := io.Copy(io.MultiWriter(f, h), r.Body)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	etag := hex.EncodeToString(h.Sum(nil))
	// about the size of Swift's pickled metadata for such an object
	meta := fmt.Sprintf("name=%s;X-Timestamp=%s;Content-Type=%s;Content-Length=%d;ETag=%s",
		r.URL.Path, ts, r.Header.Get("Content-Type"), n, etag)
	if err := unix.Fsetxattr(fd, metadataXattr, []byte(meta), 0); err != nil {
		return fmt.Errorf("fsetxattr: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	name := ts + ".data"
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, filepath.Join(dir, name), unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("linkat: %w", err)
	}
	if err := syncAndClean(dir, name); err != nil {
		return err
	}
	if err := invalidate(part, suffix); err != nil {
		return err
	}
	w.Header().Set("Etag", etag)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// syncAndClean fsyncs the object's directory and unlinks the .data files
// older than keep.
func syncAndClean(dir, keep string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n < keep && strings.HasSuffix(n, ".data") {
			_ = unix.Unlinkat(int(d.Fd()), n, 0)
		}
	}
	return nil
}

// invalidate appends suffix to the partition's hashes.invalid under its
// flock, as Swift's invalidate_hash.
func invalidate(part, suffix string) error {
	lock, err := unix.Open(filepath.Join(part, ".lock"), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("flock: %w", err)
	}
	inv, err := unix.Open(filepath.Join(part, "hashes.invalid"), unix.O_CREAT|unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("hashes.invalid: %w", err)
	}
	defer unix.Close(inv)
	_, err = unix.Write(inv, []byte(suffix+"\n"))
	return err
}

func get(w http.ResponseWriter, dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	newest := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".data") && n > newest {
			newest = n
		}
	}
	if newest == "" {
		return fs.ErrNotExist
	}
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		return err
	}
	defer f.Close()
	// room for the longest metadata a PUT writes (a 1,024-byte object name
	// and its path), and no more than one file system block
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(int(f.Fd()), metadataXattr, buf)
	if err != nil {
		return fmt.Errorf("fgetxattr: %w", err)
	}
	etag := ""
	for _, kv := range strings.Split(string(buf[:n]), ";") {
		if v, ok := strings.CutPrefix(kv, "ETag="); ok {
			etag = v
		}
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.Header().Set("Etag", etag)
	w.Header().Set("X-Timestamp", strings.TrimSuffix(newest, ".data"))
	_, _ = io.Copy(w, f)
	return nil
}
