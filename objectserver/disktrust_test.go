package objectserver_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/ringhash"
)

// These tests check that the disk does not decide whether data is
// decrypted, on the real binary over HTTP, as an attacker with write
// access to a device (or a backup tool that drops xattrs) would make it:
// with crypto_driver = objcrypt, an object whose stored form is not what
// the server writes is refused (404, as Swift answers a quarantined
// object) and moved to <device>/quarantined/objects/, never served; old
// plaintext objects are served only behind legacy_plaintext_before.

// hashDir is the hash directory of object name in partition 1 of crashNode's
// device (swift.conf of newObjNode: prefix pre, suffix suf).
func (n *objNode) hashDir(name string) string {
	h := ringhash.Hasher{Prefix: "pre", Suffix: "suf"}.HashPath("AUTH_"+crashProject, "c", name)
	return filepath.Join(n.devices, n.device, "objects", "1", h[len(h)-3:], h)
}

// quarantined reports whether the object's hash directory was moved to
// the device's quarantine, as Swift's quarantine_renamer moves it.
func (n *objNode) quarantined(name string) bool {
	h := filepath.Base(n.hashDir(name))
	_, err := os.Stat(filepath.Join(n.devices, n.device, "quarantined", "objects", h))
	return err == nil
}

// dataFile is the object's one .data file.
func (n *objNode) dataFile(t *testing.T, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(n.hashDir(name), "*.data"))
	if len(m) != 1 {
		t.Fatalf("%s: data files %v", name, m)
	}
	return m[0]
}

// readXattrMeta is a file's Swift metadata (user.swift.metadata*).
func readXattrMeta(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	return raw.Values
}

// writeXattrMeta replaces a file's Swift metadata with md, checksum
// included, as a tool with write access to the device can.
func writeXattrMeta(t *testing.T, path string, md map[string]string) {
	t.Helper()
	for i := 1; ; i++ {
		if err := unix.Removexattr(path, "user.swift.metadata"+strconv.Itoa(i)); err != nil {
			break
		}
	}
	p, err := pickle.Encode(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > 65536 {
		t.Fatal("test metadata larger than one xattr chunk")
	}
	sum := md5.Sum(p)
	if err := unix.Setxattr(path, "user.swift.metadata", p, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(path, "user.swift.metadata_checksum", []byte(hex.EncodeToString(sum[:])), 0); err != nil {
		t.Fatal(err)
	}
}

// withoutArca is md without its X-Object-Sysmeta-Arca-* keys.
func withoutArca(md map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		if !strings.HasPrefix(strings.ToLower(k), "x-object-sysmeta-arca-") {
			out[k] = v
		}
	}
	return out
}

// replaceData writes body as the object's data, with Content-Length and
// ETag to match (what a forger does so that Swift's own checks pass), and
// returns its metadata so that the caller edits it further.
func replaceData(t *testing.T, path string, body []byte, md map[string]string) map[string]string {
	t.Helper()
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	md["Content-Length"] = strconv.Itoa(len(body))
	md["ETag"] = hex.EncodeToString(sum[:])
	return md
}

// backdate renames the object's .data file (and its X-Timestamp) to at.
func backdate(t *testing.T, path string, at time.Time) string {
	t.Helper()
	md := readXattrMeta(t, path)
	ts := diskfile.FromTime(at).Internal()
	md["X-Timestamp"] = ts
	writeXattrMeta(t, path, md)
	to := filepath.Join(filepath.Dir(path), ts+".data")
	if err := os.Rename(path, to); err != nil {
		t.Fatal(err)
	}
	return to
}

// request does one request to the node and returns status and body.
func (n *objNode) request(t *testing.T, method, name string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.objURL(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, name, err)
	}
	return resp.StatusCode, b
}

// verbs are the reads that must all refuse: GET, HEAD and a ranged GET.
var verbs = []struct {
	name   string
	method string
	hdr    map[string]string
}{
	{"GET", http.MethodGet, nil},
	{"HEAD", http.MethodHead, nil},
	{"ranged GET", http.MethodGet, map[string]string{"Range": "bytes=2-9"}},
}

