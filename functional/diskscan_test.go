package functional_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/pickle"
)

// scanScenario is what the disk scan looks for after its scenario: every
// plaintext MD5 clients saw and every user metadata value they set.
type scanScenario struct {
	t                 *testing.T
	stack             *testenv.ObjectStack
	filter, unreached string // the filter URLs: in front of the proxy, and of the proxy with an unreachable container replica
	cont              string
	secrets           []testenv.Secret
}

func (s *scanScenario) md5(name string, body []byte) string {
	sum := md5hex(body)
	s.secrets = append(s.secrets, testenv.MD5Secrets(name, sum)...)
	return sum
}

func (s *scanScenario) meta(name string) string {
	v := "scan-secret-" + name + "-" + testenv.RandomHex(s.t, 6)
	s.secrets = append(s.secrets, testenv.Secret{Name: "user metadata " + name, Value: v})
	return v
}

func (s *scanScenario) must(base, method, path string, body []byte, hdr map[string]string, want ...int) []byte {
	s.t.Helper()
	code, b := do(s.t, method, base+"/v1/AUTH_"+s.stack.Project+"/"+s.cont+path, s.stack.Token, body, hdr)
	if !slices.Contains(want, code) {
		s.t.Fatalf("%s %s: %d %.300s", method, path, code, b)
	}
	return b
}

// TestDiskScanWholePath runs a scenario through the whole path, in both
// shapes of arca on one object tier (arca-swift-filter in front of a real
// swift-proxy-server, and the arca middleware in one's pipeline asking
// the decision socket; arca-object-servers, the stack's container and
// account servers): a PUT with user metadata, a fast POST (.meta), an SLO
// (segments and manifest), a symlink, container listings in every
// format, and a PUT whose container update cannot reach one container
// replica (an async pending). Then every file under every device, object
// servers' and the stack's container and account servers' alike, is
// scanned (contents, extended attributes, database rows, queued database
// updates, async pendings) for the plaintext MD5s, in every encoding, and
// every user metadata value of both shapes' scenarios: none may be there.
// A secret planted afterwards in each kind of place must be found, so
// that the scan is known to look.
//
// The SLO manifest's X-Object-Sysmeta-Slo-Etag and
// X-Object-Sysmeta-Container-Update-Override-Etag are among the places: a
// first run of this test found them in the clear in the manifest's .data.
//
// The MD5 of the empty body (the symlink's) is public knowledge and says
// no more than the size, which stays in the clear: it is not looked for.
func TestDiskScanWholePath(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "swift-proxy-server")
	work := t.TempDir()
	stack := testenv.StartObjectStack(t, testenv.ClusterOptions{Work: work, PartPower: 6})
	deadRings := filepath.Join(work, "rings-unreachable")
	testenv.UnreachableContainerRing(t, swiftDir, stack.Cluster, deadRings)
	_, sock := testenv.StartDecisionSocket(t, ks, testenv.DecisionSocketOptions{Work: work, KeyServiceURL: stack.API.URL})
	// Per shape, its way in through a proxy on the tier's rings and
	// through one on the rings with an unreachable container replica.
	type entry struct {
		proc *testenv.Proc
		url  string
	}
	var proxies []entry
	start := func(p *testenv.Proc, url string) string {
		proxies = append(proxies, entry{p, url})
		return url
	}
	proxyURL := start(testenv.StartWholePathProxy(t, swiftDir, stack.RingDir, work, "proxy-scan"))
	proxy2URL := start(testenv.StartWholePathProxy(t, swiftDir, deadRings, work, "proxy-unreachable-container"))
	pipeURL := start(testenv.StartPipelineProxy(t, swiftDir, stack.RingDir, work, "pipeline-scan", sock))
	pipe2URL := start(testenv.StartPipelineProxy(t, swiftDir, deadRings, work, "pipeline-unreachable-container", sock))
	for _, p := range proxies {
		p.proc.WaitHealthy(t, p.url+"/healthcheck")
	}
	w1, w2 := filepath.Join(work, "filter1"), filepath.Join(work, "filter2")
	for _, d := range []string{w1, w2} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	_, filterURL := testenv.StartSwiftFilter(t, ks, testenv.SwiftFilterOptions{Work: w1, Upstream: proxyURL, KeyServiceURL: stack.API.URL})
	_, filter2URL := testenv.StartSwiftFilter(t, ks, testenv.SwiftFilterOptions{Work: w2, Upstream: proxy2URL, KeyServiceURL: stack.API.URL})
	all := &scanScenario{t: t, stack: stack}
	for _, sh := range []struct{ name, url, unreached string }{
		{shapeProxy, filterURL, filter2URL},
		{shapePipeline, pipeURL, pipe2URL},
	} {
		s := &scanScenario{t: t, stack: stack, filter: sh.url, unreached: sh.unreached, cont: "scan-" + sh.name + "-" + testenv.RandomHex(t, 5)}
		t.Cleanup(func() { s.cleanup() })
		want := s.run()
		s.checkListings(want)
		all.secrets = append(all.secrets, s.secrets...)
	}
	roots := []string{testenv.StackSwiftDevices(t)}
	for _, n := range stack.Nodes {
		roots = append(roots, n.Devices)
	}
	r := testenv.ScanAtRest(t, roots, all.secrets)
	t.Logf("scanned %d files, %d extended attributes, %d databases (rows), %d database .pending files, %d async pendings for %d secrets",
		r.Files, r.Xattrs, r.Databases, r.Pendings, r.AsyncPendings, len(all.secrets))
	for _, f := range r.Found {
		t.Errorf("at rest: %v%s", f, all.holders(f))
	}
	if r.AsyncPendings == 0 || r.Databases == 0 || r.Xattrs == 0 {
		t.Fatalf("the scan did not see every kind of place: %+v", r)
	}
	all.checkPlanted(roots)
}

