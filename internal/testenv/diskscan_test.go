package testenv

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestScanAtRestFindsPlantedSecrets plants a secret in each place a scan
// must look and checks it is found there, and nowhere in a clean tree: a
// scan that misses a place would let the disk-scan tests pass on disks
// that hold the secret.
func TestScanAtRestFindsPlantedSecrets(t *testing.T) {
	const md5 = "0123456789abcdef0123456789abcdef"
	const meta = "planted-user-metadata-value"
	secrets := append(MD5Secrets("md5", md5), Secret{"meta", meta})
	b64 := MD5Secrets("md5", md5)[2].Value
	cases := []struct {
		name, where string
		plant       func(t *testing.T, dir string) string
	}{
		{"xattr of a .data", "xattr user.swift.metadata", func(t *testing.T, dir string) string {
			return withXattr(t, filepath.Join(dir, "1.data"), "user.swift.metadata", "\x80\x02}q\x00X\x04\x00\x00\x00ETagX "+md5)
		}},
		{"second xattr chunk of a .meta", "xattr user.swift.metadata1", func(t *testing.T, dir string) string {
			p := withXattr(t, filepath.Join(dir, "1.meta"), "user.swift.metadata", "\x80\x02}q\x00")
			return withXattr(t, p, "user.swift.metadata1", "X-Object-Meta-A "+meta)
		}},
		{"uppercase MD5 in a .ts", "content", func(t *testing.T, dir string) string {
			return write(t, filepath.Join(dir, "1.ts"), strings.ToUpper(md5))
		}},
		{"database row", "rows", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c.db")
			RequireTools(t, python)
			py := "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table object (name text, etag text)'); " +
				"c.execute('insert into object values (?, ?)', ('o', sys.argv[2])); c.commit()"
			if out, err := exec.Command(python, "-c", py, p, b64).CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			return p
		}},
		{"container .pending entry", "pending entry 1", func(t *testing.T, dir string) string {
			entry := base64.StdEncoding.EncodeToString([]byte("(X\x01\x00\x00\x00oX\x20\x00\x00\x00" + meta + "tq\x00."))
			return write(t, filepath.Join(dir, "c.db.pending"), ":"+entry)
		}},
		{"async pending", "content", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "async_pending", "abc", "0123-1.0")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			return write(t, p, "\x80\x02}q\x00(X\x06\x00\x00\x00X-Etagq\x01X\x20\x00\x00\x00"+md5)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "clean.data"), "ciphertext only")
			path := c.plant(t, dir)
			r := ScanAtRest(t, []string{dir}, secrets)
			hit := false
			for _, f := range r.Found {
				if f.Path == path && strings.HasPrefix(f.Where, strings.SplitN(c.where, " ", 2)[0]) {
					hit = true
				}
				if strings.HasSuffix(f.Path, "clean.data") {
					t.Errorf("found in the clean file: %v", f)
				}
			}
			if !hit {
				t.Fatalf("planted in %s (%s), found %v", path, c.where, r.Found)
			}
		})
	}
	clean := t.TempDir()
	withXattr(t, write(t, filepath.Join(clean, "2.data"), "x"), "user.swift.metadata", "sealed")
	if r := ScanAtRest(t, []string{clean}, secrets); len(r.Found) != 0 || r.Files != 1 || r.Xattrs != 1 {
		t.Fatalf("clean tree: %+v", r)
	}
}

func write(t *testing.T, p, s string) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func withXattr(t *testing.T, p, name, value string) string {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		write(t, p, "body")
	}
	if err := unix.Setxattr(p, name, []byte(value), 0); err != nil {
		StackMissing(t, "extended attributes in "+p+": "+err.Error())
	}
	return p
}
