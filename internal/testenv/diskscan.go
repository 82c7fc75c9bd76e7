// A disk scan looks for secrets at rest (plaintext MD5s, user metadata
// values) everywhere a Swift node keeps something: file contents (.data,
// .meta, .ts, container and account databases and their journals, async
// pendings), every extended attribute (Swift's pickled metadata), the
// base64 entries of a database's .pending file, and each database's rows
// as sqlite reads them. It is one helper for every test that asserts what
// is not on the disks, so that a place added here is scanned by all.

package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Secret is a value that must not be found at rest, with a name for the
// report.
type Secret struct{ Name, Value string }

// MD5Secrets are the forms an MD5 (hex) could take at rest: hex in either
// case, base64 (the 22 characters before any padding, so padded and
// unpadded alike) and the 16 raw bytes.
func MD5Secrets(name, hexSum string) []Secret {
	raw, err := hex.DecodeString(hexSum)
	if err != nil || len(raw) != 16 {
		return []Secret{{name, hexSum}}
	}
	return []Secret{
		{name + " (hex)", strings.ToLower(hexSum)},
		{name + " (HEX)", strings.ToUpper(hexSum)},
		{name + " (base64)", base64.StdEncoding.EncodeToString(raw)[:22]},
		{name + " (base64url)", base64.URLEncoding.EncodeToString(raw)[:22]},
		{name + " (raw)", string(raw)},
	}
}

// Finding is one secret found: in which file and where in it.
type Finding struct{ Path, Where, Secret string }

func (f Finding) String() string { return fmt.Sprintf("%s: %s in %s", f.Path, f.Secret, f.Where) }

// ScanResult is what a scan read: its findings and how much it looked at,
// so that a test can check the scan saw the places it means to clear.
type ScanResult struct {
	Found []Finding
	// Files, Xattrs, Databases, Pendings and AsyncPendings count what was
	// read.
	Files, Xattrs, Databases, Pendings, AsyncPendings int
}

// ScanAtRest walks roots (devices folders) and returns every place one of
// secrets is found.
func ScanAtRest(t testing.TB, roots []string, secrets []Secret) *ScanResult {
	t.Helper()
	r := &ScanResult{}
	var dbs []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed meanwhile (a replicator, a cleanup)
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			r.scanFile(t, p, secrets)
			if strings.HasSuffix(p, ".db") {
				dbs = append(dbs, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scanning %s: %v", root, err)
		}
	}
	r.scanDatabases(t, dbs, secrets)
	return r
}

func (r *ScanResult) match(path, where string, data []byte, secrets []Secret) {
	for _, s := range secrets {
		if s.Value != "" && bytes.Contains(data, []byte(s.Value)) {
			r.Found = append(r.Found, Finding{Path: path, Where: where, Secret: s.Name})
		}
	}
}

func (r *ScanResult) scanFile(t testing.TB, p string, secrets []Secret) {
	t.Helper()
	data, err := os.ReadFile(p) //nolint:gosec // G304: a file of the devices scanned
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Errorf("scan: %v", err)
		return
	}
	r.Files++
	r.match(p, "content", data, secrets)
	if strings.Contains(p, "/async_pending") {
		r.AsyncPendings++
	}
	if strings.HasSuffix(p, ".pending") {
		// a database's queued updates: ':'-separated base64 pickles
		r.Pendings++
		for i, e := range bytes.Split(data, []byte(":")) {
			if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(e))); err == nil {
				r.match(p, "pending entry "+strconv.Itoa(i), dec, secrets)
			}
		}
	}
	for _, name := range listXattrs(p) {
		buf := make([]byte, 1<<16)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			continue
		}
		r.Xattrs++
		r.match(p, "xattr "+name, buf[:n], secrets)
	}
}

func listXattrs(p string) []string {
	names, _ := xattrNames(p)
	return names
}

// XattrNames is the sorted names of path's extended attributes (not
// following a symlink): what a test compares with the xattrs Swift's
// layout gives a file.
func XattrNames(t testing.TB, path string) []string {
	t.Helper()
	names, err := xattrNames(path)
	if err != nil {
		t.Fatalf("listing the xattrs of %s: %v", path, err)
	}
	sort.Strings(names)
	return names
}

func xattrNames(p string) ([]string, error) {
	buf := make([]byte, 1<<14)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range bytes.Split(buf[:n], []byte{0}) {
		if len(b) > 0 {
			out = append(out, string(b))
		}
	}
	return out, nil
}

// dumpDatabases prints each database's rows as sqlite reads them (read
// only, so a live server's database is not disturbed), each after a line
// "\x00<path>".
const dumpDatabases = `
import sqlite3, sys
for p in sys.argv[1:]:
    sys.stdout.write('\x00' + p + '\n')
    try:
        c = sqlite3.connect('file:' + p + '?mode=ro', uri=True, timeout=10)
        for line in c.iterdump():
            sys.stdout.write(line + '\n')
        c.close()
    except sqlite3.Error as e:
        sys.stdout.write('\x01' + str(e) + '\n')
`

func (r *ScanResult) scanDatabases(t testing.TB, dbs []string, secrets []Secret) {
	t.Helper()
	if len(dbs) == 0 {
		return
	}
	RequireTools(t, python)
	out, err := exec.Command(python, append([]string{"-c", dumpDatabases}, dbs...)...).Output()
	if err != nil {
		t.Fatalf("dumping %d databases: %v", len(dbs), err)
	}
	for _, part := range bytes.Split(out, []byte{0})[1:] {
		path, dump, _ := bytes.Cut(part, []byte("\n"))
		if bytes.HasPrefix(dump, []byte{1}) {
			continue // removed or replaced meanwhile: its file was scanned
		}
		r.Databases++
		r.match(string(path), "rows", dump, secrets)
	}
}

// SwiftMetadataPickle is the pickle of a Swift file's metadata as stored
// in its extended attributes (user.swift.metadata, then metadata1, 2 ...
// when it is longer than one holds), to decode with objectserver/pickle.
func SwiftMetadataPickle(t testing.TB, path string) []byte {
	t.Helper()
	var all []byte
	for i := 0; ; i++ {
		name := "user.swift.metadata"
		if i > 0 {
			name += strconv.Itoa(i)
		}
		buf := make([]byte, 1<<16)
		n, err := unix.Getxattr(path, name, buf)
		if err != nil {
			break
		}
		all = append(all, buf[:n]...)
	}
	if len(all) == 0 {
		t.Fatalf("%s: no Swift metadata", path)
	}
	return all
}

// StackSwiftDevices is the devices folder of the stack's own Swift servers
// (its account and container databases among them).
func StackSwiftDevices(t testing.TB) string {
	t.Helper()
	d := os.Getenv("ARCA_TEST_SWIFT_DEVICES")
	if d == "" {
		StackMissing(t, "ARCA_TEST_SWIFT_DEVICES is not set")
	}
	return d
}