// run is the scenario; it returns each object's plaintext MD5 as clients
// see it.
func (s *scanScenario) run() map[string]string {
	want := map[string]string{}
	s.must(s.filter, "PUT", "", nil, nil, 201, 202)
	body := []byte("the plain object " + testenv.RandomHex(s.t, 8))
	want["plain"] = s.md5("plain body", body)
	s.must(s.filter, "PUT", "/plain", body, map[string]string{"X-Object-Meta-Color": s.meta("put"), "X-Object-Meta-Second": s.meta("put2")}, 201)
	s.must(s.filter, "POST", "/plain", nil, map[string]string{"X-Object-Meta-Posted": s.meta("post")}, 202)

	var manifest []map[string]any
	var etags string
	for i := range 2 {
		seg := bytes.Repeat([]byte(testenv.RandomHex(s.t, 8)), 200*(i+1))
		name := fmt.Sprintf("seg%d", i)
		want[name] = s.md5(name+" body", seg)
		etags += want[name]
		s.must(s.filter, "PUT", "/"+name, seg, map[string]string{"X-Object-Meta-Seg": s.meta(name)}, 201)
		manifest = append(manifest, map[string]any{"path": "/" + s.cont + "/" + name, "etag": want[name], "size_bytes": len(seg)})
	}
	mb, _ := json.Marshal(manifest)
	sloEtag := s.md5("SLO ETag", []byte(etags))
	s.must(s.filter, "PUT", "/slo?multipart-manifest=put", mb, map[string]string{"X-Object-Meta-Slo": s.meta("slo")}, 201)
	want["slo"] = sloEtag

	s.must(s.filter, "PUT", "/link", []byte{}, map[string]string{"X-Symlink-Target": s.cont + "/plain", "X-Object-Meta-Link": s.meta("symlink")}, 201)

	// the update of one container replica fails: an async pending
	async := []byte("the async object " + testenv.RandomHex(s.t, 8))
	want["async"] = s.md5("async body", async)
	s.must(s.unreached, "PUT", "/async", async, map[string]string{"X-Object-Meta-Async": s.meta("async")}, 201)
	pendings := 0
	for _, n := range s.stack.Nodes {
		m, _ := filepath.Glob(filepath.Join(n.Devices, "*", "async_pending*", "*", "*"))
		pendings += len(m)
	}
	if pendings == 0 {
		s.t.Fatal("no async pending written for the unreachable container replica")
	}

	// what clients see is the plaintext, as from a Swift without encryption
	if got := s.head("/plain"); got.Get("Etag") != want["plain"] || got.Get("X-Object-Meta-Posted") == "" {
		s.t.Fatalf("HEAD plain: %v", got)
	}
	if got := s.head("/slo"); strings.Trim(got.Get("Etag"), `"`) != sloEtag {
		s.t.Fatalf("HEAD slo: ETag %s, want %s", got.Get("Etag"), sloEtag)
	}
	return want
}

func (s *scanScenario) head(path string) http.Header {
	s.t.Helper()
	req, err := http.NewRequest("HEAD", s.filter+"/v1/AUTH_"+s.stack.Project+"/"+s.cont+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.stack.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("HEAD %s: %d", path, resp.StatusCode)
	}
	return resp.Header
}

