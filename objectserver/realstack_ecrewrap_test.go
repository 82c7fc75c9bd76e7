package objectserver_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// TestRealStackECRewrap rotates a project's key over an erasure-coded
// policy on six arca-object-servers behind the real Swift proxy (4+2):
// objects of 0 bytes to several segments, one with POSTed metadata, and
// one whose six archives are in the old layout (one objcrypt stream each,
// as the object server wrote every archive before the EC layout), which
// Swift's Python auditor quarantines (checked on a scratch copy). Then,
// as an operator does: `arca-object-server rewrap status`, `rewrap
// --upgrade-ec-layout` on every node, status again (nothing on the old
// key, no old-layout archive), and the old key destroyed (the key service
// refuses the active one, accepts the old one once, then answers 410).
// Afterwards: every archive and .meta on disk names the new key, GETs and
// Range GETs through the proxy are byte-exact with their metadata, file
// names (timestamps, durability) are unchanged, Swift's Python auditor
// quarantines nothing on any node, and the Python reconstructor rebuilds
// lost archives of the upgraded object.
func TestRealStackECRewrap(t *testing.T) {
	s := newECStack(t)
	bins := testenv.Binaries(t)
	cont, _ := s.newContainer(t, "arca-ecrewrap-")
	sizes := map[string]int{"empty": 0, "small": 100, "segs": 40000, "posted": 20000, "oldlayout": 30001}
	objects := map[string][]byte{}
	for name, n := range sizes {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		objects[name] = data
		if resp, body := s.do("PUT", "/"+cont+"/"+name, data, map[string]string{"X-Object-Meta-Colour": "blue " + name}); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s %q", name, resp.Status, body)
		}
	}
	colour := map[string]string{}
	for name := range objects {
		colour[name] = "blue " + name
	}
	for _, name := range []string{"posted", "oldlayout"} {
		colour[name] = "posted " + name
		if resp, _ := s.do("POST", "/"+cont+"/"+name, nil, map[string]string{"X-Object-Meta-Colour": colour[name]}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %s", name, resp.Status)
		}
	}
	readAll := func(when string) {
		t.Helper()
		for name, data := range objects {
			resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Etag") != md5sum(data) || resp.Header.Get("X-Object-Meta-Colour") != colour[name] {
				t.Fatalf("GET %s %s: %s, %d bytes (want %d), ETag %s, colour %q", name, when, resp.Status, len(got), len(data), resp.Header.Get("Etag"), resp.Header.Get("X-Object-Meta-Colour"))
			}
		}
		for _, name := range []string{"segs", "oldlayout"} {
			data := objects[name]
			for _, r := range [][2]int{{0, 0}, {8190, 8200}, {2047, 2049}, {len(data) - 100, len(data) - 1}, {10000, 29999}} {
				resp, got := s.do("GET", "/"+cont+"/"+name, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", r[0], r[1])})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[r[0]:r[1]+1]) {
					t.Fatalf("GET %s %s, range %v: %s, %d bytes", name, when, r, resp.Status, len(got))
				}
			}
		}
	}
	readAll("after PUT")

	oldID := s.activeKeyID(t)
	for node := range s.Nodes {
		s.toOldLayout(t, node, cont, "oldlayout")
	}
	readAll("with old-layout archives")
	s.auditorQuarantinesOldLayout(t, cont, "oldlayout")

	if code, rotated := s.KeyService(t, s.KeyAdminToken, "POST", "/v1/project-keys/rotate?project_id="+s.Project); code/100 != 2 || rotated["key_id"] == oldID {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	time.Sleep(1500 * time.Millisecond) // the object servers' active_key_cache_ttl
	newID := s.activeKeyID(t)
	names := s.dataNames(t, cont, objects)
	for i, n := range s.Nodes {
		out := s.rewrapCmd(t, bins, n.Config, "status")
		if !regexp.MustCompile(oldID+`\s+inactive\s+`+fmt.Sprint(len(objects))+`\s+2\n`).MatchString(out) || !strings.Contains(out, ".meta files on inactive keys: 2,") ||
			!strings.Contains(out, "EC archives in the old layout: 1 ") {
			t.Fatalf("status on node %d before the rewrap:\n%s", i, out)
		}
	}
	if code, _ := s.KeyService(t, s.KeyAdminToken, "DELETE", "/v1/project-keys/"+newID+"?project_id="+s.Project); code != http.StatusConflict {
		t.Fatalf("destroying the active key: %d, want 409", code)
	}
	for i, n := range s.Nodes {
		out := s.rewrapCmd(t, bins, n.Config, "--upgrade-ec-layout")
		if !strings.Contains(out, "rewrapped "+fmt.Sprint(len(objects))+",") || !strings.Contains(out, "EC archives: upgraded 1 to the EC layout") ||
			!strings.Contains(out, "resealed 2 from older keys") || !strings.Contains(out, "failed 0,") {
			t.Fatalf("rewrap on node %d:\n%s", i, out)
		}
		t.Logf("rewrap on %s:\n%s", n.Device, out)
	}
	for i, n := range s.Nodes {
		out := s.rewrapCmd(t, bins, n.Config, "status")
		if !strings.Contains(out, "objects on inactive keys: 0\n") || !strings.Contains(out, ".meta files on inactive keys: 0, in the clear: 0") ||
			!strings.Contains(out, "EC archives in the old layout: 0\n") || !regexp.MustCompile(newID+`\s+active\s+`+fmt.Sprint(len(objects))+`\s+2\n`).MatchString(out) {
			t.Fatalf("status on node %d after the rewrap:\n%s", i, out)
		}
	}
	if after := s.dataNames(t, cont, objects); !equalStrings(after, names) {
		t.Fatalf("archive names changed (timestamps, durability):\nbefore %v\nafter  %v", names, after)
	}
	s.everyArchiveOn(t, cont, objects, newID)
	readAll("after the rewrap")

	// The key service does not look at the disks: the operator destroys
	// once every node's status says nothing depends on the key
	// (docs/project-keys.md). It refuses the active key (above) and a
	// destroyed one.
	if code, body := s.KeyService(t, s.KeyAdminToken, "DELETE", "/v1/project-keys/"+oldID+"?project_id="+s.Project); code != http.StatusNoContent {
		t.Fatalf("destroying the old key: %d %v", code, body)
	}
	if code, _ := s.KeyService(t, s.KeyAdminToken, "DELETE", "/v1/project-keys/"+oldID+"?project_id="+s.Project); code != http.StatusGone {
		t.Fatalf("destroying the old key again: %d, want 410", code)
	}
	time.Sleep(1500 * time.Millisecond) // key_cache_ttl: the old key's bytes are gone from every cache
	readAll("after the old key was destroyed")
	for i := range s.Nodes {
		out := s.audit(t, i)
		if strings.Contains(out, "Quarantined") || strings.Contains(out, "Invalid EC metadata") {
			t.Fatalf("auditor on %s after the rewrap:\n%s", s.Nodes[i].Device, testenv.Tail(out, 30))
		}
	}
	if q := s.quarantined(); len(q) > 0 {
		t.Fatalf("the Python auditor quarantined archives after the rewrap: %v", q)
	}
	t.Logf("object-auditor once on 6 Arca nodes after the rewrap and upgrade: nothing quarantined")
	s.rebuild(t, cont, "oldlayout", objects, readAll)
	s.everyArchiveOn(t, cont, objects, newID)
}

