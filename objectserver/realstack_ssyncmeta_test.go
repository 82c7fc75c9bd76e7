package objectserver_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// sealedMetaFile reads a .meta's metadata and checks that it holds the
// user metadata sealed (sysmeta.MetaSet) and none of plain in clear, in
// its metadata or its bytes.
func sealedMetaFile(t *testing.T, path string, plain ...string) map[string]string {
	t.Helper()
	md := readXattrMeta(t, path)
	if md[sysmeta.TransientUserMeta] == "" || md[sysmeta.TransientMetaKeyID] == "" {
		t.Fatalf("%s: no sealed user metadata: %v", path, md)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plain {
		if bytes.Contains(b, []byte(p)) {
			t.Fatalf("%s holds %q in clear", path, p)
		}
		for k, v := range md {
			if strings.Contains(k, p) || strings.Contains(v, p) {
				t.Fatalf("%s holds %q in clear (%s)", path, p, k)
			}
		}
	}
	return md
}

// TestRealStackECRevertPostedMeta: Swift's Python reconstructor reverts
// an archive and the .meta of a POST from a node that holds them by
// mistake to their primary, over SSYNC, on six Arca nodes: the primary
// keeps the .meta's sealed user metadata as sent (nothing in clear) and
// answers it, as does the proxy (revertPosted).
func TestRealStackECRevertPostedMeta(t *testing.T) {
	s := newECStack(t)
	cont, objects := s.putColoured(t, "arca-ecmeta-", map[string]int{"one": 1, "seg+1": 8193})
	readAll := func(when string) {
		t.Helper()
		for name, data := range objects {
			resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("X-Object-Meta-Colour") != "blue "+name {
				t.Fatalf("GET %s %s: %s, %d bytes, colour %q", name, when, resp.Status, len(got), resp.Header.Get("X-Object-Meta-Colour"))
			}
		}
	}
	s.revertPosted(t, cont, "seg+1", readAll)
}

// revertPosted POSTs user metadata to an object through the proxy, moves
// one archive and the .meta from its primary to another node of the ring,
// and runs the Python reconstructor there: its revert job sends the
// archive (PUT) and the .meta (POST) as stored, and the primary keeps the
// .meta's sealed set byte for byte, answers the POSTed metadata, and holds
// none of it in clear.
func (s *ecStack) revertPosted(t *testing.T, cont, name string, readAll func(string)) {
	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	posted := "POSTED-" + hex.EncodeToString(tag)
	resp, body := s.do("POST", "/"+cont+"/"+name, nil, map[string]string{"X-Object-Meta-Colour": "blue " + name, "X-Object-Meta-Posted": posted})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %s %q", name, resp.Status, body)
	}
	ring := s.ringNodes(t, cont, name)
	// as revert: index 2's archive on index 0's node
	owner, holder := ring[2], ring[0]
	files := s.fragFiles(cont, name)
	src, srcMeta := dataFileOf(files[owner]), metaFileOf(files[owner])
	if src == "" || srcMeta == "" {
		t.Fatalf("%s on %s: no archive and .meta: %v", name, s.Nodes[owner].Device, files[owner])
	}
	sent := sealedMetaFile(t, srcMeta, posted, "blue "+name)
	// the holder's .meta of the same POST has the same name: the owner's
	// replaces it (both sealed for this object)
	moveArchive(t, filepath.Dir(dataFileOf(files[holder])), src, srcMeta)
	readAll("with an archive and its .meta on the wrong node")
	log := s.Reconstruct(t, holder)
	back := s.fragFiles(cont, name)[owner]
	if dataFileOf(back) == "" || metaFileOf(back) == "" {
		t.Fatalf("archive and .meta not reverted to %s (%v); reconstructor:\n%s", s.Nodes[owner].Device, back, testenv.Tail(log, 40))
	}
	got := sealedMetaFile(t, metaFileOf(back), posted, "blue "+name)
	// the owner answers the POSTed metadata itself (the proxy would take
	// it from any node)
	resp, _ = s.nodeGet(owner, "HEAD", cont, name, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Object-Meta-Posted") != posted || resp.Header.Get("X-Object-Meta-Colour") != "blue "+name {
		t.Fatalf("HEAD on %s after the revert: %s, posted %q, colour %q; reconstructor:\n%s", s.Nodes[owner].Device, resp.Status,
			resp.Header.Get("X-Object-Meta-Posted"), resp.Header.Get("X-Object-Meta-Colour"), testenv.Tail(log, 40))
	}
	if got[sysmeta.TransientUserMeta] != sent[sysmeta.TransientUserMeta] || got[sysmeta.TransientMetaKeyID] != sent[sysmeta.TransientMetaKeyID] {
		t.Fatalf("the reverted .meta on %s is not the sealed set sent", s.Nodes[owner].Device)
	}
	for _, m := range []string{"HEAD", "GET"} {
		resp, _ = s.do(m, "/"+cont+"/"+name, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Object-Meta-Posted") != posted {
			t.Fatalf("%s through the proxy after the revert: %s, posted %q", m, resp.Status, resp.Header.Get("X-Object-Meta-Posted"))
		}
	}
	t.Logf("archive and .meta of %s reverted from %s to %s; the .meta's sealed set kept as sent", name, s.Nodes[holder].Device, s.Nodes[owner].Device)
	readAll("after the revert of a .meta")
}

