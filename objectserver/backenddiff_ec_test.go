package objectserver_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/ringhash"
)

// The backend differential harness on an erasure-coded policy: policy 0
// of both servers is liberasurecode_rs_vand 4+2 (a swift.conf of the
// test's own), and ecCorpus sends what Swift's proxy sends an EC node:
// fragment archives made by pyeclib from the corpus's objects, in
// multiphase PUTs (100-continue, the MIME object and footer documents,
// the second 100-continue, the commit document), GETs with and without
// X-Backend-Fragment-Preferences and X-Backend-Etag-Is-At, and the rest.
// Both servers store the same archives under the same timestamps, so their
// plaintext answers (statuses, headers, archive bytes, REPLICATE's hashes,
// async pendings) must agree; what they store differs by design (Arca's
// archives are encrypted).

// ecDiffSegment is the policy's ec_object_segment_size: small, so that
// the corpus's objects span several segments and their archives several
// fragments.
const ecDiffSegment = 8192

// ecDiffClientTimeout is both servers' client_timeout (seconds): how long
// they wait for a commit that never comes.
const ecDiffClientTimeout = 2

// ecDiffObjects are the EC corpus's objects and their sizes.
var ecDiffObjects = map[string]int{"multi": 20000, "other": 5000, "small": 100, "empty": 0}

// ecArchives are the EC corpus's objects and their six fragment archives,
// each as the proxy sends it to its node (chunk_transformer: each
// segment encoded, the i-th fragments of every segment concatenated).
type ecArchives struct {
	objects  map[string][]byte
	archives map[string][][]byte
}

// pyECArchives writes <out>/<name>.<i>, the i-th archive of the object in
// <out>/<name>, for each name given, as the proxy encodes it.
const pyECArchives = `
import os, sys
from pyeclib.ec_iface import ECDriver
d = ECDriver(k=4, m=2, ec_type='liberasurecode_rs_vand')
seg, out = int(sys.argv[1]), sys.argv[2]
for name in sys.argv[3:]:
    data = open(os.path.join(out, name), 'rb').read()
    archives = [b''] * 6
    for off in range(0, len(data), seg):
        for i, f in enumerate(d.encode(data[off:off + seg])):
            archives[i] += f
    for i, a in enumerate(archives):
        open(os.path.join(out, '%s.%d' % (name, i)), 'wb').write(a)
`