// TestDiskDoesNotDecideDecryption alters stored objects on the device of a
// real arca-object-server (crypto_driver = objcrypt) and checks that each
// read is refused and the object quarantined, and that no byte of what is
// on disk (ciphertext or forged plaintext) is served. Before this check
// existed, the stripped object was served raw (200, ciphertext) and the
// forged plain file as the object.
func TestDiskDoesNotDecideDecryption(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	secret := []byte("the secret plaintext of an encrypted object, longer than a range")
	forged := []byte("FORGED plaintext planted on the device")
	cases := []struct {
		name string
		// alter changes the stored object (its .data file at path).
		alter func(t *testing.T, path string)
	}{
		{"Arca sysmeta stripped from the xattrs", func(t *testing.T, path string) {
			writeXattrMeta(t, path, withoutArca(readXattrMeta(t, path)))
		}},
		{"one Arca key stripped (Version)", func(t *testing.T, path string) {
			md := readXattrMeta(t, path)
			delete(md, "X-Object-Sysmeta-Arca-Version")
			writeXattrMeta(t, path, md)
		}},
		{"an Arca key twice in two cases", func(t *testing.T, path string) {
			md := readXattrMeta(t, path)
			md["x-object-sysmeta-arca-key-id"] = "another-key"
			writeXattrMeta(t, path, md)
		}},
		{"plaintext ETag not an MD5", func(t *testing.T, path string) {
			md := readXattrMeta(t, path)
			md["X-Object-Sysmeta-Arca-Plaintext-Etag"] = "not-an-md5"
			writeXattrMeta(t, path, md)
		}},
		{"plain file with the forged metadata of an encrypted object", func(t *testing.T, path string) {
			md := readXattrMeta(t, path)
			md["X-Object-Sysmeta-Arca-Plaintext-Length"] = strconv.Itoa(len(forged))
			sum := md5.Sum(forged)
			md["X-Object-Sysmeta-Arca-Plaintext-Etag"] = hex.EncodeToString(sum[:])
			writeXattrMeta(t, path, replaceData(t, path, forged, md))
		}},
		{"plain file without Arca metadata", func(t *testing.T, path string) {
			writeXattrMeta(t, path, replaceData(t, path, forged, withoutArca(readXattrMeta(t, path))))
		}},
	}
	for _, c := range cases {
		for _, v := range verbs {
			t.Run(c.name+"/"+v.name, func(t *testing.T) {
				name := strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(c.name + "-" + v.name)
				if code, err := n.put(http.DefaultClient, name, secret, 0); err != nil || code != http.StatusCreated {
					t.Fatalf("PUT: %d %v", code, err)
				}
				path := n.dataFile(t, name)
				stored, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				c.alter(t, path)
				code, body := n.request(t, v.method, name, v.hdr)
				if code != http.StatusNotFound {
					t.Fatalf("%s answered %d (%d bytes), want 404 (refused and quarantined)", v.name, code, len(body))
				}
				for _, leak := range [][]byte{secret[2:10], stored[2:10], forged[2:10]} {
					if bytes.Contains(body, leak) {
						t.Fatalf("%s served stored bytes: %q", v.name, body)
					}
				}
				if !n.quarantined(name) {
					t.Fatalf("%s: object not moved to %s/quarantined/objects", v.name, n.device)
				}
				if _, err := os.Stat(n.hashDir(name)); !os.IsNotExist(err) {
					t.Fatalf("hash directory still in place: %v", err)
				}
				// and it stays refused: nothing is left to serve
				if code, _ := n.request(t, http.MethodGet, name, nil); code != http.StatusNotFound {
					t.Fatalf("GET after quarantine: %d", code)
				}
			})
		}
	}

	// Well-formed metadata that disagrees with the authenticated data.
	// Every verb that answers from the metadata opens the data first: GET,
	// HEAD (length and ETag) and POST (which sends them to the container
	// listing). Before, HEAD answered 200 with the forged length and POST
	// 202, sending it on.
	answering := []struct {
		name, method string
		hdr          func() map[string]string
	}{
		{"GET", http.MethodGet, func() map[string]string { return nil }},
		{"HEAD", http.MethodHead, func() map[string]string { return nil }},
		{"POST", http.MethodPost, func() map[string]string {
			return map[string]string{"X-Timestamp": diskfile.FromTime(time.Now()).Internal(), "X-Object-Meta-Color": "blue"}
		}},
	}
	for _, v := range answering {
		t.Run("plaintext length edited/"+v.name, func(t *testing.T) {
			name := "length-edited-" + v.name
			if code, err := n.put(http.DefaultClient, name, secret, 0); err != nil || code != http.StatusCreated {
				t.Fatalf("PUT: %d %v", code, err)
			}
			path := n.dataFile(t, name)
			md := readXattrMeta(t, path)
			md["X-Object-Sysmeta-Arca-Plaintext-Length"] = strconv.Itoa(len(secret) - 10)
			writeXattrMeta(t, path, md)
			if code, body := n.request(t, v.method, name, v.hdr()); code != http.StatusNotFound || bytes.Contains(body, secret[:10]) {
				t.Fatalf("%s: %d %q, want 404", v.name, code, body)
			}
			if !n.quarantined(name) {
				t.Fatal("not quarantined")
			}
		})
		// Another object's Arca metadata, all of it (a valid key id and
		// wrapped key, another length and ETag): its data key is bound to
		// the other path and does not open here.
		t.Run("Arca metadata of another object/"+v.name, func(t *testing.T) {
			name, donor := "borrowed-"+v.name, "donor-"+v.name
			for _, o := range []struct {
				name string
				body []byte
			}{{name, secret}, {donor, forged}} {
				if code, err := n.put(http.DefaultClient, o.name, o.body, 0); err != nil || code != http.StatusCreated {
					t.Fatalf("PUT %s: %d %v", o.name, code, err)
				}
			}
			path := n.dataFile(t, name)
			md := readXattrMeta(t, path)
			for k, val := range readXattrMeta(t, n.dataFile(t, donor)) {
				if strings.HasPrefix(strings.ToLower(k), "x-object-sysmeta-arca-") {
					md[k] = val
				}
			}
			writeXattrMeta(t, path, md)
			if code, body := n.request(t, v.method, name, v.hdr()); code < 400 || bytes.Contains(body, secret[:10]) {
				t.Fatalf("%s: %d %q, want a refusal", v.name, code, body)
			}
		})
	}
	// The control: an untouched object reads back.
	if code, err := n.put(http.DefaultClient, "untouched", secret, 0); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	if code, body := n.get("untouched"); code != http.StatusOK || !bytes.Equal(body, secret) {
		t.Fatalf("untouched object: %d %q", code, body)
	}
}