// activeKeyID is the project's active key id, as the object servers ask.
func (s *ecStack) activeKeyID(t *testing.T) string {
	t.Helper()
	code, k := s.KeyService(t, s.ObjectToken, "GET", "/v1/project-keys/active?project_id="+s.Project)
	id, _ := k["key_id"].(string)
	if code != http.StatusOK || id == "" {
		t.Fatalf("active key: %d %v", code, k)
	}
	return id
}

// rewrapCmd runs `arca-object-server rewrap [status] --config-file F
// --project P [args]` as an operator does and returns its output; a
// non-zero exit fails the test.
func (s *ecStack) rewrapCmd(t *testing.T, bins, conf string, args ...string) string {
	t.Helper()
	var all []string
	if len(args) > 0 && args[0] == "status" {
		all, args = []string{"status"}, args[1:]
	}
	all = append(append([]string{"rewrap"}, all...), "--config-file", conf, "--project", s.Project)
	all = append(all, args...)
	out, err := exec.Command(filepath.Join(bins, "arca-object-server"), all...).CombinedOutput()
	if err != nil {
		t.Fatalf("arca-object-server %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

// keyMaterial reads a project key's bytes as an object server does.
func (s *ecStack) keyMaterial(t *testing.T, id string) objcrypt.ProjectKey {
	t.Helper()
	req, err := http.NewRequest("GET", s.API.URL+"/v1/project-keys/"+id+"/payload?project_id="+s.Project, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.ObjectToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("key payload: %s %v", resp.Status, err)
	}
	return objcrypt.ProjectKey{ID: id, Key: b}
}

// toOldLayout rewrites node's archive of an object as the object server
// stored archives before the EC layout (and still stores bytes sent under
// an EC policy that are not fragments): one objcrypt stream under a new
// data key, with the values sealed under the data key's ETag keys (the
// archive's ETag, the whole object's, middleware sysmeta) sealed again
// under the new one. User metadata (sealed under the project key), the
// timestamps and the file name stay.
func (s *ecStack) toOldLayout(t *testing.T, node int, cont, name string) {
	t.Helper()
	p := dataFileOf(s.fragFiles(cont, name)[node])
	md := readXattrMeta(t, p)
	resp, archive := s.nodeGet(node, "GET", cont, name, nil)
	if resp.StatusCode != http.StatusOK || md[sysmeta.Prefix+sysmeta.Layout] != objcrypt.ECLayout {
		t.Fatalf("archive on node %d: %s, layout %q", node, resp.Status, md[sysmeta.Prefix+sysmeta.Layout])
	}
	path := md["name"]
	rec, err := sysmeta.Parse(md)
	if err != nil {
		t.Fatal(err)
	}
	key := s.keyMaterial(t, rec.KeyID)
	oldEK, err := objcrypt.OpenETagKeys(&rec.Metadata, key, path)
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	ow, err := objcrypt.NewWriter(&stream, key, path, &objcrypt.WriterOptions{SegmentSize: objcrypt.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ow.Write(archive); err != nil {
		t.Fatal(err)
	}
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	ek := ow.ETagKeys()
	out := map[string]string{}
	for k, v := range md {
		if !sysmeta.IsArca(k) {
			out[k] = v
		}
	}
	for _, k := range []string{"X-Object-Sysmeta-Container-Update-Override-Etag", "X-Object-Sysmeta-Slo-Etag", "X-Object-Sysmeta-Symlink-Target-Etag"} {
		if v, ok := out[k]; ok && strings.HasPrefix(v, objcrypt.MetaValuePrefix) {
			plain, err := oldEK.OpenSysmeta(path, k, v)
			if err != nil {
				t.Fatal(err)
			}
			if out[k], err = ek.SealSysmeta(path, k, plain, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range md {
		if sysmeta.IsArca(k) && !strings.EqualFold(k, sysmeta.Prefix+sysmeta.Layout) {
			out[k] = v // user metadata's key id, sealed EC ETag (resealed below)
		}
	}
	delete(out, sysmeta.Prefix+sysmeta.EcFragments)
	delete(out, sysmeta.Prefix+sysmeta.EcMac)
	obj := sysmeta.Object{Metadata: ow.Metadata()}
	if obj.SealedEtag, err = ek.EncryptETag(md5sum(archive), path, nil); err != nil {
		t.Fatal(err)
	}
	obj.EtagMAC = ek.ETagMAC(md5sum(archive))
	for k, v := range obj.Map() {
		out[k] = v
	}
	ecEtag := resp.Header.Get("X-Object-Sysmeta-Ec-Etag")
	if ecEtag == "" {
		t.Fatal("the node answered no X-Object-Sysmeta-Ec-Etag")
	}
	if out[sysmeta.Prefix+sysmeta.EcEtag], err = ek.EncryptETag(ecEtag, path+"\x00X-Object-Sysmeta-Ec-Etag", nil); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(stream.Bytes())
	out["ETag"] = hex.EncodeToString(sum[:])
	out["Content-Length"] = fmt.Sprint(stream.Len())
	tmp := p + ".tmp-old-layout"
	if err := os.WriteFile(tmp, stream.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	writeXattrMeta(t, tmp, out)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.HasPrefix(got, []byte("ARCA")) {
		t.Fatal("not an objcrypt stream")
	}
}

// auditorQuarantinesOldLayout copies one node's old-layout archive of an
// object into a scratch devices folder and runs Swift's Python auditor
// there: it quarantines it (what the upgrade is for). The node's own
// copy is left alone.
func (s *ecStack) auditorQuarantinesOldLayout(t *testing.T, cont, name string) {
	t.Helper()
	node := 0
	p := dataFileOf(s.fragFiles(cont, name)[node])
	n := s.Nodes[node]
	rel, err := filepath.Rel(n.Devices, filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(s.work, "scratch-devices")
	dst := filepath.Join(scratch, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Dir(p), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	out := s.auditDevices(t, node, scratch)
	q, _ := filepath.Glob(filepath.Join(scratch, n.Device, "quarantined", "objects*", "*"))
	if len(q) != 1 || !strings.Contains(out, "Quarantined") {
		t.Fatalf("the Python auditor did not quarantine the old-layout archive (quarantined %v):\n%s", q, testenv.Tail(out, 20))
	}
	t.Logf("the Python auditor quarantines an old-layout archive (scratch copy): %s", filepath.Base(q[0]))
}

// dataNames lists the .data and .meta file names of the objects on every
// node, "node/name".
func (s *ecStack) dataNames(t *testing.T, cont string, objects map[string][]byte) []string {
	t.Helper()
	var out []string
	for name := range objects {
		for node, paths := range s.fragFiles(cont, name) {
			for _, p := range paths {
				out = append(out, fmt.Sprintf("%d/%s/%s", node, name, filepath.Base(p)))
			}
		}
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

var metaKeyRe = regexp.MustCompile(`(?i)^X-Object-Transient-Sysmeta-Arca-Meta-Key-Id$`)

// everyArchiveOn checks every .data file of the objects on every node: in
// the EC layout, its data key (and user metadata) on keyID; every .meta's
// user metadata on keyID too.
func (s *ecStack) everyArchiveOn(t *testing.T, cont string, objects map[string][]byte, keyID string) {
	t.Helper()
	archives := 0
	for name := range objects {
		for node, paths := range s.fragFiles(cont, name) {
			for _, p := range paths {
				md := readXattrMeta(t, p)
				switch {
				case strings.HasSuffix(p, ".data"):
					archives++
					if md[sysmeta.Prefix+sysmeta.KeyID] != keyID || md[sysmeta.Prefix+sysmeta.Layout] != objcrypt.ECLayout ||
						(md[sysmeta.Prefix+sysmeta.MetaKeyID] != "" && md[sysmeta.Prefix+sysmeta.MetaKeyID] != keyID) {
						t.Fatalf("%s on node %d: key %q, layout %q, metadata key %q; want %s, ec1", name, node,
							md[sysmeta.Prefix+sysmeta.KeyID], md[sysmeta.Prefix+sysmeta.Layout], md[sysmeta.Prefix+sysmeta.MetaKeyID], keyID)
					}
				case strings.HasSuffix(p, ".meta"):
					for k, v := range md {
						if metaKeyRe.MatchString(k) && v != keyID {
							t.Fatalf("%s on node %d: .meta sealed under %s", name, node, v)
						}
					}
				}
			}
		}
	}
	if archives != 6*len(objects) {
		t.Fatalf("%d archives, want %d", archives, 6*len(objects))
	}
}
