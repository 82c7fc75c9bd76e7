package objectserver_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/ringhash"
)

// The backend differential harness: arca-object-server and Debian's
// Python swift-object-server (2.30) get the same requests, as the Swift
// proxy sends them (backendCorpus), and must answer alike: status, the
// headers the proxy reads, the body and the async pendings written for
// the container and the expirer (their number and what they hold). Every difference is either a fault to fix or listed in
// explainedDiffs with its reason (docs/compatibility.md, "The object
// server (backend protocol)").

// diffTarget is one of the two servers under comparison.
type diffTarget struct {
	name    string
	host    string // 127.0.0.1:port
	devices string
	device  string
	listing *listingOpener // Arca's: opens the sealed ETags of its async pendings
}

// observation is what one server answered to one request.
type observation struct {
	interim    int // 100 when the server asked for the body, else 0
	interimHdr http.Header
	interim2   int // 100 when it asked for a multiphase PUT's commit
	interim2H  http.Header
	status     int
	header     http.Header
	body       []byte
	async      int    // async pendings written by the request
	asyncDoc   string // what they hold
}

// diffVars are the values the corpus's placeholders stand for.
type diffVars struct {
	base      float64 // the first request's X-Timestamp
	now       int64   // wall clock when the run began, seconds
	ts        float64 // this request's X-Timestamp
	lastWrite float64 // the latest PUT or POST's X-Timestamp
	closed    string  // host:port nothing listens on
	partPower uint
	hasher    ringhash.Hasher
	at        map[string]float64 // each step's X-Timestamp, by name
	ec        *ecArchives        // the EC corpus's objects and fragment archives
	scratch   string             // a folder for REPLICATE's pickles
}

var (
	placeholder = regexp.MustCompile(`\{(http:)?(ts|now|lm|old)([+-]\d+)?\}`)
	// {at:step} is the X-Timestamp of an earlier step; {part:a/c/o} and
	// {suffix:a/c/o} an object's partition and suffix; {md5:obj} and
	// {md5:obj/i} the MD5 of an EC object and of its i-th archive.
	namedPlaceholder = regexp.MustCompile(`\{(at|part|suffix|md5):([^}]+)\}`)
)

// expand replaces {ts}, {now+N}, {lm}, {old} (seconds; with "http:" as an
// HTTP date), {closed} and the named placeholders.
func (v *diffVars) expand(s string) string {
	s = strings.ReplaceAll(s, "{closed}", v.closed)
	s = namedPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		p := namedPlaceholder.FindStringSubmatch(m)
		switch p[1] {
		case "at":
			return fmt.Sprintf("%.5f", v.at[p[2]])
		case "md5":
			return v.ec.md5(p[2])
		}
		acs := strings.SplitN(p[2], "/", 3)
		if p[1] == "part" {
			return strconv.FormatUint(uint64(v.hasher.Partition(acs[0], acs[1], acs[2], v.partPower)), 10)
		}
		h := v.hasher.HashPath(acs[0], acs[1], acs[2])
		return h[len(h)-3:]
	})
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		p := placeholder.FindStringSubmatch(m)
		var at float64
		switch p[2] {
		case "ts":
			at = v.ts
		case "now":
			at = float64(v.now)
		case "lm":
			at = math.Ceil(v.lastWrite)
		case "old":
			at = v.base - 1000
		}
		if p[3] != "" {
			n, _ := strconv.Atoi(p[3])
			at += float64(n)
		}
		if p[1] != "" {
			return time.Unix(int64(math.Ceil(at)), 0).UTC().Format(http.TimeFormat)
		}
		if p[2] == "ts" || p[2] == "old" {
			return fmt.Sprintf("%.5f", at)
		}
		return strconv.FormatInt(int64(at), 10)
	})
}