// TestLegacyPlaintextMigration: plaintext objects written before
// encryption was turned on are served only with legacy_plaintext_before,
// and only when older than it and free of any objcrypt trace.
func TestLegacyPlaintextMigration(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	legacy := []byte("a legacy plaintext object, written before encryption")
	cutoff := time.Now().Add(-time.Hour)
	// plant writes an object through the server and turns it into a
	// plaintext object of the given age, as Swift's object server would
	// have stored it (no Arca metadata); withMagic keeps the ciphertext.
	plant := func(t *testing.T, name string, at time.Time, keepCiphertext bool) {
		t.Helper()
		if code, err := n.put(http.DefaultClient, name, legacy, 0); err != nil || code != http.StatusCreated {
			t.Fatalf("PUT: %d %v", code, err)
		}
		path := n.dataFile(t, name)
		md := withoutArca(readXattrMeta(t, path))
		if !keepCiphertext {
			md = replaceData(t, path, legacy, md)
		}
		writeXattrMeta(t, path, md)
		backdate(t, path, at)
	}
	plant(t, "old-plain", cutoff.Add(-24*time.Hour), false)
	plant(t, "old-plain-2", cutoff.Add(-24*time.Hour), false)
	plant(t, "new-plain", cutoff.Add(time.Minute), false)
	plant(t, "old-ciphertext", cutoff.Add(-24*time.Hour), true)

	// Without the option (the default), even the old plain object is refused.
	if code, _ := n.request(t, http.MethodHead, "old-plain-2", nil); code != http.StatusNotFound || !n.quarantined("old-plain-2") {
		t.Fatalf("legacy object without the option: %d, want 404 and quarantined", code)
	}

	n.kill(syscall.SIGTERM)
	f, err := os.OpenFile(n.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "legacy_plaintext_before = %s\n", cutoff.UTC().Format(time.RFC3339))
	f.Close()
	n.start()

	for _, v := range verbs {
		code, body := n.request(t, v.method, "old-plain", v.hdr)
		want, wantCode := legacy, http.StatusOK
		switch {
		case v.method == http.MethodHead:
			want = nil
		case v.hdr != nil:
			want, wantCode = legacy[2:10], http.StatusPartialContent
		}
		if code != wantCode || !bytes.Equal(body, want) {
			t.Fatalf("%s of a legacy object older than the cutoff: %d %q, want %d %q", v.name, code, body, wantCode, want)
		}
	}
	for _, name := range []string{"new-plain", "old-ciphertext"} {
		if code, body := n.request(t, http.MethodGet, name, nil); code != http.StatusNotFound || bytes.Contains(body, legacy[:10]) {
			t.Fatalf("%s with the option: %d %q, want 404", name, code, body)
		}
		if !n.quarantined(name) {
			t.Fatalf("%s not quarantined", name)
		}
	}
	// New writes are encrypted whatever the option says.
	if code, err := n.put(http.DefaultClient, "new-write", legacy, 0); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	if b, _ := os.ReadFile(n.dataFile(t, "new-write")); bytes.Contains(b, legacy[:10]) {
		t.Fatal("plaintext on disk after a PUT with the migration option set")
	}
}
