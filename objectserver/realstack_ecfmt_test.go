package objectserver_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// runAuditorOnce runs one pass of Swift's Python object-auditor.
const runAuditorOnce = `
from swift.common.daemon import run_daemon
from swift.obj.auditor import ObjectAuditor
run_daemon(ObjectAuditor, sys.argv[1], once=True, verbose=True)
`

// audit runs Swift's Python object-auditor once over node i's devices
// (its configuration with an [object-auditor] section) and returns its
// output.
func (s *ecStack) audit(t *testing.T, i int) string {
	t.Helper()
	return s.auditDevices(t, i, "")
}

// auditDevices runs the auditor as audit does, over devices instead of
// the node's own when devices is set (a scratch copy).
func (s *ecStack) auditDevices(t *testing.T, i int, devices string) string {
	t.Helper()
	conf, err := os.ReadFile(s.Nodes[i].Config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.work, fmt.Sprintf("auditor-%d.conf", i))
	if devices != "" {
		conf = regexp.MustCompile(`(?m)^devices\s*=.*$`).ReplaceAll(conf, []byte("devices = "+devices))
		path = filepath.Join(s.work, fmt.Sprintf("auditor-%d-scratch.conf", i))
	}
	extra := fmt.Sprintf("\n[object-auditor]\nrecon_cache_path = %s\nfiles_per_second = 1000\nbytes_per_second = 100000000\nzero_byte_files_per_second = 1000\n", s.work)
	if err := os.WriteFile(path, append(conf, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var out string
	go func() {
		defer close(done)
		out, err = s.Python(t, runAuditorOnce, path)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("object-auditor once did not end")
	}
	if err != nil {
		t.Fatalf("object-auditor on %s: %v\n%s", s.Nodes[i].Device, err, out)
	}
	return out
}

// quarantined lists what is in the nodes' quarantine folders.
func (s *ecStack) quarantined() []string {
	var out []string
	for _, n := range s.Nodes {
		q, _ := filepath.Glob(filepath.Join(n.Devices, n.Device, "quarantined", "objects*", "*"))
		out = append(out, q...)
	}
	return out
}

// ringNodes is the object's primary nodes in the ring's order (index k
// holds fragment index k).
func (s *ecStack) ringNodes(t *testing.T, cont, name string) []int {
	t.Helper()
	out, err := s.Python(t, ringOrder, filepath.Join(s.RingDir, "object.ring.gz"), "AUTH_"+s.Project, cont, name)
	if err != nil {
		t.Fatalf("ring: %v %s", err, out)
	}
	byPort := map[string]int{}
	for i, n := range s.Nodes {
		byPort[fmt.Sprint(n.Port)] = i
	}
	var nodes []int
	for _, port := range strings.Fields(out) {
		nodes = append(nodes, byPort[port])
	}
	return nodes
}

// TestRealStackECPythonDaemons runs Swift's own Python daemons over an
// Arca-only EC ring (six arca-object-servers, 4+2): the object-auditor
// quarantines nothing Arca stored and quarantines an archive whose byte
// was flipped on disk; the object-reconstructor rebuilds one and two
// lost archives from Arca nodes (ciphertext on disk again, the fragment
// byte for byte, user metadata and ETag kept) and reverts an archive
// from the wrong node to its primary (stored as sent, not re-encrypted);
// GETs through the proxy are byte-exact throughout.
func TestRealStackECPythonDaemons(t *testing.T) {
	s := newECStack(t)
	sizes := map[string]int{"empty": 0, "one": 1, "seventeen": 17, "seg-1": 8191, "seg": 8192, "seg+1": 8193, "five-segs": 40000}
	cont, objects := s.putColoured(t, "arca-ecfmt-", sizes)
	for name := range objects {
		s.checkLayout(t, cont, name)
	}
	readAll := func(when string) {
		t.Helper()
		for name, data := range objects {
			resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Etag") != md5sum(data) || resp.Header.Get("X-Object-Meta-Colour") != "blue "+name {
				t.Fatalf("GET %s %s: %s, %d bytes (want %d), ETag %s, colour %q", name, when, resp.Status, len(got), len(data), resp.Header.Get("Etag"), resp.Header.Get("X-Object-Meta-Colour"))
			}
		}
	}
	readAll("after PUT")

	start := time.Now()
	for i := range s.Nodes {
		out := s.audit(t, i)
		if strings.Contains(out, "Quarantined") || strings.Contains(out, "Invalid EC metadata") {
			t.Fatalf("auditor on %s:\n%s", s.Nodes[i].Device, testenv.Tail(out, 30))
		}
	}
	if q := s.quarantined(); len(q) > 0 {
		t.Fatalf("the Python auditor quarantined Arca's archives: %v", q)
	}
	t.Logf("object-auditor once on 6 Arca nodes: nothing quarantined (%s)", time.Since(start).Round(time.Millisecond))

	s.rebuild(t, cont, "five-segs", objects, readAll)
	s.revert(t, cont, "seg+1", readAll)
	s.flipAndAudit(t, cont, objects, readAll)
}

// putColoured makes a container, prefix and a random tag, and PUTs in it
// through the proxy an object of random bytes of each size, with
// X-Object-Meta-Colour "blue <name>"; objects is their bytes by name.
func (s *ecStack) putColoured(t *testing.T, prefix string, sizes map[string]int) (cont string, objects map[string][]byte) {
	t.Helper()
	cont, _ = s.newContainer(t, prefix)
	objects = map[string][]byte{}
	for name, n := range sizes {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		objects[name] = data
		if resp, _ := s.do("PUT", "/"+cont+"/"+name, data, map[string]string{"X-Object-Meta-Colour": "blue " + name}); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s", name, resp.Status)
		}
	}
	return cont, objects
}

