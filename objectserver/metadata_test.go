package objectserver_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/diskfile"
)

// These tests hold that what describes an encrypted object is encrypted
// at rest (objcrypt/SPEC.md, "Metadata"), on the real binary: no
// plaintext MD5 or user metadata value in any xattr of any file under the
// devices; the ETag and metadata answered are the plaintext; a sealed
// value moved to another object or altered is refused (404, quarantined),
// never shown; objects of the old format (plaintext ETag and metadata)
// are still served beside new ones.

// send does one request with a body and headers (X-Timestamp now).
func (n *objNode) send(t *testing.T, method, name, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, n.objURL(name), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Timestamp", diskfile.FromTime(time.Now()).Internal())
	if method == http.MethodPut {
		req.Header.Set("Content-Type", "text/plain")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// scanXattrs fails when any of secrets appears in any extended attribute,
// or the contents, of a file under root other than a .data file's
// contents (which are objcrypt's ciphertext, checked by objcrypt).
func scanXattrs(t *testing.T, root string, secrets []string) (files int) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		var hay [][]byte
		if !strings.HasSuffix(path, ".data") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			hay = append(hay, b)
		}
		buf := make([]byte, 1<<16)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			return err
		}
		for name := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			if name == "" {
				continue
			}
			v := make([]byte, 1<<16)
			m, err := unix.Lgetxattr(path, name, v)
			if err != nil {
				return err
			}
			hay = append(hay, v[:m])
		}
		for _, h := range hay {
			for _, s := range secrets {
				if bytes.Contains(h, []byte(s)) || bytes.Contains(bytes.ToLower(h), []byte(strings.ToLower(s))) {
					t.Errorf("%s holds %q", path, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestMetadataAtRest(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	body := "4242" // short enough to brute-force from its MD5: the attack the sealing stops
	putMeta := map[string]string{"X-Object-Meta-Color": "ultramarine-put-secret", "X-Object-Meta-Empty-Ish": "x"}
	if r := n.send(t, http.MethodPut, "o", body, putMeta); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	if r := n.send(t, http.MethodPut, "p", "other body", map[string]string{"X-Object-Meta-Color": "vermilion-other-secret"}); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT p: %d", r.StatusCode)
	}
	head := n.send(t, http.MethodHead, "o", "", nil)
	if head.StatusCode != http.StatusOK || head.Header.Get("Etag") != `"`+md5Hex(body)+`"` ||
		head.Header.Get("X-Object-Meta-Color") != "ultramarine-put-secret" {
		t.Fatalf("HEAD after PUT: %d %v", head.StatusCode, head.Header)
	}
	for k := range head.Header {
		if strings.Contains(strings.ToLower(k), "arca") {
			t.Errorf("HEAD shows %s", k)
		}
	}
	// Conditionals decided by the ETag MAC answer as Swift does.
	for _, c := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"If-Match": `"` + md5Hex(body) + `"`}, 200},
		{map[string]string{"If-Match": md5Hex(body)}, 200},
		{map[string]string{"If-Match": strings.ToUpper(md5Hex(body))}, 412},
		{map[string]string{"If-Match": `"nope", *`}, 200},
		{map[string]string{"If-Match": `"nope"`}, 412},
		{map[string]string{"If-None-Match": `"` + md5Hex(body) + `"`}, 304},
		{map[string]string{"If-None-Match": `W/"` + md5Hex(body) + `"`}, 200},
		{map[string]string{"If-None-Match": `"nope"`}, 200},
	} {
		if r := n.send(t, http.MethodGet, "o", "", c.hdr); r.StatusCode != c.want {
			t.Errorf("GET %v: %d, want %d", c.hdr, r.StatusCode, c.want)
		}
	}
	if r := n.send(t, http.MethodPut, "o", body, map[string]string{"If-None-Match": `"` + md5Hex(body) + `"`}); r.StatusCode != 412 {
		t.Errorf("PUT If-None-Match the ETag: %d", r.StatusCode)
	}
	// A fast-POST's metadata is sealed in the .meta.
	if r := n.send(t, http.MethodPost, "o", "", map[string]string{"X-Object-Meta-Posted": "cerulean-post-secret"}); r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	head = n.send(t, http.MethodHead, "o", "", nil)
	if head.Header.Get("X-Object-Meta-Posted") != "cerulean-post-secret" || head.Header.Get("X-Object-Meta-Color") != "" {
		t.Errorf("HEAD after POST: %v", head.Header)
	}
	secrets := []string{md5Hex(body), md5Hex("other body"), "ultramarine-put-secret", "vermilion-other-secret", "cerulean-post-secret"}
	if files := scanXattrs(t, n.devices, secrets); files < 3 {
		t.Fatalf("scanned %d files", files)
	}

	// Tamper: each alteration of the stored metadata is refused, never shown.
	tamper := func(what, name string, alter func(md map[string]string)) {
		t.Helper()
		if r := n.send(t, http.MethodPut, name, "tamper body", map[string]string{"X-Object-Meta-Color": "secret-" + name}); r.StatusCode != 201 {
			t.Fatalf("%s: PUT %d", what, r.StatusCode)
		}
		path := n.dataFile(t, name)
		md := readXattrMeta(t, path)
		alter(md)
		writeXattrMeta(t, path, md)
		for _, v := range verbs {
			code, b := n.request(t, v.method, name, v.hdr)
			if code != http.StatusNotFound || bytes.Contains(b, []byte("secret")) {
				t.Errorf("%s: %s answered %d %q", what, v.name, code, b)
			}
		}
		if !n.quarantined(name) {
			t.Errorf("%s: not quarantined", what)
		}
	}
	pmd := readXattrMeta(t, n.dataFile(t, "p"))
	tamper("user metadata moved from another object", "t1", func(md map[string]string) {
		md["X-Object-Sysmeta-Arca-Meta"] = pmd["X-Object-Sysmeta-Arca-Meta"]
	})
	tamper("ETag moved from another object", "t2", func(md map[string]string) {
		md["X-Object-Sysmeta-Arca-Etag"] = pmd["X-Object-Sysmeta-Arca-Etag"]
	})
	tamper("user metadata altered", "t3", func(md map[string]string) {
		v := []byte(md["X-Object-Sysmeta-Arca-Meta"])
		v[len(v)/2] ^= 0x01
		md["X-Object-Sysmeta-Arca-Meta"] = string(v)
	})
	tamper("plaintext user metadata added beside the sealed set", "t4", func(md map[string]string) {
		md["X-Object-Meta-Planted"] = "forged"
	})
	tamper("sealed user metadata under another name (a .meta's, moved into the .data)", "t5", func(md map[string]string) {
		if r := n.send(t, http.MethodPost, "t5", "", map[string]string{"X-Object-Meta-Color": "secret-t5-posted"}); r.StatusCode != 202 {
			t.Fatalf("POST t5: %d", r.StatusCode)
		}
		metas, _ := filepath.Glob(filepath.Join(n.hashDir("t5"), "*.meta"))
		if len(metas) != 1 {
			t.Fatalf("t5 .meta files: %v", metas)
		}
		mm := readXattrMeta(t, metas[0])
		if err := os.Remove(metas[0]); err != nil {
			t.Fatal(err)
		}
		md["X-Object-Sysmeta-Arca-Meta"] = mm["X-Object-Transient-Sysmeta-Arca-Meta"]
		md["X-Object-Sysmeta-Arca-Meta-Key-Id"] = mm["X-Object-Transient-Sysmeta-Arca-Meta-Key-Id"]
	})
	tamper("key id of the metadata removed", "t6", func(md map[string]string) {
		delete(md, "X-Object-Sysmeta-Arca-Meta-Key-Id")
	})
}

