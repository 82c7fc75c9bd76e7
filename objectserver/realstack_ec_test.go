package objectserver_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/ringhash"
)

// ecStack is an ObjectStack whose policy 0 is erasure-coded 4+2 over six
// arca-object-servers, behind the real Swift proxy (pyeclib's
// liberasurecode_rs_vand), EC segments of 8 KiB so that small objects
// span several.
type ecStack struct {
	*testenv.ObjectStack
	t         testing.TB
	work      string
	hasher    ringhash.Hasher
	partPower uint
}

// mixedRingSeed fixes the ring of a stack with Python nodes. Every
// partition of such a ring has the same order of the six devices, and in
// about one ring out of ten the Python nodes 0, 1 and 2 alternate with
// Arca's: no Python node then has a Python partner, whose reconstructor
// rebuildOntoPython runs, and TestRealStackECMixed failed that often.
// Seed 1 orders the devices 5 4 3 1 2 0 with Debian 12's Swift: nodes 1
// and 2 are partners, and every Arca node has a Python neighbour.
const mixedRingSeed = 1

func newECStack(t testing.TB, pythonNodes ...int) *ecStack {
	t.Helper()
	return newECStackWith(t, false, pythonNodes...)
}

// newECStackWith is newECStack, with Swift's own encryption in the proxy
// when swiftCrypto is set (ClusterOptions.SwiftEncryption).
func newECStackWith(t testing.TB, swiftCrypto bool, pythonNodes ...int) *ecStack {
	t.Helper()
	testenv.RequireTools(t, "swift-proxy-server", "/usr/bin/python3")
	if _, err := os.Stat("/usr/lib/python3/dist-packages/pyeclib"); err != nil {
		testenv.StackMissing(t, "python3-pyeclib is not installed (tools/stack.sh install)")
	}
	s := &ecStack{t: t, work: t.TempDir(), partPower: 2}
	seed := 0 // Swift's random placement
	if len(pythonNodes) > 0 {
		seed = mixedRingSeed
	}
	s.ObjectStack = testenv.StartObjectStack(t, testenv.ClusterOptions{Work: s.work, PartPower: int(s.partPower), RingSeed: seed,
		EC:              &testenv.ECPolicy{Data: 4, Parity: 2, SegmentSize: ecSegmentSize, PythonNodes: pythonNodes},
		SwiftEncryption: swiftCrypto,
		Binaries:        ecBinaries,
		Object: testenv.ObjectServerConfig{
			DefaultOptions: fmt.Sprintf("user = root\nlog_address = %s/no-syslog\n", s.work),
			Sections:       "[object-reconstructor]\ninterval = 1\nhandoffs_first = false\n",
		}})
	conf, err := ringhash.Load(s.SwiftConf)
	if err != nil {
		t.Fatal(err)
	}
	s.hasher = conf.Hasher
	return s
}

// do is one request through the proxy.
// newContainer makes, through the proxy, a container named prefix and a
// random tag, and returns its name and the tag (12 hex digits).
func (s *ecStack) newContainer(t testing.TB, prefix string) (cont, tag string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tag = hex.EncodeToString(b)
	cont = prefix + tag
	if resp, _ := s.do("PUT", "/"+cont, nil, nil); resp.StatusCode/100 != 2 {
		t.Fatalf("container PUT: %s", resp.Status)
	}
	return cont, tag
}

func (s *ecStack) do(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	return doHTTP(s.t, method, s.Storage+path, body, s.Token, hdr)
}

func doHTTP(t testing.TB, method, url string, body []byte, token string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
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
		t.Fatal(err)
	}
	return resp, b
}