// requestPath is the step's path on the wire for a target: /dev/part/a/c/o
// with the ring's partition, or the raw path with {dev} replaced.
func (v *diffVars) requestPath(st *diffStep, tg diffTarget) string {
	if st.raw {
		return v.expand(strings.ReplaceAll(st.path, "{dev}", tg.device))
	}
	parts := strings.SplitN(st.path, "/", 3)
	part := uint32(0)
	if len(parts) == 3 {
		part = v.hasher.Partition(unescape(parts[0]), unescape(parts[1]), unescape(parts[2]), v.partPower)
	}
	return fmt.Sprintf("/%s/%d/%s", tg.device, part, v.expand(st.path))
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

const footerBoundary = "arca-diff-footer-boundary"

// diffRequest is a step's request as sent to a target.
type diffRequest struct {
	header          http.Header
	body            []byte // nil when declared and never sent
	chunked, expect bool
	// a multiphase PUT's bodies: the first (object and footer documents,
	// in chunks as the proxy sends them), then the commit document
	phase1 [][]byte
	commit []byte
}

// buildRequest is the step's headers and body: the proxy's backend
// headers, those the mode makes (Content-Length, chunked, 100-continue,
// the footer's), then the step's own, which may replace or remove them.
func (v *diffVars) buildRequest(st *diffStep) diffRequest {
	r := diffRequest{header: http.Header{}, body: []byte(st.body)}
	h := r.header
	h.Set("X-Timestamp", fmt.Sprintf("%.5f", v.ts))
	h.Set("X-Backend-Storage-Policy-Index", "0")
	h.Set("User-Agent", "proxy-server 1")
	h.Set("X-Trans-Id", "tx-arca-diff")
	if st.method == http.MethodPut || st.method == http.MethodPost || st.method == http.MethodDelete {
		h.Set("X-Container-Host", v.closed)
		h.Set("X-Container-Partition", "1")
		h.Set("X-Container-Device", "cdev")
	}
	if st.method == http.MethodPut && !st.raw {
		h.Set("Content-Type", "application/octet-stream")
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(st.body, "bytes:")); err == nil && strings.HasPrefix(st.body, "bytes:") {
		r.body = bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	}
	switch st.mode {
	case modeFooters:
		r.body = v.footerBody(st, r.body, h)
	case modeDeclared:
		r.body = nil
	case modeMultiphase:
		v.multiphaseBodies(st, &r)
	}
	r.chunked = st.mode == modeChunked || st.mode == modeContinueChunked || st.mode == modeFooters || st.mode == modeMultiphase
	r.expect = st.mode == modeContinue || st.mode == modeContinueChunked || st.mode == modeFooters || st.mode == modeDeclared || st.mode == modeMultiphase
	if r.expect {
		h.Set("Expect", "100-continue")
	}
	if r.chunked {
		h.Set("Transfer-Encoding", "chunked")
	} else if r.body != nil && (len(r.body) > 0 || st.method == http.MethodPut) {
		h.Set("Content-Length", strconv.Itoa(len(r.body)))
	}
	for _, kv := range st.hdr {
		k, val, _ := strings.Cut(kv, ":")
		val = strings.TrimSpace(v.expand(val))
		if val == "-" {
			h.Del(k)
			continue
		}
		h[http.CanonicalHeaderKey(k)] = []string{val}
	}
	return r
}

// footerBody is body as the proxy sends it with a MIME metadata footer:
// the body's MD5 as Etag unless the step's footer says otherwise.
func (v *diffVars) footerBody(st *diffStep, body []byte, h http.Header) []byte {
	js := v.footerJSON(st, body, map[string]string{})
	jsum := md5.Sum(js)
	setFooterHeaders(h, footerBoundary, len(body))
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s\r\nX-Document: object body\r\n\r\n%s\r\n--%s\r\nX-Document: object metadata\r\nContent-MD5: %x\r\n\r\n%s\r\n--%s--", footerBoundary, body, footerBoundary, jsum, js, footerBoundary)
	return b.Bytes()
}

// footerJSON is a MIME metadata footer as JSON: foot (what the proxy puts
// there besides the Etag), body's MD5 as Etag, then the step's footer
// entries, which may replace those or, with a value "-", remove them.
func (v *diffVars) footerJSON(st *diffStep, body []byte, foot map[string]string) []byte {
	sum := md5.Sum(body)
	foot["Etag"] = hex.EncodeToString(sum[:])
	for _, kv := range st.footer {
		k, val, _ := strings.Cut(kv, ":")
		if val = strings.TrimSpace(v.expand(val)); val == "-" {
			delete(foot, k)
		} else {
			foot[k] = val
		}
	}
	js, _ := json.Marshal(foot)
	return js
}

// setFooterHeaders are the headers of a body of n bytes sent as MIME
// documents under boundary, the object's then the metadata footer.
func setFooterHeaders(h http.Header, boundary string, n int) {
	h.Set("X-Backend-Obj-Metadata-Footer", "yes")
	h.Set("X-Backend-Obj-Multipart-Mime-Boundary", boundary)
	h.Set("X-Backend-Obj-Content-Length", strconv.Itoa(n))
}

// send makes one request to a target on a connection of its own, the way
// the step's mode says (chunked, 100-continue, a body declared and never
// sent), and returns the answer.
func send(st *diffStep, v *diffVars, tg diffTarget) (*observation, error) {
	if st.mode == modeMultiphase {
		return sendMultiphase(st, v, tg)
	}
	r := v.buildRequest(st)
	h, body, chunked, expect := r.header, r.body, r.chunked, r.expect
	conn, err := dialHead(st, v, tg, h)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := &http.Request{Method: st.method}
	o := &observation{}
	if expect {
		hdr, done, err := readContinue(br, req, o, "waiting for 100 Continue")
		if err != nil || done {
			return o, err
		}
		o.interim, o.interimHdr = http.StatusContinue, hdr
		if st.mode == modeDeclared {
			o.status = -1 // the body was asked for and never sent
			return o, nil
		}
	}
	if err := writeBody(conn, body, chunked); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	return finish(o, resp)
}

// dialHead connects to the target and sends the request's head.
func dialHead(st *diffStep, v *diffVars, tg diffTarget, h http.Header) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", tg.host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", st.method, v.requestPath(st, tg), tg.host)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, val := range h[k] {
			fmt.Fprintf(&head, "%s: %s\r\n", k, val)
		}
	}
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func writeBody(w io.Writer, body []byte, chunked bool) error {
	if !chunked {
		_, err := w.Write(body)
		return err
	}
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	_, err := w.Write(b.Bytes())
	return err
}