// moveArchive moves the files of an archive (its .data first) from its
// owner's folder to holderDir, another node's folder of the same object,
// and drops both folders' cached suffix hashes, as a write into the
// holder's folder and a loss on the owner's would. It returns where the
// .data now is.
func moveArchive(t *testing.T, holderDir string, files ...string) string {
	t.Helper()
	for _, p := range files {
		if err := os.Rename(p, filepath.Join(holderDir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(holderDir, filepath.Base(files[0]))
	dropHashes(t, files[0])
	dropHashes(t, dst)
	return dst
}

// checkLayout checks that each archive of an object is stored in the EC
// layout: its file as long as the fragment archive its node answers, not
// equal to it, with the same fragment headers' sizes.
func (s *ecStack) checkLayout(t *testing.T, cont, name string) {
	t.Helper()
	for node, paths := range s.fragFiles(cont, name) {
		p := dataFileOf(paths)
		stored, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		resp, frag := s.nodeGet(node, "GET", cont, name, nil)
		if resp.StatusCode != http.StatusOK || len(stored) != len(frag) {
			t.Fatalf("%s on %s: %s, stored %d bytes, fragment archive %d", name, s.Nodes[node].Device, resp.Status, len(stored), len(frag))
		}
		if len(frag) > 80 && bytes.Equal(stored[80:], frag[80:]) {
			t.Fatalf("%s on %s: payload stored in clear", name, s.Nodes[node].Device)
		}
		if len(frag) >= 80 && !bytes.Equal(stored[:21], frag[:21]) {
			t.Fatalf("%s on %s: fragment header fields changed", name, s.Nodes[node].Device)
		}
		if md := readXattrMeta(t, p); md["X-Object-Sysmeta-Arca-Layout"] != "ec1" {
			t.Fatalf("%s on %s: layout %q", name, s.Nodes[node].Device, md["X-Object-Sysmeta-Arca-Layout"])
		}
	}
}

// rebuild deletes one, then two archives of an object and runs the
// Python reconstructor on the lost nodes' ring neighbours until they are
// back.
func (s *ecStack) rebuild(t *testing.T, cont, name string, objects map[string][]byte, readAll func(string)) {
	ring := s.ringNodes(t, cont, name)
	frags := map[int][]byte{}
	for _, node := range ring {
		resp, frag := s.nodeGet(node, "GET", cont, name, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fragment on %s: %s", s.Nodes[node].Device, resp.Status)
		}
		frags[node] = frag
	}
	for _, lost := range [][]int{{1}, {2, 4}} {
		for _, k := range lost {
			node := ring[k]
			data := dataFileOf(s.fragFiles(cont, name)[node])
			if err := os.Remove(data); err != nil {
				t.Fatal(err)
			}
			// as a lost disk loses them too: the partition's cached suffix
			// hashes (else REPLICATE answers the hash of the archive that
			// was there, and the reconstructor sees nothing to rebuild)
			dropHashes(t, data)
		}
		readAll(fmt.Sprintf("with %d archives of %s lost", len(lost), name))
		start := time.Now()
		for _, k := range lost {
			node := ring[k]
			var logs []string
			for _, partner := range []int{ring[(k+1)%len(ring)], ring[(k+len(ring)-1)%len(ring)]} {
				if resp, _ := s.nodeGet(node, "HEAD", cont, name, nil); resp.StatusCode == http.StatusOK {
					break
				}
				logs = append(logs, s.Nodes[partner].Device+":\n"+testenv.Tail(s.Reconstruct(t, partner), 30))
			}
			resp, got := s.nodeGet(node, "GET", cont, name, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, frags[node]) {
				t.Fatalf("archive %d of %s on %s not rebuilt: %s, %d bytes; reconstructor on %s", k, name, s.Nodes[node].Device, resp.Status, len(got), strings.Join(logs, "\n"))
			}
		}
		t.Logf("%d archive(s) of %s rebuilt by the Python reconstructor on Arca nodes (%s)", len(lost), name, time.Since(start).Round(time.Millisecond))
		s.checkLayout(t, cont, name)
		readAll("after rebuild")
	}
}

// revert moves an archive from its primary to another node of the ring
// (a fragment on the wrong node, as after a rebalance or a handoff
// write) and runs the Python reconstructor there: its revert job sends
// the archive as stored to the primary over SSYNC, which keeps it byte
// for byte (not encrypted again) and the wrong node drops its copy.
func (s *ecStack) revert(t *testing.T, cont, name string, readAll func(string)) {
	ring := s.ringNodes(t, cont, name)
	// Swift 2.30's sync job of index 0 goes to indexes 5, 1 and 3 (its
	// neighbours and the one across the ring), which would rebuild a
	// missing index 3 rather than wait for the revert: the owner is 2.
	owner, holder := ring[2], ring[0]
	src := dataFileOf(s.fragFiles(cont, name)[owner])
	stored, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// the holder's own archive of the object is older than nothing: it
	// must go first, a node keeps one archive of an object per index
	dst := moveArchive(t, filepath.Dir(dataFileOf(s.fragFiles(cont, name)[holder])), src)
	readAll("with an archive on the wrong node")
	log := s.Reconstruct(t, holder)
	back := dataFileOf(s.fragFiles(cont, name)[owner])
	if back == "" {
		t.Fatalf("archive not reverted to %s; reconstructor:\n%s", s.Nodes[owner].Device, testenv.Tail(log, 40))
	}
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stored) {
		t.Fatalf("reverted archive on %s is not the archive as stored (%d bytes, want %d)", s.Nodes[owner].Device, len(got), len(stored))
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatalf("the wrong node still holds the reverted archive %s", dst)
	}
	t.Logf("archive %s reverted from %s to %s as stored", filepath.Base(src), s.Nodes[holder].Device, s.Nodes[owner].Device)
	readAll("after revert")
}

// flipAndAudit flips a payload byte of one archive and a header byte of
// another, runs the Python auditor on their nodes, and checks that both
// are quarantined and the objects still read.
func (s *ecStack) flipAndAudit(t *testing.T, cont string, objects map[string][]byte, readAll func(string)) {
	var quarantine []string
	for _, c := range []struct {
		name string
		k    int
		at   int
	}{{"seg", 2, 100}, {"seg-1", 5, 4}} {
		node := s.ringNodes(t, cont, c.name)[c.k]
		p := dataFileOf(s.fragFiles(cont, c.name)[node])
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[c.at] ^= 0x01
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		quarantine = append(quarantine, filepath.Base(filepath.Dir(p)))
		out := s.audit(t, node)
		if !strings.Contains(out, "Quarantined") {
			t.Logf("auditor on %s:\n%s", s.Nodes[node].Device, testenv.Tail(out, 20))
		}
	}
	q := strings.Join(s.quarantined(), "\n")
	for _, h := range quarantine {
		if !strings.Contains(q, h) {
			t.Fatalf("flipped archive %s not quarantined; quarantine: %s", h, q)
		}
	}
	t.Logf("the Python auditor quarantined both flipped archives (payload byte, header byte)")
	readAll("after the auditor quarantined two archives")
}

// dropHashes removes the cached suffix hashes of the partition holding
// the file at path (Swift's diskfile invalidates them on every write; a
// change made behind the servers' backs must do it by hand).
func dropHashes(t *testing.T, path string) {
	t.Helper()
	part := filepath.Dir(filepath.Dir(filepath.Dir(path)))
	for _, f := range []string{"hashes.pkl", "hashes.invalid"} {
		if err := os.Remove(filepath.Join(part, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}
