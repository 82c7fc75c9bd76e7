package objectserver_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// stack is the real-stack set-up of TestRealStack (testenv's
// ObjectStack): Keystone, account and container servers from
// tools/stack.sh; a real arca-api; two arca-object-servers on two devices
// behind a private Swift proxy whose object ring has 2 replicas on them.
type stack struct {
	*testenv.ObjectStack
	t    *testing.T
	work string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	testenv.RequireTools(t, "swift", "swift-proxy-server", "swift-object-auditor", "swift-object-updater", "/usr/bin/python3")
	s := &stack{t: t, work: t.TempDir()}
	// The object servers' configurations serve Swift's Python auditor,
	// updater and replicator too: as root, logging to no syslog, with
	// one-second intervals.
	s.ObjectStack = testenv.StartObjectStack(t, testenv.ClusterOptions{Work: s.work, PartPower: 8,
		Object: testenv.ObjectServerConfig{
			DefaultOptions: fmt.Sprintf("user = root\nlog_address = %s/no-syslog\n", s.work),
			Sections:       "[object-auditor]\ninterval = 1\n[object-updater]\ninterval = 1\n",
		}})
	return s
}

// swift runs the swift CLI against the private proxy as the demo user.
func (s *stack) swift(dir string, args ...string) string {
	s.t.Helper()
	full := append([]string{"--os-auth-token", s.Token, "--os-storage-url", s.Storage}, args...)
	out, err := testenv.Run(nil, dir, "swift", full...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// http does one request through the proxy.
// newContainer makes, through the proxy, a container named prefix and a
// random tag, and returns its name and the tag (12 hex digits).
func (s *stack) newContainer(t *testing.T, prefix string) (cont, tag string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tag = hex.EncodeToString(b)
	cont = prefix + tag
	if resp, body := s.http("PUT", "/"+cont, nil); resp.StatusCode/100 != 2 {
		t.Fatalf("container PUT: %d %s", resp.StatusCode, body)
	}
	return cont, tag
}

func (s *stack) http(method, path string, hdr map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.Storage+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.Token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, b
}

func md5sum(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

// TestRealStack drives the real Swift proxy and the swift CLI against two
// arca-object-servers, then Swift's Python auditor and updater over their
// devices.
func TestRealStack(t *testing.T) {
	s := newStack(t)
	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	marker := "ARCA-PLAINTEXT-" + hex.EncodeToString(tag)
	cont := "arca-os-" + hex.EncodeToString(tag)
	src := t.TempDir()
	small := []byte("small object " + marker + "\n")
	large := bytes.Repeat([]byte(marker+" large object line\n"), 3<<20/40)
	files := map[string][]byte{"small.txt": small, "empty.bin": nil, "large.bin": large}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.swift(src, "upload", cont, "small.txt", "empty.bin", "large.bin")
	s.swift(src, "upload", "--use-slo", "-S", "1048576", cont, "large.bin", "--object-name", "slo.bin")

	dst := t.TempDir()
	for name, data := range files {
		s.swift(dst, "download", cont, name, "-o", filepath.Join(dst, name))
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download %s: %d bytes, want %d (%v)", name, len(got), len(data), err)
		}
	}
	s.swift(dst, "download", cont, "slo.bin", "-o", filepath.Join(dst, "slo.bin"))
	if got, _ := os.ReadFile(filepath.Join(dst, "slo.bin")); !bytes.Equal(got, large) {
		t.Fatalf("SLO download: %d bytes", len(got))
	}

	st := s.swift(dst, "stat", cont, "small.txt")
	if !strings.Contains(st, "Content Length: "+strconv.Itoa(len(small))) || !strings.Contains(st, "ETag: "+md5sum(small)) {
		t.Fatalf("stat:\n%s", st)
	}
	// the listing shows plaintext sizes and etags
	_, listing := s.http("GET", "/"+cont+"?format=json", nil)
	var entries []struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal(listing, &entries); err != nil {
		t.Fatalf("listing %s: %v", listing, err)
	}
	seen := 0
	for _, e := range entries {
		if data, ok := files[e.Name]; ok {
			seen++
			s.assertSealedListing(listing, md5sum(data))
			if e.Bytes != int64(len(data)) || s.openHash(cont, e.Name, "etag", e.Hash) != md5sum(data) {
				t.Errorf("listing %s: %d bytes %s, want %d %s", e.Name, e.Bytes, e.Hash, len(data), md5sum(data))
			}
		}
	}
	if seen != len(files) {
		t.Fatalf("listing has %d of %d objects: %s", seen, len(files), listing)
	}
	// No container database holds an object's MD5: neither the objects',
	// nor the SLO's segments' (their container is cont_segments) nor the
	// manifest's slo_etag.
	var segs []string
	for off := 0; off < len(large); off += 1 << 20 {
		segs = append(segs, md5sum(large[off:min(off+1<<20, len(large))]))
	}
	md5s := append([]string{md5sum(small), md5sum(large), sloEtag(segs)}, segs...)
	s.assertContainerDBsSealed(cont, md5s...)

	// metadata, copy
	s.swift(dst, "post", "-m", "color:blue", cont, "small.txt")
	if st := s.swift(dst, "stat", cont, "small.txt"); !strings.Contains(st, "Meta Color: blue") {
		t.Fatalf("stat after post:\n%s", st)
	}
	s.swift(dst, "copy", "-d", "/"+cont+"/copy.txt", cont, "small.txt")
	if resp, b := s.http("GET", "/"+cont+"/copy.txt", nil); resp.StatusCode != 200 || !bytes.Equal(b, small) {
		t.Fatalf("copy: %d %q", resp.StatusCode, b)
	}

	// ranges and conditionals through the proxy
	resp, b := s.http("GET", "/"+cont+"/large.bin", map[string]string{"Range": "bytes=100000-100099"})
	if resp.StatusCode != 206 || !bytes.Equal(b, large[100000:100100]) {
		t.Fatalf("range: %d", resp.StatusCode)
	}
	resp, b = s.http("GET", "/"+cont+"/large.bin", map[string]string{"Range": "bytes=0-9,-10"})
	if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
		!bytes.Contains(b, large[:10]) || !bytes.Contains(b, large[len(large)-10:]) {
		t.Fatalf("multi-range: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := s.http("GET", "/"+cont+"/small.txt", map[string]string{"If-None-Match": `"` + md5sum(small) + `"`}); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := s.http("GET", "/"+cont+"/small.txt", map[string]string{"If-Match": `"nope"`}); resp.StatusCode != 412 {
		t.Fatalf("If-Match: %d", resp.StatusCode)
	}

	// no plaintext anywhere on the devices
	var dataFiles int
	for _, n := range s.Nodes {
		_ = filepath.WalkDir(n.Devices, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if strings.HasSuffix(p, ".data") {
					dataFiles++
				}
				if b, rerr := os.ReadFile(p); rerr == nil && bytes.Contains(b, []byte(marker)) {
					t.Errorf("plaintext found in %s", p)
				}
			}
			return nil
		})
	}
	if dataFiles < 2*5 {
		t.Fatalf("only %d data files on the two devices", dataFiles)
	}

	// Swift's Python auditor checks every file and quarantines nothing.
	for _, n := range s.Nodes {
		out, err := exec.Command("swift-object-auditor", n.Config, "--once", "-v").CombinedOutput()
		if err != nil {
			t.Fatalf("auditor: %v\n%s", err, out)
		}
		if q, err := filepath.Glob(filepath.Join(n.Devices, "*", "quarantined", "*", "*")); err != nil || len(q) > 0 {
			t.Fatalf("auditor quarantined %v\n%s", q, testenv.Tail(string(out), 3000))
		}
	}

	// delete
	s.swift(dst, "delete", cont, "small.txt")
	if resp, _ := s.http("GET", "/"+cont+"/small.txt", nil); resp.StatusCode != 404 {
		t.Fatalf("GET after delete: %d", resp.StatusCode)
	}

	t.Run("replicator restores a lost replica", func(t *testing.T) { s.replicatorRestores(t, cont, large) })
	t.Run("updater delivers an async pending", func(t *testing.T) { s.updaterDelivers(t, cont) })
	// last: it destroys the key of every object above
	t.Run("key rotation and destruction", func(t *testing.T) { s.rotateAndDestroy(t, cont, small) })
}

// replicatorRestores deletes node 2's copy of large.bin (and its cached
// suffix hashes), runs Swift's Python replicator for node 1 in rsync mode
// (REPLICATE answered by arca-object-server) and reads the object back from
// node 2 alone.
func (s *stack) replicatorRestores(t *testing.T, cont string, want []byte) {
	n2 := s.Nodes[1]
	var victim string
	_ = filepath.WalkDir(n2.Devices, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") {
			if b, err := os.ReadFile(p); err == nil && int64(len(b)) > int64(len(want)) {
				victim = p
			}
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no replica of large.bin on node 2")
	}
	partDir := filepath.Dir(filepath.Dir(filepath.Dir(victim)))
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(partDir, "hashes.pkl"))

	rsyncPort := testenv.FreePort(t)
	rconf := filepath.Join(s.work, "rsyncd.conf")
	conf := fmt.Sprintf("uid = root\ngid = root\nuse chroot = no\npid file = %s/rsyncd.pid\n", s.work)
	for _, n := range s.Nodes {
		conf += fmt.Sprintf("[object_%s]\npath = %s\nread only = false\n", n.Device, n.Devices)
	}
	if err := os.WriteFile(rconf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.StartProc(t, testenv.NewLog(t, "rsyncd"), "rsync", "--daemon", "--no-detach", "--address=127.0.0.1", "--port="+strconv.Itoa(rsyncPort), "--config="+rconf)
	n1conf, err := os.ReadFile(s.Nodes[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	repConf := filepath.Join(s.work, "replicator-1.conf")
	rc := strings.Replace(string(n1conf), "[object-updater]",
		fmt.Sprintf("[object-replicator]\nrsync_module = rsync://127.0.0.1:%d/object_{device}\nsync_method = rsync\n[object-updater]", rsyncPort), 1)
	if err := os.WriteFile(repConf, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("swift-object-replicator", repConf, "--once", "-v").CombinedOutput()
		if err != nil {
			t.Fatalf("replicator: %v\n%s", err, testenv.Tail(string(out), 3000))
		}
		if _, err := os.Stat(victim); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicator did not restore %s\n%s", victim, testenv.Tail(string(out), 3000))
		}
		time.Sleep(time.Second)
	}
	// node 2 alone serves it, decrypted and whole
	rel := strings.TrimPrefix(victim, n2.Devices+"/"+n2.Device+"/objects/")
	part := strings.SplitN(rel, "/", 2)[0]
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/%s/%s/AUTH_%s/%s/large.bin", n2.Port, n2.Device, part, s.Project, cont), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("restored replica: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// updaterDelivers writes an object straight to node 1 while its container
// server "is down" (a closed port), then runs Swift's Python updater, which
// must deliver the async_pending to the real container server.
func (s *stack) updaterDelivers(t *testing.T, cont string) {
	n1 := s.Nodes[0]
	body := "async pending body"
	ts := fmt.Sprintf("%d.00000", time.Now().Unix()+5)
	req, _ := http.NewRequest("PUT", fmt.Sprintf("http://127.0.0.1:%d/%s/0/AUTH_%s/%s/async.txt", n1.Port, n1.Device, s.Project, cont), strings.NewReader(body))
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Container-Host", "127.0.0.1:1")
	req.Header.Set("X-Container-Device", "d1")
	req.Header.Set("X-Container-Partition", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("direct PUT: %d", resp.StatusCode)
	}
	pending, _ := filepath.Glob(filepath.Join(n1.Devices, n1.Device, "async_pending", "*", "*"))
	if len(pending) == 0 {
		t.Fatal("no async_pending written")
	}
	out, err := exec.Command("swift-object-updater", n1.Config, "--once", "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("updater: %v\n%s", err, testenv.Tail(string(out), 3000))
	}
	if left, _ := filepath.Glob(filepath.Join(n1.Devices, n1.Device, "async_pending", "*", "*")); len(left) > 0 {
		t.Fatalf("async_pending left: %v\n%s", left, testenv.Tail(string(out), 3000))
	}
	_, listing := s.http("GET", "/"+cont+"?format=json&prefix=async", nil)
	want := fmt.Sprintf(`"bytes": %d`, len(body))
	var entries []struct{ Name, Hash string }
	_ = json.Unmarshal(listing, &entries)
	if !strings.Contains(string(listing), `"name": "async.txt"`) || !strings.Contains(string(listing), want) ||
		len(entries) != 1 || s.openHash(cont, entries[0].Name, "etag", entries[0].Hash) != md5sum([]byte(body)) {
		t.Fatalf("listing after updater: %s", listing)
	}
	s.assertSealedListing(listing, md5sum([]byte(body)))
}

// rotateAndDestroy rotates the demo project's key: objects written before
// still read, new ones use the new key; destroying the old key makes its
// objects answer an error (never data) and leaves the others readable.
func (s *stack) rotateAndDestroy(t *testing.T, cont string, small []byte) {
	code, active := s.KeyService(t, s.ObjectToken, "GET", "/v1/project-keys/active?project_id="+s.Project)
	if code != 200 {
		t.Fatalf("active key: %d %v", code, active)
	}
	oldID, _ := active["key_id"].(string)
	code, rotated := s.KeyService(t, s.KeyAdminToken, "POST", "/v1/project-keys/rotate?project_id="+s.Project)
	if code/100 != 2 || rotated["key_id"] == oldID {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	time.Sleep(1500 * time.Millisecond) // active_key_cache_ttl
	if resp, b := s.http("GET", "/"+cont+"/copy.txt", nil); resp.StatusCode != 200 || !bytes.Equal(b, small) {
		t.Fatalf("old object after rotation: %d", resp.StatusCode)
	}
	newBody := []byte("written after rotation")
	req, _ := http.NewRequest("PUT", s.Storage+"/"+cont+"/after.txt", bytes.NewReader(newBody))
	req.Header.Set("X-Auth-Token", s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT after rotation: %d", resp.StatusCode)
	}
	code, body := s.KeyService(t, s.KeyAdminToken, "DELETE", "/v1/project-keys/"+oldID+"?project_id="+s.Project)
	if code/100 != 2 {
		t.Fatalf("destroying the old key: %d %v", code, body)
	}
	time.Sleep(1500 * time.Millisecond) // key_cache_ttl
	resp2, b := s.http("GET", "/"+cont+"/copy.txt", nil)
	if resp2.StatusCode == 200 || bytes.Contains(b, small) {
		t.Fatalf("object of a destroyed key answered %d with %q", resp2.StatusCode, b)
	}
	t.Logf("GET of an object whose key was destroyed: %d %s", resp2.StatusCode, bytes.TrimSpace(b))
	if resp2.StatusCode != http.StatusGone {
		t.Errorf("want 410 Gone through the proxy, got %d", resp2.StatusCode)
	}
	if resp, b := s.http("GET", "/"+cont+"/after.txt", nil); resp.StatusCode != 200 || !bytes.Equal(b, newBody) {
		t.Fatalf("new-key object after destroying the old key: %d", resp.StatusCode)
	}
	// HEAD authenticates the length it answers with the object's key, so
	// it fails closed as GET does; the container listing still lists it.
	if resp, _ := s.http("HEAD", "/"+cont+"/copy.txt", nil); resp.StatusCode != http.StatusGone {
		t.Fatalf("HEAD of a destroyed-key object: %d, want 410", resp.StatusCode)
	}
}