// readContinue reads the server's answer to what was sent so far (after
// names it in an error): a 100 Continue is its headers; any other answer
// ends the request, read into o, and done is true.
func readContinue(br *bufio.Reader, req *http.Request, o *observation, after string) (hdr http.Header, done bool, err error) {
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", after, err)
	}
	if resp.StatusCode != http.StatusContinue {
		_, err = finish(o, resp)
		return nil, true, err
	}
	return resp.Header, false, nil
}

func finish(o *observation, resp *http.Response) (*observation, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	o.status, o.header, o.body = resp.StatusCode, resp.Header, b
	if err != nil {
		// a body cut short is part of the answer (SSYNC's refusal)
		o.header.Set("X-Diff-Body-Error", err.Error())
	}
	if len(resp.TransferEncoding) > 0 {
		o.header.Set("Transfer-Encoding", strings.Join(resp.TransferEncoding, ", "))
	}
	return o, nil
}

// listAsync is the async pendings the target's device holds.
func listAsync(tg diffTarget) map[string]bool {
	out := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(tg.devices, tg.device), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(path, "/async_pending") {
			out[path] = true
		}
		return nil
	})
	return out
}

// newAsync is how many async pendings were written since before, and
// what they hold (decoded, sorted), for the comparison.
func newAsync(u *unpickler, tg diffTarget, before map[string]bool) (int, string) {
	var docs []string
	for path := range listAsync(tg) {
		if before[path] {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(u.decode(path)), &v); err != nil {
			docs = append(docs, "undecodable: "+err.Error())
			continue
		}
		js, _ := json.Marshal(normalizeAsync(v, tg)) // sorted keys
		docs = append(docs, string(js))
	}
	sort.Strings(docs)
	return len(docs), strings.Join(docs, "\n")
}