// An object written before ETags and metadata were encrypted (plaintext
// ETag sysmeta, plaintext user metadata) is served beside new ones.
func TestOldFormatObjectServed(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	for _, name := range []string{"old", "new"} {
		if r := n.send(t, http.MethodPut, name, "body of "+name, map[string]string{"X-Object-Meta-Color": "blue"}); r.StatusCode != 201 {
			t.Fatalf("PUT %s: %d", name, r.StatusCode)
		}
	}
	path := n.dataFile(t, "old")
	md := readXattrMeta(t, path)
	for _, k := range []string{"Etag", "Etag-Mac", "Meta", "Meta-Key-Id"} {
		delete(md, "X-Object-Sysmeta-Arca-"+k)
	}
	md["X-Object-Sysmeta-Arca-Plaintext-Etag"] = md5Hex("body of old")
	md["X-Object-Meta-Color"] = "blue"
	writeXattrMeta(t, path, md)
	for _, name := range []string{"old", "new"} {
		r := n.send(t, http.MethodHead, name, "", nil)
		if r.StatusCode != 200 || r.Header.Get("Etag") != `"`+md5Hex("body of "+name)+`"` || r.Header.Get("X-Object-Meta-Color") != "blue" {
			t.Errorf("HEAD %s: %d %v", name, r.StatusCode, r.Header)
		}
		if r := n.send(t, http.MethodGet, name, "", map[string]string{"If-None-Match": md5Hex("body of " + name)}); r.StatusCode != 304 {
			t.Errorf("GET %s If-None-Match: %d", name, r.StatusCode)
		}
	}
}
