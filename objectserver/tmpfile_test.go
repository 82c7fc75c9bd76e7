package objectserver

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/testenv"
)

// TestWritePathsLeaveSwiftsLayout: a PUT, a PUT over it and a POST leave
// the same files whether the server writes through O_TMPFILE (the
// default) or through named temp files (where the file system refuses
// O_TMPFILE): Swift's names in the object's directory, hashes.invalid and
// the partition lock, Swift's two metadata xattrs on each file, an empty
// tmp/ at most, and neither the body nor the metadata in the clear in any
// file's bytes or xattrs.
func TestWritePathsLeaveSwiftsLayout(t *testing.T) {
	const secretBody, secretMeta, secretPost = "tmpfile-secret-body ", "tmpfile-secret-meta", "tmpfile-secret-post"
	layouts := map[bool][]string{}
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "O_TMPFILE", true: "named temp file"}[named], func(t *testing.T) {
			e := newEnv(t)
			e.srv.disk.NamedTemp = named
			for i, body := range []string{strings.Repeat(secretBody, 300), strings.Repeat(secretBody, 20)} {
				if r := e.put(objPath, body, map[string]string{"X-Object-Meta-Color": secretMeta}); r.StatusCode != 201 {
					t.Fatalf("PUT %d: %d %s", i, r.StatusCode, readBody(t, r))
				} else {
					readBody(t, r)
				}
			}
			r := e.do("POST", objPath, nil, map[string]string{"X-Timestamp": e.next(), "X-Object-Meta-Posted": secretPost})
			if readBody(t, r); r.StatusCode != 202 {
				t.Fatalf("POST: %d", r.StatusCode)
			}
			e.srv.Wait()
			if r := e.do("GET", objPath, nil, nil); readBody(t, r) != strings.Repeat(secretBody, 20) || r.Header.Get("X-Object-Meta-Posted") != secretPost {
				t.Fatalf("GET: %d %v", r.StatusCode, r.Header)
			}

			var got []string
			for _, f := range e.files() {
				rel, err := filepath.Rel(e.devices, f)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(rel, "/tmp/") || strings.HasPrefix(filepath.Base(rel), "tmp") {
					t.Errorf("left in tmp: %s", rel)
				}
				if strings.HasSuffix(f, ".data") || strings.HasSuffix(f, ".meta") {
					if x := testenv.XattrNames(t, f); !reflect.DeepEqual(x, []string{"user.swift.metadata", "user.swift.metadata_checksum"}) {
						t.Errorf("%s: xattrs %v, want Swift's two", rel, x)
					}
					st, err := os.Stat(f)
					if err != nil || st.Mode() != 0o600 {
						t.Errorf("%s: mode %v, %v", rel, st.Mode(), err)
					}
					rel = filepath.Join(filepath.Dir(rel), "<ts>"+filepath.Ext(rel))
				}
				got = append(got, rel)
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range []string{secretBody, secretMeta, secretPost} {
					if bytes.Contains(b, []byte(s)) || bytes.Contains(xattrBytes(t, f), []byte(s)) {
						t.Errorf("%q in the clear in %s", s, rel)
					}
				}
			}
			sort.Strings(got)
			df, err := e.srv.disk.Object("sda", "1", 0, "AUTH_p1", "c", "o/bj")
			if err != nil {
				t.Fatal(err)
			}
			obj := "sda/objects/1/" + df.Hash[len(df.Hash)-3:] + "/" + df.Hash + "/"
			if want := []string{"sda/objects/1/.lock", obj + "<ts>.data", obj + "<ts>.meta", "sda/objects/1/hashes.invalid"}; !reflect.DeepEqual(got, want) {
				t.Errorf("files %v, want %v", got, want)
			}
			if tmp, err := os.ReadDir(filepath.Join(e.devices, "sda", "tmp")); err == nil && len(tmp) != 0 {
				t.Errorf("tmp holds %d entries", len(tmp))
			}
			layouts[named] = got
		})
	}
	if !reflect.DeepEqual(layouts[false], layouts[true]) {
		t.Errorf("O_TMPFILE left %v, named temp files %v", layouts[false], layouts[true])
	}
}

// xattrBytes is every xattr value of path, concatenated.
func xattrBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, k := range testenv.XattrNames(t, path) {
		buf := make([]byte, 65536)
		n, err := unix.Getxattr(path, k, buf)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, buf[:n]...)
	}
	return all
}