// unpickleScript reads paths of async pendings (or REPLICATE answers), one
// a line, and answers each with its content as one line of JSON (sorted
// keys, each key as Python's str() of it), unpickled as Swift's updater
// (or replicator) unpickles it.
const unpickleScript = `
import json, pickle, sys
def keys(v):
    if isinstance(v, dict):
        return {str(k): keys(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [keys(x) for x in v]
    return v
for line in sys.stdin:
    try:
        with open(line.rstrip("\n"), "rb") as f:
            v = pickle.load(f)
        out = json.dumps(keys(v), sort_keys=True, default=repr)
    except Exception as e:
        out = json.dumps("unreadable: %r" % (e,))
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
`

// unpickler is a python3 running unpickleScript.
type unpickler struct {
	in  io.Writer
	out *bufio.Reader
}

func startUnpickler(t *testing.T) *unpickler {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", unpickleScript)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	return &unpickler{in: in, out: bufio.NewReader(out)}
}

// decode is the JSON of the pickle at path.
func (u *unpickler) decode(path string) string {
	if _, err := io.WriteString(u.in, path+"\n"); err != nil {
		return "unpickler: " + err.Error()
	}
	line, err := u.out.ReadString('\n')
	if err != nil {
		return "unpickler: " + err.Error()
	}
	return strings.TrimSuffix(line, "\n")
}

// asyncPID is the process id in an update's User-Agent.
var asyncPID = regexp.MustCompile(`^object-server \d+$`)

// normalizeAsync removes from an async pending what names the server
// rather than the update: its port and device in Referer and its process
// id in User-Agent. Header names are lower-cased: Swift's updater reads
// them case-insensitively (Swift writes a HeaderKeyDict, Arca a dict).
func normalizeAsync(x any, tg diffTarget) any {
	m, ok := x.(map[string]any)
	if !ok {
		return x
	}
	if hk, ok := m["headers"].(map[string]any); ok {
		h := make(map[string]any, len(hk))
		for k, v := range hk {
			h[strings.ToLower(k)] = v
		}
		m["headers"] = h
		if tg.listing != nil {
			tg.listing.openAsync(m, h)
		}
		if ref, ok := h["referer"].(string); ok {
			ref = strings.Replace(ref, tg.host, "{host}", 1)
			h["referer"] = strings.Replace(ref, "/"+tg.device+"/", "/{dev}/", 1)
		}
		if ua, ok := h["user-agent"].(string); ok && asyncPID.MatchString(ua) {
			h["user-agent"] = "object-server {pid}"
		}
	}
	return m
}

