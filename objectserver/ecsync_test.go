package objectserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"opendev.org/x/arca/objectserver/diskfile"
)

// libecArchive is a fragment archive as liberasurecode 1.6 lays it out
// (rs_vand, header fields as measured with pyeclib): fragments of stride
// payload bytes, the last of last bytes, payload bytes from fill.
func libecArchive(idx uint32, frags, stride, last int, fill string) []byte {
	var out []byte
	for i := range frags {
		n := stride
		if i == frags-1 {
			n = last
		}
		h := make([]byte, 80)
		binary.LittleEndian.PutUint32(h[0:], idx)
		binary.LittleEndian.PutUint32(h[4:], uint32(n))
		binary.LittleEndian.PutUint64(h[12:], uint64(4*n))
		h[20], h[54] = 1, 6
		binary.LittleEndian.PutUint32(h[55:], 0x10000)
		binary.LittleEndian.PutUint32(h[59:], 0xb0c5ecc)
		binary.LittleEndian.PutUint32(h[63:], 0x10602)
		binary.LittleEndian.PutUint32(h[67:], crc32.ChecksumIEEE(h[:59]))
		out = append(out, h...)
		out = append(out, bytes.Repeat([]byte(fill), n/len(fill)+1)[:n]...)
	}
	return out
}

// ecDataFile is the path and contents of the one EC .data file stored.
func (e *env) ecDataFile() (string, []byte, map[string]string) {
	e.t.Helper()
	for _, f := range e.files() {
		if strings.Contains(f, "objects-2") && strings.HasSuffix(f, ".data") {
			b, err := os.ReadFile(f)
			if err != nil {
				e.t.Fatal(err)
			}
			fh, err := os.Open(f)
			if err != nil {
				e.t.Fatal(err)
			}
			defer fh.Close()
			raw, err := diskfile.ReadRawMetadata(fh)
			if err != nil {
				e.t.Fatal(err)
			}
			return f, b, raw.Values
		}
	}
	e.t.Fatal("no EC .data file")
	return "", nil, nil
}

// ssyncPut is the PUT subrequest Swift's ssync_sender sends for a
// diskfile: Content-Length, then every metadata key but name.
func ssyncPut(path string, md map[string]string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s\r\nContent-Length: %d\r\n", path, len(body))
	keys := make([]string, 0, len(md))
	for k := range md {
		if k != "name" && k != "Content-Length" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, md[k])
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.String()
}

