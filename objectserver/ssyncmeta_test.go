package objectserver

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// metaFileIn is the one .meta file of the objects of policy directory
// dir ("objects", "objects-2") whose path contains hash, and its metadata;
// "" and nil when there is none.
func (e *env) metaFileIn(dir, hash string) (string, map[string]string) {
	e.t.Helper()
	var found []string
	for _, f := range e.files() {
		if strings.Contains(f, "/"+dir+"/") && strings.Contains(f, "/"+hash+"/") && strings.HasSuffix(f, ".meta") {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	if len(found) > 1 {
		e.t.Fatalf("more than one .meta: %v", found)
	}
	fh, err := os.Open(found[0])
	if err != nil {
		e.t.Fatal(err)
	}
	defer fh.Close()
	raw, err := diskfile.ReadRawMetadata(fh)
	if err != nil {
		e.t.Fatal(err)
	}
	return found[0], raw.Values
}

// ssyncPost is the POST subrequest Swift's ssync_sender sends for a
// diskfile's .meta: every key of its metadata, sorted, name included.
func ssyncPost(path string, md map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s\r\n", path)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, md[k])
	}
	b.WriteString("\r\n")
	return b.String()
}

// metaValuesIn reports which of values appear in any metadata value or
// name of md, or in the file at path.
func metaValuesIn(t *testing.T, path string, md map[string]string, values ...string) []string {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range values {
		if bytes.Contains(file, []byte(v)) {
			out = append(out, v)
			continue
		}
		for k, mv := range md {
			if strings.Contains(mv, v) || strings.Contains(k, v) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// The POSTed metadata of the tests: values and a name that must never be
// on disk in clear.
const (
	postedColour = "red-SEALED-VALUE-1"
	postedShape  = "round-SEALED-VALUE-2"
	postedName   = "X-Object-Meta-Secret-Name-SEALED"
)

// postedObject is an object of policy pol (2: an EC archive of index 2;
// 0: replicated) PUT with user metadata and then POSTed other user
// metadata, its .data's metadata and bytes, and its .meta's path and
// metadata.
type postedObject struct {
	path      string // /AUTH_x/c/o
	hash      string
	dir       string // objects, objects-2
	hdr       map[string]string
	dataPath  string
	data      []byte
	dataMD    map[string]string
	metaPath  string
	metaMD    map[string]string
	postStamp string
}

func (e *env) postedObject(pol int, account, obj string) *postedObject {
	e.t.Helper()
	o := &postedObject{path: "/" + account + "/c/" + obj, hash: e.srv.swift.HashPath(account, "c", obj),
		dir: "objects", hdr: map[string]string{"X-Backend-Storage-Policy-Index": fmt.Sprint(pol)}}
	body := []byte(strings.Repeat("replicated plaintext ", 50))
	put := map[string]string{
		"X-Backend-Storage-Policy-Index": fmt.Sprint(pol), "X-Timestamp": e.next(), "Content-Type": "a/b",
		"X-Object-Meta-Colour": "blue", "Content-Length": fmt.Sprint(len(body)),
	}
	if pol == 2 {
		o.dir = "objects-2"
		o.hdr["X-Backend-Ssync-Frag-Index"] = "2"
		body = libecArchive(2, 3, 64, 10, "PLAINFRAGMENT-")
		put["X-Object-Sysmeta-Ec-Frag-Index"] = "2"
		put["X-Object-Sysmeta-Ec-Etag"] = md5hex("whole")
		put["Content-Length"] = fmt.Sprint(len(body))
	}
	if resp := e.do("PUT", "/sda/1"+o.path, bytes.NewReader(body), put); resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("PUT %s: %d", o.path, resp.StatusCode)
	}
	o.postStamp = e.next()
	resp := e.do("POST", "/sda/1"+o.path, nil, map[string]string{
		"X-Backend-Storage-Policy-Index": fmt.Sprint(pol), "X-Timestamp": o.postStamp,
		"X-Object-Meta-Colour": postedColour, "X-Object-Meta-Shape": postedShape, postedName: "x",
	})
	if readBody(e.t, resp); resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("POST %s: %d", o.path, resp.StatusCode)
	}
	for _, f := range e.files() {
		if strings.Contains(f, "/"+o.dir+"/") && strings.Contains(f, "/"+o.hash+"/") && strings.HasSuffix(f, ".data") {
			o.dataPath = f
		}
	}
	fh, err := os.Open(o.dataPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer fh.Close()
	raw, err := diskfile.ReadRawMetadata(fh)
	if err != nil {
		e.t.Fatal(err)
	}
	o.dataMD = raw.Values
	if o.data, err = os.ReadFile(o.dataPath); err != nil {
		e.t.Fatal(err)
	}
	o.metaPath, o.metaMD = e.metaFileIn(o.dir, o.hash)
	if o.metaMD[sysmeta.TransientUserMeta] == "" || o.metaMD[sysmeta.TransientMetaKeyID] == "" {
		e.t.Fatalf("the POST's .meta has no sealed user metadata: %v", o.metaMD)
	}
	if got := metaValuesIn(e.t, o.metaPath, o.metaMD, postedColour, postedShape, "Secret-Name"); len(got) > 0 {
		e.t.Fatalf("the POST's .meta holds %v in clear", got)
	}
	return o
}

// head answers the object's user metadata as the node answers it.
func (e *env) userMeta(o *postedObject) (int, map[string]string) {
	e.t.Helper()
	resp := e.do("HEAD", "/sda/1"+o.path, nil, map[string]string{"X-Backend-Storage-Policy-Index": o.hdr["X-Backend-Storage-Policy-Index"]})
	readBody(e.t, resp)
	out := map[string]string{}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-object-meta-") {
			out[k] = resp.Header.Get(k)
		}
	}
	return resp.StatusCode, out
}

// TestSsyncRevertedMeta: a POST's .meta sent back by an SSYNC sender as
// Arca stored it (a revert from a handoff, with or without its .data, EC
// and replicated) is kept as sent, sealed, and its user metadata is
// answered.
func TestSsyncRevertedMeta(t *testing.T) {
	for _, c := range []struct {
		name     string
		pol      int
		withData bool
	}{
		{"EC archive and .meta reverted", 2, true},
		{"EC .meta alone", 2, false},
		{"replicated .meta alone", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.postedObject(c.pol, "AUTH_p1", "o")
			if err := os.Remove(o.metaPath); err != nil {
				t.Fatal(err)
			}
			updates := ssyncPost(o.path, o.metaMD)
			if c.withData {
				if err := os.Remove(o.dataPath); err != nil {
					t.Fatal(err)
				}
				updates = ssyncPut(o.path, o.dataMD, o.data) + updates
			}
			resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, updates)), o.hdr)
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK || strings.Contains(body, ":ERROR:") {
				t.Fatalf("SSYNC: %d %q", resp.StatusCode, body)
			}
			path, md := e.metaFileIn(o.dir, o.hash)
			if path == "" {
				t.Fatal("no .meta after the revert")
			}
			if got := metaValuesIn(t, path, md, postedColour, postedShape, "Secret-Name", "blue"); len(got) > 0 {
				t.Fatalf("the reverted .meta holds %v in clear", got)
			}
			code, um := e.userMeta(o)
			if code != http.StatusOK || um["X-Object-Meta-Colour"] != postedColour || um["X-Object-Meta-Shape"] != postedShape ||
				um["X-Object-Meta-Secret-Name-Sealed"] != "x" || len(um) != 3 {
				t.Fatalf("HEAD after the revert: %d %v", code, um)
			}
			if md[sysmeta.TransientUserMeta] != o.metaMD[sysmeta.TransientUserMeta] || md[sysmeta.TransientMetaKeyID] != o.metaMD[sysmeta.TransientMetaKeyID] {
				t.Fatal("the reverted .meta's sealed user metadata is not the one sent")
			}
		})
	}
}