// settleAsync waits, briefly, for both servers' container updates to end
// in async pendings (each sends its update before or just after it
// answers), and records them.
func settleAsync(u *unpickler, a, p *observation, ta, tp diffTarget, beforeA, beforeP map[string]bool) {
	if a.status/100 != 2 && p.status/100 != 2 {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	quiet := time.Now().Add(300 * time.Millisecond)
	for {
		a.async, a.asyncDoc = newAsync(u, ta, beforeA)
		p.async, p.asyncDoc = newAsync(u, tp, beforeP)
		if (a.async > 0 && p.async > 0) || time.Now().After(deadline) ||
			(a.async == p.async && time.Now().After(quiet)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ignoredHeaders are answered by both servers but no concern of the
// proxy's or always differ (the time of the answer, the connection).
var ignoredHeaders = map[string]bool{"Date": true, "Connection": true, "Keep-Alive": true}

var boundaryParam = regexp.MustCompile(`boundary=([0-9A-Za-z'()+_,./:=?-]+)`)

// normalize replaces what legitimately differs between two runs of the
// same answer: the multipart boundary and the device's name.
func normalize(o *observation, tg diffTarget) {
	if m := boundaryParam.FindStringSubmatch(o.header.Get("Content-Type")); m != nil {
		o.header.Set("Content-Type", strings.ReplaceAll(o.header.Get("Content-Type"), m[1], "BOUNDARY"))
		o.body = bytes.ReplaceAll(o.body, []byte(m[1]), []byte("BOUNDARY"))
	}
	o.body = bytes.ReplaceAll(o.body, []byte(": "+tg.device+"<"), []byte(": {dev}<"))
	o.body = bytes.ReplaceAll(o.body, []byte("/"+tg.device+"/"), []byte("/{dev}/"))
}

// fieldDiff is one difference: the step, the field (status, interim,
// header:<Name>, body, async) and both values.
type fieldDiff struct {
	step, field, arca, python string
}

// compareObservations lists the differences and counts the fields compared.
func compareObservations(step string, a, p *observation) ([]fieldDiff, int) {
	var out []fieldDiff
	n := 0
	cmp := func(field, av, pv string) {
		n++
		if av != pv {
			out = append(out, fieldDiff{step, field, av, pv})
		}
	}
	cmp("status", strconv.Itoa(a.status), strconv.Itoa(p.status))
	cmp("interim", strconv.Itoa(a.interim), strconv.Itoa(p.interim))
	for _, k := range []string{"X-Obj-Metadata-Footer", "X-Obj-Multiphase-Commit"} {
		cmp("interim:"+k, a.interimHdr.Get(k), p.interimHdr.Get(k))
	}
	cmp("interim2", strconv.Itoa(a.interim2), strconv.Itoa(p.interim2))
	for _, k := range []string{"X-Obj-Metadata-Footer", "X-Obj-Multiphase-Commit"} {
		cmp("interim2:"+k, a.interim2H.Get(k), p.interim2H.Get(k))
	}
	if a.status < 0 || p.status < 0 {
		return out, n
	}
	names := map[string]bool{}
	for k := range a.header {
		names[k] = !ignoredHeaders[k]
	}
	for k := range p.header {
		names[k] = !ignoredHeaders[k]
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if !names[k] {
			continue
		}
		_, ina := a.header[k]
		_, inp := p.header[k]
		av, pv := strings.Join(a.header[k], ", "), strings.Join(p.header[k], ", ")
		if !ina {
			av = "(absent)"
		}
		if !inp {
			pv = "(absent)"
		}
		cmp("header:"+k, av, pv)
	}
	cmp("body", string(a.body), string(p.body))
	cmp("async", strconv.Itoa(a.async), strconv.Itoa(p.async))
	cmp("async:content", a.asyncDoc, p.asyncDoc)
	return out, n
}

// explainedDiff is a difference kept on purpose: in each of steps, each
// of fields ("*": every field) may differ, for the reason given in
// docs/compatibility.md, "The object server (backend protocol)", under
// the heading named by doc.
type explainedDiff struct {
	steps, fields []string
	doc           string
}

func (e explainedDiff) covers(d fieldDiff) bool {
	return slices.Contains(e.steps, d.step) && (slices.Contains(e.fields, "*") || slices.Contains(e.fields, d.field))
}

func TestBackendDifferential(t *testing.T) {
	diffReplicated(t, "", backendCorpus, explainedDiffs)
}

// diffReplicated sends corpus to a fresh pair of servers on the stack's
// swift.conf, both given extra [DEFAULT] lines, and compares their
// answers (runDiff).
func diffReplicated(t *testing.T, extra string, corpus []diffStep, explained []explainedDiff) {
	t.Helper()
	testenv.RequireTools(t, "swift-object-server", "/usr/bin/python3")
	work := t.TempDir()
	conf, err := ringhash.Load("/etc/swift/swift.conf")
	if err != nil {
		testenv.StackMissing(t, "the stack's /etc/swift/swift.conf is not readable: "+err.Error())
	}
	const partPower = 6
	arca, pyT := startDiffPair(t, work, partPower, "", extra)
	v := newDiffVars(t, conf.Hasher, partPower)
	runDiff(t, v, corpus, explained, arca, pyT)
}

func newDiffVars(t *testing.T, hasher ringhash.Hasher, partPower uint) *diffVars {
	now := time.Now().Unix()
	return &diffVars{base: float64(now-3600) + 0.12345, now: now, partPower: partPower,
		hasher: hasher, closed: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		at: map[string]float64{}, scratch: t.TempDir()}
}

// runDiff sends the corpus to both servers, compares their answers and
// reports the differences that explained does not explain.
func runDiff(t *testing.T, v *diffVars, corpus []diffStep, explained []explainedDiff, arca, pyT diffTarget) {
	t.Helper()
	u := startUnpickler(t)
	var diffs []fieldDiff
	fields, asyncA, asyncP := 0, 0, 0
	for i := range corpus {
		st := &corpus[i]
		v.ts = v.base + float64(i)
		v.at[st.name] = v.ts
		beforeA, beforeP := listAsync(arca), listAsync(pyT)
		a, err := send(st, v, arca)
		if err != nil {
			t.Fatalf("%s: arca: %v", st.name, err)
		}
		p, err := send(st, v, pyT)
		if err != nil {
			t.Fatalf("%s: python: %v", st.name, err)
		}
		settleAsync(u, a, p, arca, pyT, beforeA, beforeP)
		asyncA, asyncP = asyncA+a.async, asyncP+p.async
		if (st.method == http.MethodPut || st.method == http.MethodPost) && p.status/100 == 2 {
			v.lastWrite = v.ts
		}
		normalize(a, arca)
		normalize(p, pyT)
		if st.method == "REPLICATE" {
			v.unpickleBody(u, a)
			v.unpickleBody(u, p)
		}
		if testing.Verbose() {
			t.Logf("%-32s arca %d, python %d", st.name, a.status, p.status)
		}
		d, n := compareObservations(st.name, a, p)
		diffs = append(diffs, d...)
		fields += n
	}
	t.Logf("async pendings written: arca %d, python %d", asyncA, asyncP)
	if asyncP == 0 {
		t.Error("Swift wrote no async pending: the container updates were not compared")
	}
	reportDiffs(t, len(corpus), fields, diffs, explained)
}

// unpickleBody replaces a REPLICATE answer's pickle by its value (JSON),
// which is what the replicator reads; the pickles' bytes may differ
// (Content-Length is still compared).
func (v *diffVars) unpickleBody(u *unpickler, o *observation) {
	if o.status != http.StatusOK {
		return
	}
	f := filepath.Join(v.scratch, "replicate.pickle")
	if err := os.WriteFile(f, o.body, 0o600); err != nil {
		o.body = []byte("scratch: " + err.Error())
		return
	}
	o.body = []byte("unpickled: " + u.decode(f))
}

// reportDiffs logs the counts and fails on every difference not explained
// and on every explained step where the difference no longer occurs.
func reportDiffs(t *testing.T, requests, fields int, diffs []fieldDiff, explained []explainedDiff) {
	t.Helper()
	byClass := map[string]int{}
	seen := map[string]bool{} // doc + step
	for _, d := range diffs {
		class := "unexplained"
		for _, e := range explained {
			if e.covers(d) {
				class, seen[e.doc+"\x00"+d.step] = "explained: "+e.doc, true
				break
			}
		}
		byClass[class]++
		if class == "unexplained" {
			t.Errorf("%s: %s differs:\n  arca:   %q\n  python: %q", d.step, d.field, trunc(d.arca), trunc(d.python))
		}
	}
	t.Logf("backend differential: %d requests (each to both servers), %d fields compared, %d differences", requests, fields, len(diffs))
	for _, c := range slices.Sorted(maps.Keys(byClass)) {
		t.Logf("  %4d %s", byClass[c], c)
	}
	for _, e := range explained {
		for _, st := range e.steps {
			if !seen[e.doc+"\x00"+st] {
				t.Errorf("explained difference %q no longer occurs in step %q: remove it here and in docs/compatibility.md", e.doc, st)
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// startDiffPair starts the two servers under comparison, each on a
// device of its own below work, on rings of partPower in work/rings:
// arca-object-server and Swift's Python object server. swiftConf is their
// swift.conf (empty: the stack's), extra more [DEFAULT] lines for both.
func startDiffPair(t *testing.T, work string, partPower int, swiftConf, extra string) (arca, py diffTarget) {
	t.Helper()
	swiftDir := testenv.SwiftDir(t)
	ringDir := filepath.Join(work, "rings")
	arcaExtra := extra
	if swiftConf != "" {
		arcaExtra = "swift_conf = " + swiftConf + "\n" + extra
	}
	arca = startDiffArca(t, work, ringDir, arcaExtra)
	pyProc := testenv.StartPythonObjectServer(t, testenv.PythonObjectServer{
		Devices: filepath.Join(work, "python"), Device: "d2", RingDir: ringDir,
		SwiftConf: swiftConf, Extra: extra,
	})
	arcaPort, _ := strconv.Atoi(strings.TrimPrefix(arca.host, "127.0.0.1:"))
	testenv.WriteRings(t, swiftDir, ringDir, partPower, []int{arcaPort, pyProc.Port})
	py = diffTarget{name: "python", host: strings.TrimPrefix(pyProc.URL, "http://"), devices: filepath.Join(work, "python"), device: "d2"}
	return arca, py
}

// startDiffArca starts arca-object-server encrypting under keys of a
// noauth arca-api, on its own device d1; extra are more [DEFAULT] lines.
func startDiffArca(t *testing.T, work, ringDir, extra string) diffTarget {
	t.Helper()
	api := testenv.StartAPI(t, testenv.APIOptions{})
	devices := filepath.Join(work, "arca")
	if err := os.MkdirAll(filepath.Join(devices, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	conf := filepath.Join(work, "arca-object-server.conf")
	text := fmt.Sprintf(`[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
log_level = warning
%s[app:object-server]
[arca]
crypto_driver = objcrypt
crypto_protocol = aes_256_cbc
key_service_url = %s
key_service_noauth = true
`, devices, port, ringDir, extra, api.URL)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProc(t, testenv.NewLog(t, "arca-object-server"), filepath.Join(testenv.Binaries(t), "arca-object-server"), "--config-file", conf)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitHealthy(t, "http://"+host+"/healthcheck")
	keys, err := keyclient.New(keyclient.Options{NoAuth: true, Endpoint: api.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return diffTarget{name: "arca", host: host, devices: devices, device: "d1", listing: &listingOpener{keys}}
}

// TestBackendExplainedDiffsDocumented: every difference the backend
// differential explains names a heading of docs/compatibility.md ("The
// object server (backend protocol)") that gives its reason.
func TestBackendExplainedDiffsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## The object server (backend protocol)\n")
	if !ok {
		t.Fatal(`docs/compatibility.md has no "## The object server (backend protocol)" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, e := range slices.Concat(explainedDiffs, explainedECDiffs) {
		if !strings.Contains(section, "\n### "+e.doc+"\n") {
			t.Errorf("explained difference %q (steps %q): no heading \"### %s\" under the object server's section of docs/compatibility.md", e.doc, e.steps, e.doc)
		}
	}
}