func makeECArchives(t *testing.T) *ecArchives {
	t.Helper()
	dir := t.TempDir()
	e := &ecArchives{objects: map[string][]byte{}, archives: map[string][][]byte{}}
	args := []string{"-c", pyECArchives, strconv.Itoa(ecDiffSegment), dir}
	for name, n := range ecDiffObjects {
		line := []byte("EC differential object " + name + "\n")
		e.objects[name] = bytes.Repeat(line, n/len(line)+1)[:n]
		if err := os.WriteFile(filepath.Join(dir, name), e.objects[name], 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, name)
	}
	if out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
		testenv.StackMissing(t, fmt.Sprintf("pyeclib did not encode: %v: %s", err, out))
	}
	for name := range ecDiffObjects {
		for i := range 6 {
			b, err := os.ReadFile(filepath.Join(dir, name+"."+strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			e.archives[name] = append(e.archives[name], b)
		}
	}
	if len(e.archives["multi"][0]) <= ecDiffSegment/4 || e.archives["empty"][0] == nil {
		t.Fatalf("unexpected archives: %d bytes for a 3-segment object", len(e.archives["multi"][0]))
	}
	return e
}

// archive is the object and the archive "name/index" names.
func (e *ecArchives) archive(spec string) (obj, archive []byte, index int) {
	name, i, _ := strings.Cut(spec, "/")
	index, err := strconv.Atoi(i)
	if err != nil || e.objects[name] == nil && ecDiffObjects[name] != 0 {
		panic("no EC archive " + spec)
	}
	return e.objects[name], e.archives[name][index], index
}

// md5 is the MD5 of an object ("name") or of an archive ("name/index").
func (e *ecArchives) md5(spec string) string {
	var b []byte
	if strings.Contains(spec, "/") {
		_, b, _ = e.archive(spec)
	} else {
		b = e.objects[spec]
	}
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// mpVariant is how a multiphase PUT departs from the proxy's.
type mpVariant int

const (
	mpProxy             mpVariant = iota // as the proxy sends it
	mpNoCommit                           // the commit never comes: the servers time out
	mpHangup                             // the proxy goes away after the second 100 Continue
	mpOtherCommit                        // a document that is not "put commit"
	mpClosedAfterFooter                  // the footer's boundary closes the body: no commit document
	mpNoFooter                           // the object document, then the closing boundary
	mpBadBoundary                        // the body's boundary is not the header's
	mpFooterMD5                          // the footer's Content-MD5 is wrong
	mpFooterNotJSON                      // the footer is not JSON
	mpSinglePhase                        // footer, no commit phase (X-Backend-Obj-Multiphase-Commit absent)
)

const ecBoundary = "arca-diff-ec-boundary"

// multiphaseBodies makes a multiphase PUT's headers and bodies, as the
// proxy's MIMEPutter: the object document (the archive), the footer
// (trailing_metadata: the archive's MD5 as Etag, the EC sysmeta, the
// container update overrides; then the step's footer entries), the
// boundary, the last chunk; then the commit document.
func (v *diffVars) multiphaseBodies(st *diffStep, r *diffRequest) {
	h, body := r.header, r.body
	foot := map[string]string{}
	if st.ec != "" {
		obj, archive, index := v.ec.archive(st.ec)
		body = archive
		osum := md5.Sum(obj)
		foot = map[string]string{
			"X-Object-Sysmeta-Ec-Etag":                 hex.EncodeToString(osum[:]),
			"X-Object-Sysmeta-Ec-Content-Length":       strconv.Itoa(len(obj)),
			"X-Backend-Container-Update-Override-Etag": hex.EncodeToString(osum[:]),
			"X-Backend-Container-Update-Override-Size": strconv.Itoa(len(obj)),
			"X-Object-Sysmeta-Ec-Frag-Index":           strconv.Itoa(index),
			"X-Object-Sysmeta-Ec-Scheme":               "liberasurecode_rs_vand 4+2",
			"X-Object-Sysmeta-Ec-Segment-Size":         strconv.Itoa(ecDiffSegment),
		}
	}
	js := v.footerJSON(st, body, foot)
	if st.mp == mpFooterNotJSON {
		js = []byte(`{"Etag": not json`)
	}
	jsum := md5.Sum(js)
	if st.mp == mpFooterMD5 {
		jsum = md5.Sum([]byte("another footer"))
	}
	h.Del("Content-Length")
	setFooterHeaders(h, ecBoundary, len(body))
	h.Set("X-Backend-Obj-Multiphase-Commit", "yes")
	bnd := ecBoundary
	if st.mp == mpBadBoundary {
		bnd = "not-" + ecBoundary
	}
	tail := "--" + bnd
	if st.mp == mpClosedAfterFooter || st.mp == mpSinglePhase {
		tail += "--"
	}
	if st.mp == mpSinglePhase {
		h.Del("X-Backend-Obj-Multiphase-Commit")
	}
	r.phase1 = [][]byte{[]byte("--" + bnd + "\r\nX-Document: object body\r\n\r\n")}
	for len(body) > 0 {
		n := min(len(body), 2048)
		r.phase1, body = append(r.phase1, body[:n]), body[n:]
	}
	if st.mp == mpNoFooter {
		r.phase1 = append(r.phase1, []byte("\r\n--"+bnd+"--\r\n"))
	} else {
		r.phase1 = append(r.phase1, fmt.Appendf(nil, "\r\n--%s\r\nX-Document: object metadata\r\nContent-MD5: %x\r\n\r\n%s\r\n%s\r\n", bnd, jsum, js, tail))
	}
	doc := "put commit"
	if st.mp == mpOtherCommit {
		doc = "something else"
	}
	r.commit = []byte("X-Document: " + doc + "\r\n\r\nput_commit_confirmation\r\n--" + bnd + "--")
	r.body = nil
}

// writeChunks sends parts as chunks, then the last chunk.
func writeChunks(conn net.Conn, parts [][]byte) error {
	var b bytes.Buffer
	for _, p := range parts {
		if len(p) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		}
	}
	b.WriteString("0\r\n\r\n")
	_, err := conn.Write(b.Bytes())
	return err
}

// sendMultiphase is a multiphase PUT as the proxy makes it: the head, the
// first 100 Continue, the first body, the second 100 Continue, the commit
// (or what the step's variant does instead), the answer.
func sendMultiphase(st *diffStep, v *diffVars, tg diffTarget) (*observation, error) {
	r := v.buildRequest(st)
	conn, err := dialHead(st, v, tg, r.header)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := &http.Request{Method: st.method}
	o := &observation{}
	hdr, done, err := readContinue(br, req, o, "waiting for 100 Continue")
	if err != nil || done {
		return o, err
	}
	o.interim, o.interimHdr = http.StatusContinue, hdr
	// A server that answers before reading the whole body may close the
	// connection under the writer: its answer is what counts.
	_ = writeChunks(conn, r.phase1)
	if hdr, done, err = readContinue(br, req, o, "after the first body"); err != nil || done {
		return o, err
	}
	o.interim2, o.interim2H = http.StatusContinue, hdr
	switch st.mp {
	case mpNoCommit:
		_ = conn.SetDeadline(time.Now().Add(4 * ecDiffClientTimeout * time.Second))
	case mpHangup:
		_ = conn.(*net.TCPConn).CloseWrite()
	default:
		_ = writeChunks(conn, [][]byte{r.commit})
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("after the commit: %w", err)
	}
	return finish(o, resp)
}

// TestBackendDifferentialEC runs ecCorpus against arca-object-server and
// Swift's Python object server, both with an EC policy 0.
func TestBackendDifferentialEC(t *testing.T) {
	testenv.RequireTools(t, "swift-object-server", "/usr/bin/python3")
	if _, err := os.Stat("/usr/lib/python3/dist-packages/pyeclib"); err != nil {
		testenv.StackMissing(t, "python3-pyeclib is not installed (tools/stack.sh install)")
	}
	work := t.TempDir()
	swiftConf := testenv.ECPolicy{Data: 4, Parity: 2, SegmentSize: ecDiffSegment}.WriteSwiftConf(t, filepath.Join(work, "swift"))
	conf, err := ringhash.Load(swiftConf)
	if err != nil {
		t.Fatal(err)
	}
	const partPower = 6
	arca, pyT := startDiffPair(t, work, partPower, swiftConf, fmt.Sprintf("client_timeout = %d\n", ecDiffClientTimeout))

	v := newDiffVars(t, conf.Hasher, partPower)
	v.ec = makeECArchives(t)
	runDiff(t, v, ecCorpus, explainedECDiffs, arca, pyT)
}

const (
	ecObj  = "AUTH_diff/ec/obj"
	ecObj2 = "AUTH_diff/ec/obj2"
	ecObj3 = "AUTH_diff/ec/obj3"
	ecBad  = "AUTH_diff/ec/bad"
)

// Headers the proxy sends on an EC GET (the first request of each
// fragment GET has no preferences yet: "[]") and HEAD.
const (
	noPrefs  = "X-Backend-Fragment-Preferences: []"
	ecEtagAt = "X-Backend-Etag-Is-At: X-Object-Sysmeta-Ec-Etag"
)

// ecCorpus is the EC requests, in order: later steps read what earlier
// ones wrote. Names of steps that {at:...} refers to have no '}'.
var ecCorpus = []diffStep{
	{name: "ec get missing", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec head missing", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},

	// multiphase PUT, then reads of a durable archive
	{name: "ec put", method: "PUT", path: ecObj, ec: "multi/2", mode: modeMultiphase, hdr: []string{"Content-Type: text/plain", "X-Object-Meta-Color: blue"}},
	{name: "ec get", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec get without preferences", method: "GET", path: ecObj},
	{name: "ec head", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec get preferring its timestamp", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put}", "exclude": []}]`}},
	{name: "ec get excluding its index", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put}", "exclude": [2]}]`}},
	{name: "ec get preferring another timestamp", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{old}", "exclude": []}]`}},
	{name: "ec get preferences not json", method: "GET", path: ecObj, hdr: []string{"X-Backend-Fragment-Preferences: nope"}},
	{name: "ec get preferences not a list", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: {"timestamp": 1}`}},
	{name: "ec get for replication", method: "GET", path: ecObj, hdr: []string{"X-Backend-Replication: True"}},

	// ranges of the archive (fragments of 80-byte headers and payloads)
	{name: "ec range first header", method: "GET", path: ecObj, hdr: []string{noPrefs, "Range: bytes=0-79"}},
	{name: "ec range across fragments", method: "GET", path: ecObj, hdr: []string{noPrefs, "Range: bytes=1000-3000"}},
	{name: "ec range suffix", method: "GET", path: ecObj, hdr: []string{noPrefs, "Range: bytes=-100"}},
	{name: "ec range open", method: "GET", path: ecObj, hdr: []string{noPrefs, "Range: bytes=4000-"}},
	{name: "ec range multiple", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, "Range: bytes=0-9,2100-2200,-5"}},
	{name: "ec range unsatisfiable", method: "GET", path: ecObj, hdr: []string{noPrefs, "Range: bytes=100000-"}},

	// conditionals, as the proxy sends them (against the EC ETag) and not
	{name: "ec if-match object etag", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, `If-Match: "{md5:multi}"`}},
	{name: "ec if-match archive etag", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, `If-Match: "{md5:multi/2}"`}},
	{name: "ec if-match archive etag without etag-is-at", method: "GET", path: ecObj, hdr: []string{noPrefs, `If-Match: "{md5:multi/2}"`}},
	{name: "ec if-none-match object etag", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, `If-None-Match: "{md5:multi}"`}},
	{name: "ec if-none-match object etag head", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt, `If-None-Match: "{md5:multi}"`}},
	{name: "ec if-none-match star", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, "If-None-Match: *"}},
	{name: "ec if-modified-since future", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, "If-Modified-Since: {http:now+100}"}},
	{name: "ec if-unmodified-since past", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, "If-Unmodified-Since: {http:old}"}},
	{name: "ec range with if-match object etag", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, `If-Match: "{md5:multi}"`, "Range: bytes=5-10"}},

	// conflicts
	{name: "ec put same timestamp", method: "PUT", path: ecObj, ec: "other/2", mode: modeMultiphase, hdr: []string{"X-Timestamp: {at:ec put}"}},
	{name: "ec put older", method: "PUT", path: ecObj, ec: "other/2", mode: modeMultiphase, hdr: []string{"X-Timestamp: {old}"}},

	// POST: a .meta beside the archive
	{name: "ec post", method: "POST", path: ecObj, hdr: []string{"X-Object-Meta-Shape: round", "Content-Type: -"}},
	{name: "ec get after post", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec head after post", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec post content-type", method: "POST", path: ecObj, hdr: []string{"Content-Type: image/png", "X-Object-Meta-Shape: square"}},
	{name: "ec head after content-type post", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec post older", method: "POST", path: ecObj, hdr: []string{"X-Timestamp: {old}"}},

	// a newer archive whose commit never comes: not durable
	{name: "ec put no commit", method: "PUT", path: ecObj, ec: "other/2", mode: modeMultiphase, mp: mpNoCommit},
	{name: "ec get after no commit", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec get after no commit without preferences", method: "GET", path: ecObj},
	{name: "ec head after no commit", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec get preferring the non-durable", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put no commit}", "exclude": []}]`}},
	{name: "ec get preferring the durable", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put}", "exclude": []}]`}},
	{name: "ec put hangup", method: "PUT", path: ecObj, ec: "other/3", mode: modeMultiphase, mp: mpHangup},
	{name: "ec put other commit document", method: "PUT", path: ecObj, ec: "other/4", mode: modeMultiphase, mp: mpOtherCommit},
	{name: "ec get after failed commits", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec replicate non-durable", method: "REPLICATE", path: "/{dev}/{part:AUTH_diff/ec/obj}", raw: true},
	{name: "ec replicate suffix", method: "REPLICATE", path: "/{dev}/{part:AUTH_diff/ec/obj}/{suffix:AUTH_diff/ec/obj}", raw: true},

	// overwrite with a newer timestamp, another fragment index
	{name: "ec overwrite", method: "PUT", path: ecObj, ec: "other/5", mode: modeMultiphase, hdr: []string{"Content-Type: text/x-other", "X-Object-Meta-Color: green"}},
	{name: "ec get after overwrite", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec head after overwrite", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec get older by preference", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put}", "exclude": []}]`}},
	{name: "ec replicate after overwrite", method: "REPLICATE", path: "/{dev}/{part:AUTH_diff/ec/obj}/{suffix:AUTH_diff/ec/obj}", raw: true},

	// DELETE: a tombstone
	{name: "ec delete older", method: "DELETE", path: ecObj, hdr: []string{"X-Timestamp: {old}"}},
	{name: "ec delete", method: "DELETE", path: ecObj},
	{name: "ec get deleted", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec head deleted", method: "HEAD", path: ecObj, hdr: []string{ecEtagAt}},
	{name: "ec get deleted by preference", method: "GET", path: ecObj, hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec overwrite}", "exclude": []}]`}},
	{name: "ec post deleted", method: "POST", path: ecObj},
	{name: "ec put older than tombstone", method: "PUT", path: ecObj, ec: "multi/1", mode: modeMultiphase, hdr: []string{"X-Timestamp: {at:ec overwrite}"}},
	{name: "ec replicate after delete", method: "REPLICATE", path: "/{dev}/{part:AUTH_diff/ec/obj}/{suffix:AUTH_diff/ec/obj}", raw: true},
	{name: "ec put after tombstone", method: "PUT", path: ecObj, ec: "multi/0", mode: modeMultiphase},
	{name: "ec get after tombstone", method: "GET", path: ecObj, hdr: []string{noPrefs, ecEtagAt, "Range: bytes=-90"}},

	// small and empty objects, a parity archive
	{name: "ec put small", method: "PUT", path: ecObj2, ec: "small/4", mode: modeMultiphase},
	{name: "ec get small", method: "GET", path: ecObj2, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec range small", method: "GET", path: ecObj2, hdr: []string{noPrefs, "Range: bytes=70-90"}},
	{name: "ec put empty", method: "PUT", path: ecObj3, ec: "empty/1", mode: modeMultiphase},
	{name: "ec get empty", method: "GET", path: ecObj3, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec head empty", method: "HEAD", path: ecObj3, hdr: []string{ecEtagAt}},
	{name: "ec range empty", method: "GET", path: ecObj3, hdr: []string{noPrefs, "Range: bytes=0-0"}},
	{name: "ec put single phase", method: "PUT", path: ecObj3, ec: "small/0", mode: modeMultiphase, mp: mpSinglePhase},
	{name: "ec get single phase", method: "GET", path: ecObj3, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec put no-commit header", method: "PUT", path: ecObj3, ec: "small/1", mode: modeMultiphase, hdr: []string{"X-Backend-No-Commit: True"}},
	{name: "ec get after no-commit header", method: "GET", path: ecObj3, hdr: []string{noPrefs, ecEtagAt}},

	// two archives of one timestamp on one node (a handoff's), not durable
	{name: "ec put handoff first", method: "PUT", path: "AUTH_diff/ec/handoff", ec: "multi/1", mode: modeMultiphase, hdr: []string{"X-Backend-No-Commit: True"}},
	{name: "ec put handoff second", method: "PUT", path: "AUTH_diff/ec/handoff", ec: "multi/4", mode: modeMultiphase, hdr: []string{"X-Backend-No-Commit: True", "X-Timestamp: {at:ec put handoff first}"}},
	{name: "ec get handoff", method: "GET", path: "AUTH_diff/ec/handoff", hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec get handoff excluding one", method: "GET", path: "AUTH_diff/ec/handoff", hdr: []string{`X-Backend-Fragment-Preferences: [{"timestamp": "{at:ec put handoff first}", "exclude": [1]}]`}},
	{name: "ec head handoff", method: "HEAD", path: "AUTH_diff/ec/handoff", hdr: []string{ecEtagAt}},

	// malformed multiphase bodies
	{name: "ec put missing footer", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, mp: mpNoFooter},
	{name: "ec put bad boundary", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, mp: mpBadBoundary},
	{name: "ec put no boundary header", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, hdr: []string{"X-Backend-Obj-Multipart-Mime-Boundary: -"}},
	{name: "ec put footer etag mismatch", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, footer: []string{"Etag: {md5:multi/2}"}},
	{name: "ec put footer md5 mismatch", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, mp: mpFooterMD5},
	{name: "ec put footer not json", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, mp: mpFooterNotJSON},
	{name: "ec put footer closes the body", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, mp: mpClosedAfterFooter},
	{name: "ec put short archive", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, hdr: []string{"X-Backend-Obj-Content-Length: 99999"}},
	{name: "ec get after malformed", method: "GET", path: ecBad, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec put without frag index", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, footer: []string{"X-Object-Sysmeta-Ec-Frag-Index: -"}},
	{name: "ec put frag index out of range", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, footer: []string{"X-Object-Sysmeta-Ec-Frag-Index: 6"}},
	{name: "ec put frag index in headers", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, footer: []string{"X-Object-Sysmeta-Ec-Frag-Index: -"}, hdr: []string{"X-Object-Sysmeta-Ec-Frag-Index: 1"}},
	{name: "ec get frag index in headers", method: "GET", path: ecBad, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec put frag index mismatch", method: "PUT", path: ecBad, ec: "multi/1", mode: modeMultiphase, footer: []string{"X-Object-Sysmeta-Ec-Frag-Index: 3"}},
	{name: "ec get frag index mismatch", method: "GET", path: ecBad, hdr: []string{noPrefs, ecEtagAt}},
	{name: "ec replicate partition", method: "REPLICATE", path: "/{dev}/{part:AUTH_diff/ec/obj}", raw: true},
}

// explainedECDiffs are the EC corpus's differences kept on purpose, each
// described in docs/compatibility.md, "The object server (backend
// protocol)".
var explainedECDiffs = []explainedDiff{
	{
		steps:  []string{"ec delete"},
		fields: []string{"header:Content-Length"},
		doc:    "204 without Content-Length",
	},
	{
		steps:  []string{"ec replicate non-durable", "ec replicate partition"},
		fields: []string{"header:Content-Length"},
		doc:    "REPLICATE's pickle",
	},
	{
		steps:  []string{"ec get preferences not a list", "ec put bad boundary"},
		fields: []string{"*"},
		doc:    "Swift's unhandled exceptions",
	},
	{
		steps:  []string{"ec put without frag index", "ec put frag index out of range", "ec put frag index mismatch", "ec get frag index mismatch"},
		fields: []string{"*"},
		doc:    "Erasure-coded policies",
	},
}