// TestSsyncRevertedMetaRefused: what a peer on the storage network can
// send as a sealed .meta over SSYNC and never gets kept: a set sealed for
// another object or another project, altered, under another key id, half
// a set, a .data's set, plaintext beside it, Arca keys a .meta never has.
// Each refuses the POST (:ERROR:), writes no .meta, and the object keeps
// the metadata it had; outside SSYNC the sent set is dropped, as any
// request's Arca metadata.
func TestSsyncRevertedMetaRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		forge  func(e *env, o *postedObject) map[string]string
		status int
	}{
		{"another object's set", func(e *env, o *postedObject) map[string]string {
			other := e.postedObject(2, "AUTH_p1", "other")
			return other.metaMD
		}, 0},
		{"another project's set", func(e *env, o *postedObject) map[string]string {
			other := e.postedObject(2, "AUTH_p2", "o")
			return other.metaMD
		}, 0},
		{"another project's set, this project's key id", func(e *env, o *postedObject) map[string]string {
			other := e.postedObject(2, "AUTH_p2", "o")
			md := o.metaMD
			md[sysmeta.TransientUserMeta] = other.metaMD[sysmeta.TransientUserMeta]
			return md
		}, 0},
		{"another project's key id", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			md[sysmeta.TransientMetaKeyID] = e.keys.rotate("p2")
			return md
		}, http.StatusForbidden},
		{"another key id of the project", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			md[sysmeta.TransientMetaKeyID] = e.keys.rotate("p1")
			return md
		}, 0},
		{"sealed value altered", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			v := []byte(md[sysmeta.TransientUserMeta])
			v[len(v)/2] ^= 1
			md[sysmeta.TransientUserMeta] = string(v)
			return md
		}, 0},
		{"the .data's set as the .meta's", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			md[sysmeta.TransientUserMeta] = o.dataMD[sysmeta.DataSet.Meta]
			md[sysmeta.TransientMetaKeyID] = o.dataMD[sysmeta.DataSet.KeyID]
			return md
		}, 0},
		{"set without key id", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			delete(md, sysmeta.TransientMetaKeyID)
			return md
		}, 0},
		{"key id without set", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			delete(md, sysmeta.TransientUserMeta)
			return md
		}, 0},
		{"plaintext beside the set", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			md["X-Object-Meta-Colour"] = "forged"
			return md
		}, 0},
		{"unknown Arca key", func(e *env, o *postedObject) map[string]string {
			md := o.metaMD
			md[sysmeta.TransientPrefix+"Key-Id"] = "x"
			return md
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.postedObject(2, "AUTH_p1", "o")
			if err := os.Remove(o.metaPath); err != nil {
				t.Fatal(err)
			}
			md := c.forge(e, o)
			md["X-Timestamp"] = e.next()
			resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPost(o.path, md))), o.hdr)
			if body := readBody(t, resp); !strings.Contains(body, ":ERROR:") {
				t.Fatalf("SSYNC accepted it: %d %q", resp.StatusCode, body)
			}
			if path, _ := e.metaFileIn(o.dir, o.hash); path != "" {
				t.Fatalf("a .meta was written: %s", path)
			}
			if code, um := e.userMeta(o); code != http.StatusOK || um["X-Object-Meta-Colour"] != "blue" || len(um) != 1 {
				t.Fatalf("HEAD: %d %v", code, um)
			}
			if c.status != 0 && !strings.Contains(e.logs.String(), "the key of the sealed metadata sent") {
				t.Fatalf("not refused by the key service: %s", e.logs.String())
			}
		})
	}

	t.Run("not through SSYNC: the set dropped", func(t *testing.T) {
		e := newEnv(t)
		o := e.postedObject(2, "AUTH_p1", "o")
		if err := os.Remove(o.metaPath); err != nil {
			t.Fatal(err)
		}
		h := map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Replication": "True", "X-Timestamp": e.next()}
		var repl []string
		for k, v := range o.metaMD {
			if k != "X-Timestamp" && k != "name" {
				h[k] = v
				repl = append(repl, strings.ToLower(k))
			}
		}
		h["X-Backend-Replication-Headers"] = strings.Join(repl, " ")
		resp := e.do("POST", "/sda/1"+o.path, nil, h)
		if readBody(t, resp); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		_, md := e.metaFileIn(o.dir, o.hash)
		if md[sysmeta.TransientUserMeta] == o.metaMD[sysmeta.TransientUserMeta] {
			t.Fatal("a direct POST's sealed set was kept")
		}
		if code, um := e.userMeta(o); code != http.StatusOK || len(um) != 0 {
			t.Fatalf("HEAD: %d %v", code, um)
		}
	})

	t.Run("server that does not decrypt", func(t *testing.T) {
		src := newEnv(t)
		o := src.postedObject(0, "AUTH_p1", "o")
		e := newEnv(t, func(c *Config) { c.Encrypt = false })
		resp := e.put("/sda/1"+o.path, "plain", map[string]string{"X-Timestamp": o.dataMD["X-Timestamp"]})
		if readBody(t, resp); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		resp = e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPost(o.path, o.metaMD))), o.hdr)
		if body := readBody(t, resp); !strings.Contains(body, ":ERROR:") {
			t.Fatalf("SSYNC accepted it: %d %q", resp.StatusCode, body)
		}
		if path, _ := e.metaFileIn(o.dir, o.hash); path != "" {
			t.Fatalf("a .meta was written: %s", path)
		}
	})
}