// fragFiles are the fragment archives (and other files) of an object on
// every node: node index -> file paths.
func (s *ecStack) fragFiles(cont, obj string) map[int][]string {
	s.t.Helper()
	acct := "AUTH_" + s.Project
	hash := s.hasher.HashPath(acct, cont, obj)
	part := s.hasher.Partition(acct, cont, obj, s.partPower)
	out := map[int][]string{}
	for i, n := range s.Nodes {
		dir := filepath.Join(n.Devices, n.Device, "objects", fmt.Sprint(part), hash[len(hash)-3:], hash)
		names, _ := os.ReadDir(dir)
		for _, e := range names {
			out[i] = append(out[i], filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// nodeGet asks node i directly for the object, as the proxy does.
func (s *ecStack) nodeGet(i int, method, cont, obj string, hdr map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	acct := "AUTH_" + s.Project
	part := s.hasher.Partition(acct, cont, obj, s.partPower)
	n := s.Nodes[i]
	return doHTTP(s.t, method, fmt.Sprintf("%s/%s/%d/%s/%s/%s", n.URL, n.Device, part, acct, cont, obj), nil, "", hdr)
}

// ecSegmentSize is the EC segment size of the stacks newECStack starts
// (8 KiB: small objects span several; the benchmark uses Swift's 1 MiB).
var ecSegmentSize = 8192

// ecBinaries is the folder of the arca-object-servers newECStack starts
// (empty: this checkout's; BenchmarkRealStackECPutAB sets another).
var ecBinaries string

var durableName = regexp.MustCompile(`^\d{10}\.\d{5}#[0-5]#d\.data$`)

// TestRealStackEC stores objects of 0 bytes to several EC segments in an
// erasure-coded policy on six arca-object-servers behind the real Swift
// proxy, reads them whole and by ranges across fragment and segment
// boundaries, posts and deletes them, and checks that every fragment
// archive on disk is ciphertext; then what the disk can be made to say:
// a fragment archive that is not durable is not served as one, and one
// moved to another object's place is refused.
func TestRealStackEC(t *testing.T) {
	s := newECStack(t)
	cont, tag := s.newContainer(t, "arca-ec-")
	marker := "ARCA-EC-PLAINTEXT-" + tag
	line := []byte(marker + " erasure-coded line\n")
	sizes := map[string]int{"empty": 0, "one": 1, "small": 100, "seg-1": 8191, "seg": 8192, "seg+1": 8193, "five-segs": 40000, "many": 300001}
	objects := map[string][]byte{}
	for name, n := range sizes {
		data := bytes.Repeat(line, n/len(line)+1)[:n]
		objects[name] = data
		resp, body := s.do("PUT", "/"+cont+"/"+name, data, map[string]string{"Content-Type": "application/x-arca"})
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Etag") != md5sum(data) {
			t.Fatalf("PUT %s (%d bytes): %s %q, ETag %s", name, n, resp.Status, body, resp.Header.Get("Etag"))
		}
	}
	for name, data := range objects {
		resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Etag") != md5sum(data) {
			t.Fatalf("GET %s: %s, %d bytes (want %d), ETag %s", name, resp.Status, len(got), len(data), resp.Header.Get("Etag"))
		}
		resp, _ = s.do("HEAD", "/"+cont+"/"+name, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != fmt.Sprint(len(data)) || resp.Header.Get("Etag") != md5sum(data) {
			t.Fatalf("HEAD %s: %s, length %s, ETag %s", name, resp.Status, resp.Header.Get("Content-Length"), resp.Header.Get("Etag"))
		}
		s.checkArchives(cont, name, marker, len(data))
	}
	s.overwrite(t, cont, marker)
	s.conditionals(t, cont, objects["seg+1"])
	s.ranges(t, cont, objects["many"])
	s.suffixHashesAsSwift(t)
	s.postAndDelete(t, cont, objects)
	s.suffixHashesAsSwift(t)
	s.nonDurableNotServed(t, cont, objects["five-segs"])
	s.movedArchiveRefused(t, cont, objects["five-segs"])
}

// checkArchives checks that the object has six durable fragment archives,
// one per node, none of them holding plaintext.
func (s *ecStack) checkArchives(cont, name, marker string, size int) {
	s.t.Helper()
	files := s.fragFiles(cont, name)
	count := 0
	for node, paths := range files {
		for _, p := range paths {
			if !strings.HasSuffix(p, ".data") {
				continue
			}
			count++
			if !durableName.MatchString(filepath.Base(p)) {
				s.t.Errorf("%s on node %d: %s is not a durable fragment archive name", name, node, filepath.Base(p))
			}
			b, err := os.ReadFile(p)
			if err != nil {
				s.t.Fatal(err)
			}
			if size > 0 && (bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("erasure-coded line"))) {
				s.t.Errorf("%s: fragment archive %s holds plaintext", name, p)
			}
			if size > 0 && !bytes.HasPrefix(b, []byte("ARCA")) && len(b) > 0 && bytes.Contains(b, []byte(marker[:8])) {
				s.t.Errorf("%s: %s does not look encrypted", name, p)
			}
		}
	}
	if count != 6 {
		s.t.Errorf("%s: %d fragment archives on disk, want 6: %v", name, count, files)
	}
}

// ranges reads ranges across EC segment (8 KiB of object, 2 KiB of each
// fragment) and objcrypt segment boundaries.
func (s *ecStack) ranges(t *testing.T, cont string, data []byte) {
	n := len(data)
	for _, r := range []struct {
		spec       string
		start, end int // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=8000-8500", 8000, 8500},
		{"bytes=2047-2049", 2047, 2049},
		{"bytes=65530-131080", 65530, 131080},
		{"bytes=-100", n - 100, n - 1},
		{"bytes=299990-", 299990, n - 1},
		{"bytes=100000-299999", 100000, 299999},
	} {
		resp, got := s.do("GET", "/"+cont+"/many", nil, map[string]string{"Range": r.spec})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[r.start:r.end+1]) {
			t.Fatalf("Range %s: %s, %d bytes, want %d", r.spec, resp.Status, len(got), r.end-r.start+1)
		}
	}
	resp, body := s.do("GET", "/"+cont+"/many", nil, map[string]string{"Range": "bytes=10-19,8190-8199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Contains(body, data[10:20]) || !bytes.Contains(body, data[8190:8200]) {
		t.Fatalf("two ranges: %s %q", resp.Status, body)
	}
}

// postAndDelete sets metadata on every object, then deletes them.
func (s *ecStack) postAndDelete(t *testing.T, cont string, objects map[string][]byte) {
	for name := range objects {
		if resp, _ := s.do("POST", "/"+cont+"/"+name, nil, map[string]string{"X-Object-Meta-Colour": "blue " + name}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %s", name, resp.Status)
		}
		resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Object-Meta-Colour") != "blue "+name || !bytes.Equal(got, objects[name]) {
			t.Fatalf("GET %s after POST: %s, meta %q", name, resp.Status, resp.Header.Get("X-Object-Meta-Colour"))
		}
	}
	for _, name := range []string{"empty", "seg", "many"} {
		if resp, _ := s.do("DELETE", "/"+cont+"/"+name, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s: %s", name, resp.Status)
		}
		if resp, _ := s.do("GET", "/"+cont+"/"+name, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s after DELETE: %s", name, resp.Status)
		}
		tombstones := 0
		for _, paths := range s.fragFiles(cont, name) {
			for _, p := range paths {
				if strings.HasSuffix(p, ".data") || strings.HasSuffix(p, ".meta") {
					t.Errorf("%s: %s left after DELETE", name, p)
				}
				if strings.HasSuffix(p, ".ts") {
					tombstones++
				}
			}
		}
		if tombstones != 6 {
			t.Errorf("%s: %d tombstones, want 6", name, tombstones)
		}
	}
}

// nonDurableNotServed makes one node's fragment archive non-durable (as
// if the commit never came): that node answers 404 to a GET without
// fragment preferences, serves it to one with preferences without a
// durable timestamp, and the proxy still reads the object from the
// others.
func (s *ecStack) nonDurableNotServed(t *testing.T, cont string, data []byte) {
	name := "five-segs"
	node, durable := -1, ""
	for i, paths := range s.fragFiles(cont, name) {
		for _, p := range paths {
			if durableName.MatchString(filepath.Base(p)) {
				node, durable = i, p
			}
		}
	}
	if node < 0 {
		t.Fatal("no durable fragment archive found")
	}
	nonDurable := strings.TrimSuffix(durable, "#d.data") + ".data"
	if err := os.Rename(durable, nonDurable); err != nil {
		t.Fatal(err)
	}
	resp, _ := s.nodeGet(node, "GET", cont, name, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("non-durable fragment without preferences: %s, want 404", resp.Status)
	}
	resp, body := s.nodeGet(node, "GET", cont, name, map[string]string{"X-Backend-Fragment-Preferences": "[]"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend-Durable-Timestamp") != "" || resp.Header.Get("X-Backend-Fragments") == "" {
		t.Fatalf("non-durable fragment with preferences: %s, durable %q, fragments %q", resp.Status, resp.Header.Get("X-Backend-Durable-Timestamp"), resp.Header.Get("X-Backend-Fragments"))
	}
	if bytes.Contains(body, data[:40]) && len(body) == len(data) {
		t.Fatal("a node answered the whole object, not its fragment")
	}
	if resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET with one non-durable fragment: %s, %d bytes", resp.Status, len(got))
	}
	if err := os.Rename(nonDurable, durable); err != nil {
		t.Fatal(err)
	}
	resp, _ = s.nodeGet(node, "HEAD", cont, name, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend-Durable-Timestamp") == "" || resp.Header.Get("X-Object-Sysmeta-Ec-Frag-Index") == "" {
		t.Fatalf("durable fragment HEAD: %s, durable %q, frag index %q", resp.Status, resp.Header.Get("X-Backend-Durable-Timestamp"), resp.Header.Get("X-Object-Sysmeta-Ec-Frag-Index"))
	}
}

// movedArchiveRefused copies fragment archives of one object, data and
// metadata, over another object's on two nodes: as they are (their
// metadata names the other object: quarantined, 404), and with the
// metadata's name and fragment index rewritten to the target's (a disk
// attacker's best forgery: objcrypt binds the stream to the other path,
// so the node refuses it). The proxy still reads the object from the
// four others.
func (s *ecStack) movedArchiveRefused(t *testing.T, cont string, want []byte) {
	from, to := s.fragFiles(cont, "small"), s.fragFiles(cont, "five-segs")
	done := 0
	for node := range s.Nodes {
		src, dst := dataFileOf(from[node]), dataFileOf(to[node])
		if src == "" || dst == "" {
			continue
		}
		md, dstMD := readXattrMeta(t, src), readXattrMeta(t, dst)
		forge := done == 1
		if forge {
			md["name"] = dstMD["name"]
			md["X-Object-Sysmeta-Ec-Frag-Index"] = dstMD["X-Object-Sysmeta-Ec-Frag-Index"]
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		writeXattrMeta(t, dst, md)
		resp, body := s.nodeGet(node, "GET", cont, "five-segs", nil)
		if resp.StatusCode < 400 {
			t.Fatalf("moved fragment archive (forged name: %v) served: %s %d bytes", forge, resp.Status, len(body))
		}
		if _, err := os.Stat(dst); !forge && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("moved fragment archive naming another object not quarantined: %v", err)
		}
		if done++; done == 2 {
			break
		}
	}
	if done < 2 {
		t.Fatal("fewer than two nodes hold fragments of both objects")
	}
	if resp, got := s.do("GET", "/"+cont+"/five-segs", nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("GET with two fragment archives refused: %s, %d bytes", resp.Status, len(got))
	}
}

// dataFileOf is the .data among an object's files, "" when none.
func dataFileOf(paths []string) string { return fileWithExt(paths, ".data") }

// metaFileOf is the .meta among an object's files, "" when none.
func metaFileOf(paths []string) string { return fileWithExt(paths, ".meta") }

// fileWithExt is the first of paths ending in ext, "" when none.
func fileWithExt(paths []string, ext string) string {
	for _, p := range paths {
		if strings.HasSuffix(p, ext) {
			return p
		}
	}
	return ""
}

// conditionals: the proxy's conditional EC GETs compare the whole
// object's ETag, which Arca keeps sealed on disk (X-Backend-Etag-Is-At).
func (s *ecStack) conditionals(t *testing.T, cont string, data []byte) {
	for _, c := range []struct {
		hdr, val string
		want     int
	}{
		{"If-Match", md5sum(data), http.StatusOK},
		{"If-Match", md5sum([]byte("other")), http.StatusPreconditionFailed},
		{"If-None-Match", md5sum(data), http.StatusNotModified},
		{"If-None-Match", md5sum([]byte("other")), http.StatusOK},
	} {
		if resp, _ := s.do("GET", "/"+cont+"/seg+1", nil, map[string]string{c.hdr: c.val}); resp.StatusCode != c.want {
			t.Fatalf("%s: %s, want %d", c.hdr, resp.Status, c.want)
		}
	}
	for _, paths := range s.fragFiles(cont, "seg+1") {
		if p := dataFileOf(paths); p != "" {
			for k, v := range readXattrMeta(t, p) {
				if strings.EqualFold(k, "X-Object-Sysmeta-Ec-Etag") || strings.Contains(v, md5sum(data)) {
					t.Fatalf("whole object's MD5 in clear in %s: %s", p, k)
				}
			}
		}
	}
}

// compareHashes asks a node for a partition's suffix hashes (REPLICATE,
// unpickled by Python as the reconstructor does) and computes them with
// Swift's own ECDiskFileManager on the same directory; it prints what
// differs, or "same N".
const compareHashes = `
import sys, os, pickle, http.client
from swift.common.storage_policy import POLICIES
from swift.obj.diskfile import ECDiskFileManager
from swift.common.utils import get_logger
port, dev, devices, part = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection('127.0.0.1', port)
conn.request('REPLICATE', '/%s/%s' % (dev, part), headers={'X-Backend-Storage-Policy-Index': '0'})
resp = conn.getresponse()
arca = pickle.loads(resp.read())
mgr = ECDiskFileManager({'devices': devices, 'mount_check': 'false'}, get_logger({}))
pdir = os.path.join(devices, dev, 'objects', part)
swift = {}
for suffix in sorted(os.listdir(pdir)):
    if len(suffix) == 3:
        swift[suffix] = mgr._hash_suffix(os.path.join(pdir, suffix), POLICIES[0])
if arca != swift:
    print('arca', arca)
    print('swift', swift)
else:
    print('same', len(swift), sum(len(v) for v in swift.values()))
`

// suffixHashesAsSwift checks every partition of every node: Arca's EC
// suffix hashes are Swift's, fragment indexes and None key included.
func (s *ecStack) suffixHashesAsSwift(t *testing.T) {
	checked := 0
	for _, n := range s.Nodes {
		parts, _ := os.ReadDir(filepath.Join(n.Devices, n.Device, "objects"))
		for _, p := range parts {
			out, err := s.Python(t, compareHashes, fmt.Sprint(n.Port), n.Device, n.Devices, p.Name())
			if err != nil || !strings.HasPrefix(out, "same ") {
				t.Fatalf("%s partition %s: suffix hashes differ from Swift's (%v):\n%s", n.Device, p.Name(), err, out)
			}
			t.Logf("%s partition %s: %s", n.Device, p.Name(), strings.TrimSpace(out))
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no partition to compare")
	}
}

// TestRealStackECMixed runs one EC policy over three arca-object-servers
// and three of Swift's Python object servers: the proxy writes and reads
// across both, ranges included; Arca's archives are ciphertext, and
// reads still work with two archives gone from either kind of node.
func TestRealStackECMixed(t *testing.T) {
	s := newECStack(t, 0, 1, 2)
	cont, tag := s.newContainer(t, "arca-ecmix-")
	marker := "ARCA-ECMIX-" + tag
	data := bytes.Repeat([]byte(marker+" mixed ring line\n"), 100000/40)
	for _, name := range []string{"a", "b", "c"} {
		if resp, body := s.do("PUT", "/"+cont+"/"+name, data, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s %q", name, resp.Status, body)
		}
	}
	for name, lose := range map[string][]int{"a": nil, "b": {0, 1}, "c": {4, 5}} {
		files := s.fragFiles(cont, name)
		for node, paths := range files {
			p := dataFileOf(paths)
			if p == "" {
				t.Fatalf("%s: no archive on node %d", name, node)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Nodes[node].Python && bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s: plaintext in Arca's archive %s", name, p)
			}
		}
		for _, node := range lose {
			if err := os.Remove(dataFileOf(files[node])); err != nil {
				t.Fatal(err)
			}
		}
		resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET %s without archives on nodes %v: %s, %d bytes", name, lose, resp.Status, len(got))
		}
		resp, got = s.do("GET", "/"+cont+"/"+name, nil, map[string]string{"Range": "bytes=8000-20000"})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[8000:20001]) {
			t.Fatalf("Range GET %s: %s", name, resp.Status)
		}
	}
	s.rebuildOntoArca(t, cont, data)
	s.rebuildOntoPython(t, cont, data)
	if resp, _ := s.do("POST", "/"+cont+"/a", nil, map[string]string{"X-Object-Meta-K": "v"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	if resp, _ := s.do("HEAD", "/"+cont+"/a", nil, nil); resp.Header.Get("X-Object-Meta-K") != "v" || resp.Header.Get("Etag") != md5sum(data) {
		t.Fatalf("HEAD after POST: %v", resp.Header)
	}
	if resp, _ := s.do("DELETE", "/"+cont+"/a", nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	if resp, _ := s.do("GET", "/"+cont+"/a", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %s", resp.Status)
	}
}

// overwrite replaces an object: the new archives are served and the old
// ones are gone from every node.
func (s *ecStack) overwrite(t *testing.T, cont, marker string) {
	data := bytes.Repeat([]byte(marker+" second version\n"), 700)
	if resp, _ := s.do("PUT", "/"+cont+"/overwritten", []byte("first version"), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	if resp, _ := s.do("PUT", "/"+cont+"/overwritten", data, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("second PUT: %s", resp.Status)
	}
	if resp, got := s.do("GET", "/"+cont+"/overwritten", nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET after overwrite: %s %d bytes", resp.Status, len(got))
	}
	s.checkArchives(cont, "overwritten", marker, len(data))
}

// ringOrder is the object's primary nodes, as indexes into s.Nodes, in
// the ring's order (the reconstructor's partners are neighbours in it).
const ringOrder = `
import sys
from swift.common.ring import Ring
r = Ring(sys.argv[1])
part, nodes = r.get_nodes(sys.argv[2], sys.argv[3], sys.argv[4])
print(' '.join(str(n['port']) for n in nodes))
`

// primaries is the object's primary nodes in the ring's order, as indexes
// into s.Nodes (the reconstructor's partners are neighbours in it).
func (s *ecStack) primaries(t *testing.T, cont, name string) []int {
	t.Helper()
	out, err := s.Python(t, ringOrder, filepath.Join(s.RingDir, "object.ring.gz"), "AUTH_"+s.Project, cont, name)
	if err != nil {
		t.Fatalf("ring: %v %s", err, out)
	}
	byPort := map[string]int{}
	for i, n := range s.Nodes {
		byPort[fmt.Sprint(n.Port)] = i
	}
	var order []int
	for _, port := range strings.Fields(out) {
		order = append(order, byPort[port])
	}
	return order
}

// partnerOf finds in order a node of kind target (Python or not) with a
// ring neighbour that is a Python node (whose reconstructor may run: the
// Python daemons never run on Arca nodes with Python partners), or -1s.
func (s *ecStack) partnerOf(order []int, targetPython bool) (target, partner int) {
	for k, i := range order {
		if s.Nodes[i].Python != targetPython {
			continue
		}
		for _, d := range []int{1, len(order) - 1} {
			if j := order[(k+d)%len(order)]; s.Nodes[j].Python {
				return i, j
			}
		}
	}
	return -1, -1
}

// rebuildOntoArca removes an Arca node's archive of an object, runs
// Swift's Python reconstructor once on a Python node that is its ring
// partner, and checks that the archive comes back through SSYNC,
// encrypted, durable, the same fragment as before.
func (s *ecStack) rebuildOntoArca(t *testing.T, cont string, data []byte) {
	name := "rebuilt"
	if resp, _ := s.do("PUT", "/"+cont+"/"+name, data, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	order := s.primaries(t, cont, name)
	arca, partner := s.partnerOf(order, false)
	if arca < 0 {
		t.Fatalf("no Arca node with a Python partner in %v", order)
	}
	before, frag := s.nodeGet(arca, "GET", cont, name, nil)
	if before.StatusCode != http.StatusOK {
		t.Fatalf("fragment before: %s", before.Status)
	}
	path := dataFileOf(s.fragFiles(cont, name)[arca])
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	log := s.Reconstruct(t, partner)
	after, got := s.nodeGet(arca, "GET", cont, name, nil)
	if after.StatusCode != http.StatusOK || !bytes.Equal(got, frag) {
		t.Fatalf("archive of %s not rebuilt (%s, %d bytes, want %d); reconstructor:\n%s", s.Nodes[arca].Device, after.Status, len(got), len(frag), testenv.Tail(log, 40))
	}
	rebuilt := dataFileOf(s.fragFiles(cont, name)[arca])
	t.Logf("%s rebuilt by %s's reconstructor: %s", s.Nodes[arca].Device, s.Nodes[partner].Device, filepath.Base(rebuilt))
	if !durableName.MatchString(filepath.Base(rebuilt)) {
		t.Fatalf("rebuilt archive %s is not durable", rebuilt)
	}
	b, err := os.ReadFile(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, data[:30]) || readXattrMeta(t, rebuilt)["X-Object-Sysmeta-Arca-Key-Id"] == "" {
		t.Fatalf("rebuilt archive %s is not Arca's ciphertext", rebuilt)
	}
	if resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET after rebuild: %s", resp.Status)
	}
}

// rebuildOntoPython is the other way: a Python node's archive removed, the
// reconstructor of its Python partner rebuilds it from fragments that
// Arca nodes answer (in plaintext, over the object-server protocol), and
// the Python node holds Swift's own fragment again. The object is named so
// that its ring order puts a Python node beside a Python partner and at
// least two of the other fragments on Arca nodes.
func (s *ecStack) rebuildOntoPython(t *testing.T, cont string, data []byte) {
	var name string
	var order []int
	target, partner := -1, -1
	for i := 0; i < 40 && target < 0; i++ {
		name = fmt.Sprintf("rebuilt-py-%d", i)
		order = s.primaries(t, cont, name)
		target, partner = s.partnerOf(order, true)
	}
	if target < 0 {
		t.Fatalf("no object name among 40 puts a Python node beside a Python partner (last order %v)", order)
	}
	if resp, _ := s.do("PUT", "/"+cont+"/"+name, data, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	before, frag := s.nodeGet(target, "GET", cont, name, nil)
	if before.StatusCode != http.StatusOK {
		t.Fatalf("fragment before: %s", before.Status)
	}
	if err := os.Remove(dataFileOf(s.fragFiles(cont, name)[target])); err != nil {
		t.Fatal(err)
	}
	log := s.Reconstruct(t, partner)
	after, got := s.nodeGet(target, "GET", cont, name, nil)
	if after.StatusCode != http.StatusOK || !bytes.Equal(got, frag) {
		t.Fatalf("archive of %s not rebuilt (%s, %d bytes, want %d); reconstructor:\n%s", s.Nodes[target].Device, after.Status, len(got), len(frag), testenv.Tail(log, 40))
	}
	rebuilt := dataFileOf(s.fragFiles(cont, name)[target])
	t.Logf("%s (Python) rebuilt by %s's reconstructor from order %v: %s", s.Nodes[target].Device, s.Nodes[partner].Device, order, filepath.Base(rebuilt))
	b, err := os.ReadFile(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, frag) || readXattrMeta(t, rebuilt)["X-Object-Sysmeta-Arca-Key-Id"] != "" {
		t.Fatalf("rebuilt archive %s on the Python node is not Swift's plain fragment archive", rebuilt)
	}
	if resp, got := s.do("GET", "/"+cont+"/"+name, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET after rebuild: %s", resp.Status)
	}
}