// TestRealStackReplicatedSsyncMeta runs Swift's Python object-replicator
// in ssync mode on two Arca nodes of a replicated policy: a replica that
// lost its .meta gets it back as sent (sealed, nothing in clear, its
// POSTed metadata answered); a replica that lost its .data is not
// replicated by ssync (the receiver refuses Arca's objcrypt stream
// rather than store it as a plaintext object) and stays absent rather
// than wrong: replicated policies replicate with rsync.
func TestRealStackReplicatedSsyncMeta(t *testing.T) {
	s := newStack(t)
	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	cont := "arca-ssyncmeta-" + hex.EncodeToString(tag)
	posted := "POSTED-" + hex.EncodeToString(tag)
	if resp, _ := s.http("PUT", "/"+cont, nil); resp.StatusCode/100 != 2 {
		t.Fatalf("container PUT: %s", resp.Status)
	}
	data := bytes.Repeat([]byte("replicated object "), 1000)
	req, _ := http.NewRequest("PUT", s.Storage+"/"+cont+"/obj", bytes.NewReader(data))
	req.Header.Set("X-Auth-Token", s.Token)
	req.Header.Set("X-Object-Meta-Colour", "blue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", err, resp)
	}
	resp.Body.Close()
	if resp, _ := s.http("POST", "/"+cont+"/obj", map[string]string{"X-Object-Meta-Posted": posted}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	files := func(i int) []string {
		var out []string
		n := s.Nodes[i]
		_ = filepath.Walk(filepath.Join(n.Devices, n.Device, "objects"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && (strings.HasSuffix(p, ".data") || strings.HasSuffix(p, ".meta")) {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	src, dst := files(0), files(1)
	if metaFileOf(src) == "" || metaFileOf(dst) == "" || dataFileOf(dst) == "" {
		t.Fatalf("replicas: %v %v", src, dst)
	}
	sent := sealedMetaFile(t, metaFileOf(src), posted)
	replicate := func() string {
		t.Helper()
		conf, err := os.ReadFile(s.Nodes[0].Config)
		if err != nil {
			t.Fatal(err)
		}
		rc := filepath.Join(s.work, "replicator-ssync.conf")
		c := strings.Replace(string(conf), "[object-updater]", "[object-replicator]\nsync_method = ssync\n[object-updater]", 1)
		if err := os.WriteFile(rc, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("swift-object-replicator", rc, "--once", "-v").CombinedOutput()
		if err != nil {
			t.Fatalf("replicator: %v\n%s", err, testenv.Tail(string(out), 3000))
		}
		return string(out)
	}
	// node 2 loses its .meta: the replicator sends node 1's as a POST
	lost := metaFileOf(dst)
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	dropHashes(t, lost)
	var out string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		out = replicate()
		if metaFileOf(files(1)) != "" || time.Now().After(deadline) {
			break
		}
	}
	back := metaFileOf(files(1))
	if back == "" {
		t.Fatalf("the .meta was not replicated:\n%s", testenv.Tail(out, 3000))
	}
	got := sealedMetaFile(t, back, posted)
	if got[sysmeta.TransientUserMeta] != sent[sysmeta.TransientUserMeta] {
		t.Fatal("the replicated .meta is not the sealed set sent")
	}
	direct := func() *http.Response {
		t.Helper()
		n := s.Nodes[1]
		rel := strings.TrimPrefix(back, filepath.Join(n.Devices, n.Device, "objects")+"/")
		part := strings.SplitN(rel, "/", 2)[0]
		resp, _ := doHTTP(t, "HEAD", fmt.Sprintf("http://127.0.0.1:%d/%s/%s/AUTH_%s/%s/obj", n.Port, n.Device, part, s.Project, cont), nil, "", nil)
		return resp
	}
	if resp := direct(); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Object-Meta-Posted") != posted {
		t.Fatalf("node 2 after the .meta's replication: %s, posted %q", resp.Status, resp.Header.Get("X-Object-Meta-Posted"))
	}
	t.Logf("a replicated object's .meta sent by the Python replicator (ssync) kept as sent")

	// node 2 loses the whole object: ssync's PUT of Arca's stream is refused
	for _, p := range files(1) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		dropHashes(t, p)
	}
	out = replicate()
	// it was sent, and refused (the PUT; the POST of an object not there
	// is a 404, which SSYNC counts as done)
	if !strings.Contains(out, ":UPDATES: 1 failures") {
		t.Fatalf("the replicator's ssync PUT was not refused:\n%s", testenv.Tail(out, 3000))
	}
	if left := files(1); len(left) != 0 {
		t.Fatalf("node 2 holds %v after an ssync PUT of Arca's stream:\n%s", left, testenv.Tail(out, 3000))
	}
	if resp := direct(); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("node 2 after a refused ssync PUT: %s", resp.Status)
	}
	if resp, b := s.http("GET", "/"+cont+"/obj", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) || resp.Header.Get("X-Object-Meta-Posted") != posted {
		t.Fatalf("GET through the proxy: %s, %d bytes", resp.Status, len(b))
	}
}