// checkListings lists the container in every format through the filter:
// JSON and XML show each object's plaintext MD5 (the filter opened the
// sealed hash), the SLO's slo_etag and the symlink's target, text the
// names. The SLO manifest's own MD5 the listing shows is a secret too.
func (s *scanScenario) checkListings(want map[string]string) {
	var entries []map[string]any
	for try := 0; ; try++ {
		b := s.must(s.filter, "GET", "?format=json", nil, nil, 200)
		if err := json.Unmarshal(b, &entries); err != nil {
			s.t.Fatalf("JSON listing: %v %.300s", err, b)
		}
		if len(entries) == len(want)+1 || try > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // a container update may still be on its way
	}
	seen := map[string]map[string]any{}
	for _, e := range entries {
		name, _ := e["name"].(string)
		seen[name] = e
		if h, _ := e["hash"].(string); h != "" && h != emptyMD5 {
			s.secrets = append(s.secrets, testenv.MD5Secrets("listing hash of "+name, h)...)
		}
	}
	for name, sum := range want {
		e, ok := seen[name]
		switch {
		case !ok:
			s.t.Errorf("JSON listing has no %s: %v", name, entries)
		case name == "slo":
			if e["slo_etag"] != `"`+sum+`"` {
				s.t.Errorf("JSON listing: slo_etag %v, want %q", e["slo_etag"], sum)
			}
		case e["hash"] != sum:
			s.t.Errorf("JSON listing: %s hash %v, want %s", name, e["hash"], sum)
		}
	}
	if e := seen["link"]; e == nil || e["symlink_path"] == nil {
		s.t.Errorf("JSON listing: symlink %v", e)
	}
	xml := string(s.must(s.filter, "GET", "?format=xml", nil, nil, 200))
	if !strings.Contains(xml, "<hash>"+want["plain"]+"</hash>") {
		s.t.Errorf("XML listing without plain's MD5: %.500s", xml)
	}
	text := string(s.must(s.filter, "GET", "", nil, nil, 200))
	for name := range want {
		if !slices.Contains(strings.Split(strings.TrimSpace(text), "\n"), name) {
			s.t.Errorf("text listing without %s: %q", name, text)
		}
	}
}

const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

// holders names the Swift metadata keys of a .data or .meta that hold a
// finding's secret, for the report.
func (s *scanScenario) holders(f testenv.Finding) string {
	if !strings.HasPrefix(f.Where, "xattr user.swift.metadata") {
		return ""
	}
	var value string
	for _, x := range s.secrets {
		if x.Name == f.Secret {
			value = x.Value
		}
	}
	md, err := pickle.StringMap(testenv.SwiftMetadataPickle(s.t, f.Path))
	if err != nil || value == "" {
		return ""
	}
	var keys []string
	for k, v := range md {
		if strings.Contains(v, value) || strings.Contains(k, value) {
			keys = append(keys, k)
		}
	}
	return fmt.Sprintf(" (metadata %v)", keys)
}

// checkPlanted plants secrets where the scan found none (an extended
// attribute of a .meta, one of a .data in upper-case hex, a file beside
// the async pendings in base64) and checks the scan finds each.
func (s *scanScenario) checkPlanted(roots []string) {
	n := s.stack.Nodes[0]
	metas, _ := filepath.Glob(filepath.Join(n.Devices, "*", "objects*", "*", "*", "*", "*.meta"))
	datas, _ := filepath.Glob(filepath.Join(n.Devices, "*", "objects*", "*", "*", "*", "*.data"))
	if len(metas) == 0 || len(datas) == 0 {
		s.t.Fatalf("no .meta (%d) or .data (%d) on %s", len(metas), len(datas), n.Devices)
	}
	secret := func(prefix string) testenv.Secret {
		for _, x := range s.secrets {
			if strings.HasPrefix(x.Name, prefix) {
				return x
			}
		}
		s.t.Fatalf("no secret %q", prefix)
		return testenv.Secret{}
	}
	posted, hexUp, b64 := secret("user metadata post"), secret("plain body (HEX)"), secret("async body (base64)")
	planted := map[string]string{metas[0]: posted.Name, datas[0]: hexUp.Name}
	for p, v := range map[string]string{metas[0]: posted.Value, datas[0]: hexUp.Value} {
		if err := unix.Setxattr(p, "user.scan.planted", []byte(v), 0); err != nil {
			s.t.Fatal(err)
		}
		defer func() { _ = unix.Removexattr(p, "user.scan.planted") }()
	}
	dir := filepath.Join(n.Devices, n.Device, "async_pending-planted")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "pickle")
	if err := os.WriteFile(f, []byte("\x80\x02}X\x06\x00\x00\x00X-Etag"+b64.Value), 0o600); err != nil {
		s.t.Fatal(err)
	}
	planted[f] = b64.Name
	r := testenv.ScanAtRest(s.t, roots, s.secrets)
	for p, name := range planted {
		if !slices.ContainsFunc(r.Found, func(f testenv.Finding) bool { return f.Path == p && f.Secret == name }) {
			s.t.Errorf("planted %s in %s, not found: %v", name, p, r.Found)
		}
	}
	for _, f := range r.Found {
		if _, ok := planted[f.Path]; !ok {
			s.t.Errorf("found where nothing was planted: %v", f)
		}
	}
}

// cleanup deletes what the scenario made (the container is on the shared
// stack's container servers).
func (s *scanScenario) cleanup() {
	for _, o := range []string{"plain", "seg0", "seg1", "slo", "link", "async"} {
		do(s.t, "DELETE", s.filter+"/v1/AUTH_"+s.stack.Project+"/"+s.cont+"/"+o, s.stack.Token, nil, nil)
	}
	do(s.t, "DELETE", s.filter+"/v1/AUTH_"+s.stack.Project+"/"+s.cont, s.stack.Token, nil, nil)
}