// TestSsyncSealedArchive: an archive in the EC layout sent back as
// stored (a revert) is kept byte for byte after every check; a changed
// byte, a changed index or ETag, or a PUT outside SSYNC never is; a
// rebuild (no ETag, the sender's sealed metadata) is encrypted anew with
// its sealed values opened and re-sealed.
func TestSsyncSealedArchive(t *testing.T) {
	archive := libecArchive(2, 3, 64, 10, "PLAINFRAGMENT-")
	hdr := map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Ssync-Frag-Index": "2"}
	setup := func(t *testing.T) (*env, string, []byte, map[string]string) {
		e := newEnv(t)
		ts := e.next()
		resp := e.do("PUT", "/sda/1/AUTH_p1/c/o", bytes.NewReader(archive), map[string]string{
			"X-Backend-Storage-Policy-Index": "2", "X-Timestamp": ts, "Content-Type": "a/b",
			"X-Object-Sysmeta-Ec-Frag-Index": "2", "X-Object-Sysmeta-Ec-Etag": md5hex("whole"),
			"X-Object-Meta-Colour": "blue", "Content-Length": fmt.Sprint(len(archive)),
		})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		path, stored, md := e.ecDataFile()
		if md["X-Object-Sysmeta-Arca-Layout"] != "ec1" || len(stored) != len(archive) || bytes.Contains(stored, []byte("PLAINFRAG")) {
			t.Fatalf("stored: layout %q, %d bytes", md["X-Object-Sysmeta-Arca-Layout"], len(stored))
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return e, ts, stored, md
	}
	get := func(e *env) (int, string, http.Header) {
		resp := e.do("GET", "/sda/1/AUTH_p1/c/o", nil, map[string]string{"X-Backend-Storage-Policy-Index": "2"})
		return resp.StatusCode, readBody(t, resp), resp.Header
	}

	t.Run("revert stored as sent", func(t *testing.T) {
		e, _, stored, md := setup(t)
		resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPut("/AUTH_p1/c/o", md, stored))), hdr)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || strings.Contains(body, ":ERROR:") {
			t.Fatalf("SSYNC: %d %q", resp.StatusCode, body)
		}
		_, got, _ := e.ecDataFile()
		if !bytes.Equal(got, stored) {
			t.Fatal("the archive was not stored as sent")
		}
		code, body, h := get(e)
		if code != http.StatusOK || body != string(archive) || h.Get("X-Object-Meta-Colour") != "blue" || h.Get("X-Object-Sysmeta-Ec-Etag") != md5hex("whole") {
			t.Fatalf("GET: %d, %d bytes, colour %q", code, len(body), h.Get("X-Object-Meta-Colour"))
		}
	})

	for _, c := range []struct {
		name   string
		change func(stored []byte, md map[string]string) ([]byte, map[string]string)
	}{
		{"payload byte flipped, ETag recomputed", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			s = bytes.Clone(s)
			s[100] ^= 1
			md["ETag"] = md5hex(string(s))
			return s, md
		}},
		{"fragment index changed", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			md["X-Object-Sysmeta-Ec-Frag-Index"] = "3"
			return s, md
		}},
		{"ETag of other bytes", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			md["ETag"] = md5hex("other")
			return s, md
		}},
		{"truncated, length and ETag recomputed", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			s = s[:144]
			md["ETag"] = md5hex(string(s))
			return s, md
		}},
		{"archive MAC altered", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			md["X-Object-Sysmeta-Arca-Ec-Fragments"] = "2"
			return s, md
		}},
		{"sealed ETag altered", func(s []byte, md map[string]string) ([]byte, map[string]string) {
			// its first character replaced by another: the token's first
			// character is random, so a fixed one was the same one time in 64
			v, first := md["X-Object-Sysmeta-Arca-Etag"], "A"
			if v[0] == 'A' {
				first = "B"
			}
			md["X-Object-Sysmeta-Arca-Etag"] = first + v[1:]
			return s, md
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _, stored, md := setup(t)
			body, md := c.change(stored, md)
			resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPut("/AUTH_p1/c/o", md, body))), hdr)
			if out := readBody(t, resp); !strings.Contains(out, ":ERROR:") {
				t.Fatalf("SSYNC accepted it: %d %q", resp.StatusCode, out)
			}
			if files := e.ecFiles(); len(files) != 0 {
				t.Fatalf("stored %v", files)
			}
		})
	}

	t.Run("not through SSYNC: Arca metadata dropped", func(t *testing.T) {
		e, _, stored, md := setup(t)
		h := map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Replication": "True", "Content-Length": fmt.Sprint(len(stored))}
		for k, v := range md {
			if k != "name" && k != "Content-Length" {
				h[k] = v
			}
		}
		resp := e.do("PUT", "/sda/1/AUTH_p1/c/o", bytes.NewReader(stored), h)
		readBody(t, resp)
		if files := e.ecFiles(); len(files) == 1 {
			if _, got, _ := e.ecDataFile(); bytes.Equal(got, stored) {
				t.Fatal("a direct PUT was stored verbatim")
			}
		}
	})

	t.Run("rebuild: sealed values re-sealed", func(t *testing.T) {
		e, ts, _, md := setup(t)
		rebuilt := libecArchive(4, 3, 64, 10, "REBUILT-")
		delete(md, "ETag")
		md["X-Object-Sysmeta-Ec-Frag-Index"] = "4"
		resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPut("/AUTH_p1/c/o", md, rebuilt))),
			map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Ssync-Frag-Index": "4"})
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || strings.Contains(body, ":ERROR:") {
			t.Fatalf("SSYNC: %d %q", resp.StatusCode, body)
		}
		path, got, nmd := e.ecDataFile()
		if filepath.Base(path) != ts+"#4#d.data" || bytes.Contains(got, []byte("REBUILT-")) || nmd["X-Object-Sysmeta-Arca-Wrapped-Key"] == md["X-Object-Sysmeta-Arca-Wrapped-Key"] {
			t.Fatalf("rebuilt archive %s: not encrypted under a new data key", filepath.Base(path))
		}
		code, body, h := get(e)
		if code != http.StatusOK || body != string(rebuilt) || h.Get("X-Object-Meta-Colour") != "blue" || h.Get("X-Object-Sysmeta-Ec-Etag") != md5hex("whole") {
			t.Fatalf("GET: %d, %d bytes, colour %q, EC ETag %q", code, len(body), h.Get("X-Object-Meta-Colour"), h.Get("X-Object-Sysmeta-Ec-Etag"))
		}
	})
}