// TestSsyncArcaPutRefused: an SSYNC PUT of an object as Arca stored it
// under a replicated policy (Swift's replicator in ssync mode on an Arca
// device), or sent to a server that does not decrypt, is refused: stored
// as a plaintext PUT, its ciphertext would be served as the object.
func TestSsyncArcaPutRefused(t *testing.T) {
	for _, c := range []struct {
		name    string
		pol     int
		encrypt bool
	}{
		{"replicated", 0, true},
		{"EC, server that does not decrypt", 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := newEnv(t)
			o := src.postedObject(c.pol, "AUTH_p1", "o")
			e := newEnv(t, func(cfg *Config) { cfg.Encrypt = c.encrypt })
			resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPut(o.path, o.dataMD, o.data))), o.hdr)
			if body := readBody(t, resp); !strings.Contains(body, ":ERROR:") {
				t.Fatalf("SSYNC accepted it: %d %q", resp.StatusCode, body)
			}
			resp = e.do("GET", "/sda/1"+o.path, nil, map[string]string{"X-Backend-Storage-Policy-Index": fmt.Sprint(c.pol)})
			if body := readBody(t, resp); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}

// TestSsyncRevertedMetaOverLegacy: a sealed .meta sent over SSYNC for an
// object this node holds as a legacy plaintext object (served behind
// legacy_plaintext_before) is opened and written as a POST in clear
// writes it on such an object.
func TestSsyncRevertedMetaOverLegacy(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyPlaintextBefore = time.Now().Add(time.Hour) })
	o := e.postedObject(0, "AUTH_p1", "o")
	for _, p := range []string{o.metaPath, o.dataPath} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.srv.cfg
	cfg.Encrypt = false
	plain, err := New(cfg, e.srv.swift, e.keys, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(plain)
	defer ps.Close()
	req, _ := http.NewRequest("PUT", ps.URL+"/sda/1"+o.path, strings.NewReader("legacy"))
	for k, v := range map[string]string{"X-Timestamp": e.next(), "Content-Type": "a/b", "X-Object-Meta-Colour": "blue", "X-Backend-Storage-Policy-Index": "0"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("plaintext PUT: %v %v", err, resp)
	}
	resp.Body.Close()
	md := o.metaMD
	md["X-Timestamp"] = e.next()
	resp = e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, ssyncPost(o.path, md))), o.hdr)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || strings.Contains(body, ":ERROR:") {
		t.Fatalf("SSYNC: %d %q", resp.StatusCode, body)
	}
	if code, um := e.userMeta(o); code != http.StatusOK || um["X-Object-Meta-Colour"] != postedColour || um["X-Object-Meta-Shape"] != postedShape || len(um) != 3 {
		t.Fatalf("HEAD: %d %v", code, um)
	}
}
