package swiftfilter

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/pickle"
)

// shapeEnv is one object tier (two arca-object-servers, arca-api) reached
// through both shapes of the filter: the reverse proxy in front of a Swift
// proxy, and the arca middleware in a Swift proxy's pipeline asking
// arca-swift-filter's decision socket.
type shapeEnv struct {
	stack       *testenv.ObjectStack
	decisions   *testenv.Proc
	shapes      map[string]string // shape name → base URL
	shapeNames  []string
	altTok, alt string
	wire        *backendWire
	ks          *testenv.KeystoneEnv
	// goKeys is the key service as both shapes' Go side (the reverse
	// proxy, the decision socket's process) reach it: cut, it is an
	// outage of their key lookups only; the object servers reach
	// arca-api directly.
	goKeys *testenv.TCPProxy
	// socket is the decision socket's path.
	socket string
	// upstream is the reverse proxy's Swift proxy (no arca in its
	// pipeline), upstreamConf its configuration and filter the reverse
	// proxy itself.
	upstream     *testenv.Proc
	upstreamURL  string
	upstreamConf string
	filter       *testenv.Proc
}

func startShapes(t *testing.T) *shapeEnv {
	t.Helper()
	work := t.TempDir()
	s := testenv.StartObjectStack(t, testenv.ClusterOptions{Work: work, PartPower: 4})
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	e := &shapeEnv{stack: s, ks: ks, shapes: map[string]string{}, shapeNames: []string{"reverse-proxy", "pipeline"}}
	e.altTok, e.alt = ks.ScopedToken(t, testenv.UserAlt)

	// Both shapes' proxies reach the object servers through recorders.
	e.wire = startBackendWire(t, swiftDir, work, s.Nodes)
	apiURL, err := url.Parse(s.API.URL)
	if err != nil {
		t.Fatal(err)
	}
	e.goKeys = testenv.StartTCPProxy(t, apiURL.Host)
	goKeysURL := "http://" + e.goKeys.Addr
	e.decisions, e.socket = testenv.StartDecisionSocket(t, ks, testenv.DecisionSocketOptions{Work: work, KeyServiceURL: goKeysURL})
	// Both proxies with tempurl and formpost, as Swift's sample has them.
	opts := testenv.ProxyOptions{TempURL: true}
	pp, purl := testenv.StartPipelineProxyWith(t, swiftDir, e.wire.RingDir, work, "pipeline-proxy", e.socket, opts)
	wp, wurl := testenv.StartWholePathProxyWith(t, swiftDir, e.wire.RingDir, work, "wholepath-proxy", opts)
	e.upstream, e.upstreamURL, e.upstreamConf = wp, wurl, filepath.Join(work, "wholepath-proxy.conf")
	pp.WaitHealthy(t, purl+"/healthcheck")
	wp.WaitHealthy(t, wurl+"/healthcheck")
	fp, furl := testenv.StartSwiftFilter(t, ks, testenv.SwiftFilterOptions{Work: work, Upstream: wurl, KeyServiceURL: goKeysURL})
	e.filter = fp
	e.shapes["pipeline"], e.shapes["reverse-proxy"] = purl, furl
	return e
}

func (e *shapeEnv) do(t *testing.T, method, url, token string, body []byte, hdr map[string][]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v // as spelt: the forged spellings must reach the server
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *shapeEnv) must(t *testing.T, want int, method, url, token string, body []byte, hdr map[string][]string) []byte {
	t.Helper()
	code, b := e.do(t, method, url, token, body, hdr)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, code, want, b)
	}
	return b
}

// activeKey is the project's active key id, as the object servers read it.
func (e *shapeEnv) activeKey(t *testing.T, project string) string {
	t.Helper()
	code, active := e.stack.KeyService(t, e.stack.ObjectToken, "GET", "/v1/project-keys/active?project_id="+project)
	id, _ := active["key_id"].(string)
	if code != 200 || id == "" {
		t.Fatalf("active key of %s: %d %v", project, code, active)
	}
	return id
}

// keyCount is how many keys the key service holds for project.
func (e *shapeEnv) keyCount(t *testing.T, project string) int {
	t.Helper()
	code, b := e.do(t, "GET", e.stack.API.URL+"/v1/project-keys?project_id="+project, e.stack.KeyAdminToken, nil, nil)
	if code != 200 {
		t.Fatalf("project keys of %s: %d %s", project, code, b)
	}
	return strings.Count(string(b), `"key_id"`)
}

// diskKeyIDs reads, from every .data file of the tier's object servers,
// the key id of each object whose name starts with prefix
// ("/AUTH_p/c/"), keyed by name; both replicas must agree.
func (e *shapeEnv) diskKeyIDs(t *testing.T, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range e.stack.Nodes {
		err := filepath.WalkDir(n.Devices, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".data") {
				return err
			}
			meta := readSwiftMetadata(t, path)
			name := meta["name"]
			if !strings.HasPrefix(name, prefix) {
				return nil
			}
			id := meta["X-Object-Sysmeta-Arca-Key-Id"]
			if prev, ok := out[name]; ok && prev != id {
				t.Errorf("%s: replicas disagree on the key id: %q and %q", name, prev, id)
			}
			out[name] = id
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readSwiftMetadata reads the pickled metadata Swift keeps in a data
// file's user.swift.metadata attributes (split over metadata1, 2 ...).
func readSwiftMetadata(t *testing.T, path string) map[string]string {
	t.Helper()
	all := testenv.SwiftMetadataPickle(t, path)
	m, err := pickle.StringMap(all)
	if err != nil {
		t.Fatalf("%s: metadata: %v", path, err)
	}
	return m
}

// forgedSpellings are the ways a client may spell X-Arca-Key-Id that Swift
// reads as it: any case, '_' for '-', repeated.
var forgedSpellings = map[string][]string{
	"X-Arca-Key-Id": {"forged-1", "forged-2"},
	"x-arca-key-id": {"forged-3"},
	"X_Arca_Key_Id": {"forged-4"},
	"X-ARCA_key-ID": {"forged-5"},
	"x_arca_key_id": {"forged-6"},
}

// TestRealStackShapes runs the same scenarios through both shapes of the
// filter on one object tier, and checks on disk which key each object is
// kept under: the owner's writes, their SLO segments and manifest,
// versioned writes' archived copies and COPY's destination all under the
// target account's active key, whatever key id the client forged.
func TestRealStackShapes(t *testing.T) {
	e := startShapes(t)
	s := e.stack
	demoAcct := "/v1/AUTH_" + s.Project
	altAcct := "/v1/AUTH_" + e.alt

	// Before anything has keyed alt: unauthorized writes create no key.
	t.Run("unauthorized PUTs create no key", func(t *testing.T) {
		for _, shape := range e.shapeNames {
			base := e.shapes[shape]
			invented := inventedProject(t)
			for _, c := range []struct {
				url, token string
				want       int
			}{
				{base + "/v1/AUTH_" + invented + "/c/o", "", http.StatusUnauthorized},
				{base + "/v1/AUTH_" + invented + "/c/o", s.Token, http.StatusForbidden},
				{base + altAcct + "/c/o", s.Token, http.StatusForbidden},
				{base + altAcct + "/c/o", "", http.StatusUnauthorized},
			} {
				if code, b := e.do(t, "PUT", c.url, c.token, []byte("x"), forgedSpellings); code != c.want {
					t.Errorf("%s: PUT %s: %d, want %d: %s", shape, c.url, code, c.want, b)
				}
			}
			if n := e.keyCount(t, invented); n != 0 {
				t.Errorf("%s: %d keys made for an invented project", shape, n)
			}
		}
		if n := e.keyCount(t, e.alt); n != 0 {
			t.Errorf("%d keys made for alt by writes Swift refused", n)
		}
	})

	for _, shape := range e.shapeNames {
		t.Run(shape, func(t *testing.T) {
			base := e.shapes[shape]
			cont := fmt.Sprintf("shape-%s-%d", shape, time.Now().UnixNano())
			n := e.wire.count()
			e.writesKeyed(t, base, demoAcct, altAcct, cont)
			e.checkWire(t, shape, n, cont)
			e.listingsOpen(t, shape, base, demoAcct, cont)
		})
	}
}

// checkWire checks what the object servers were sent for the shape's
// scenarios (since the n-th backend request): no forged key id, in any
// spelling, and only the canonical header; every key id the account's
// active key; in the pipeline shape, Swift's own subrequests (the
// archived version, COPY's PUT) keyed too.
func (e *shapeEnv) checkWire(t *testing.T, shape string, n int, cont string) {
	t.Helper()
	demoKey, altKey := e.activeKey(t, e.stack.Project), e.activeKey(t, e.alt)
	puts := e.wire.puts(n, cont)
	if len(puts) < 20 { // 10 writes, 2 replicas each
		t.Fatalf("%s: %d object PUTs recorded on the backend, want the scenarios' (>= 20)", shape, len(puts))
	}
	for _, p := range puts {
		want := demoKey
		if strings.Contains(p.path, "/AUTH_"+e.alt+"/") {
			want = altKey
		}
		for _, name := range p.names {
			if name != KeyIDHeader {
				t.Errorf("%s: PUT %s reached the object server with header %q", shape, p.path, name)
			}
		}
		for _, id := range p.keyIDs {
			if id != want {
				t.Errorf("%s: PUT %s reached the object server with key id %q, want none or %s", shape, p.path, id, want)
			}
		}
		subrequest := strings.Contains(p.path, cont+"-arch/") || strings.HasSuffix(p.path, cont+"/copied")
		if shape == "pipeline" && subrequest && len(p.keyIDs) != 1 {
			t.Errorf("pipeline: Swift's subrequest PUT %s reached the object server with key ids %q, want [%s]", p.path, p.keyIDs, want)
		}
	}
}

// writesKeyed is one shape's scenarios on container cont.
func (e *shapeEnv) writesKeyed(t *testing.T, base, demoAcct, altAcct, cont string) {
	s := e.stack
	demo := base + demoAcct
	e.must(t, 201, "PUT", demo+"/"+cont, s.Token, nil, nil)
	e.must(t, 201, "PUT", demo+"/"+cont+"/plain", s.Token, []byte("plain"), forgedSpellings)
	if b := e.must(t, 200, "GET", demo+"/"+cont+"/plain", s.Token, nil, nil); string(b) != "plain" {
		t.Fatalf("GET plain: %q", b)
	}
	demoKey := e.activeKey(t, s.Project)

	// SLO: two segments and the manifest.
	seg := cont + "-segs"
	e.must(t, 201, "PUT", demo+"/"+seg, s.Token, nil, nil)
	parts := [][]byte{bytes.Repeat([]byte("a"), 1<<20), []byte("tail")}
	var manifest []string
	for i, p := range parts {
		e.must(t, 201, "PUT", fmt.Sprintf("%s/%s/%d", demo, seg, i), s.Token, p, forgedSpellings)
		sum := md5.Sum(p)
		manifest = append(manifest, fmt.Sprintf(`{"path":"/%s/%d","etag":"%s","size_bytes":%d}`, seg, i, hex.EncodeToString(sum[:]), len(p)))
	}
	e.must(t, 201, "PUT", demo+"/"+cont+"/slo?multipart-manifest=put", s.Token, []byte("["+strings.Join(manifest, ",")+"]"), forgedSpellings)
	if b := e.must(t, 200, "GET", demo+"/"+cont+"/slo", s.Token, nil, nil); !bytes.Equal(b, bytes.Join(parts, nil)) {
		t.Errorf("SLO GET: %d bytes, want %d", len(b), len(parts[0])+len(parts[1]))
	}

	// Versioned writes: the overwritten version is archived by a subrequest.
	vers, arch := cont+"-v", cont+"-arch"
	e.must(t, 201, "PUT", demo+"/"+arch, s.Token, nil, nil)
	e.must(t, 201, "PUT", demo+"/"+vers, s.Token, nil, map[string][]string{"X-Versions-Location": {arch}})
	e.must(t, 201, "PUT", demo+"/"+vers+"/o", s.Token, []byte("v1"), nil)
	e.must(t, 201, "PUT", demo+"/"+vers+"/o", s.Token, []byte("v2"), forgedSpellings)

	// COPY within the account, and by alt out of demo's (read ACL) into alt's.
	e.must(t, 201, "COPY", demo+"/"+cont+"/plain", s.Token, nil, map[string][]string{"Destination": {cont + "/copied"}, "X_Arca_Key_Id": {"forged"}})
	e.must(t, 204, "POST", demo+"/"+cont, s.Token, nil, map[string][]string{"X-Container-Read": {e.alt + ":*"}, "X-Container-Write": {e.alt + ":*"}})
	// alt writes into demo's container through the ACL: no key id is
	// decided, so only stripping keeps the forged ones off the wire.
	e.must(t, 201, "PUT", demo+"/"+cont+"/by-alt", e.altTok, []byte("acl"), forgedSpellings)
	e.must(t, 201, "PUT", base+altAcct+"/"+cont, e.altTok, nil, nil)
	e.must(t, 201, "COPY", demo+"/"+cont+"/plain", e.altTok, nil, map[string][]string{
		"Destination": {cont + "/from-demo"}, "Destination-Account": {"AUTH_" + e.alt}, "X-Arca-Key-Id": {"forged"}})
	altKey := e.activeKey(t, e.alt)

	onDisk := e.diskKeyIDs(t, demoAcct[3:]+"/")
	want := []string{cont + "/plain", seg + "/0", seg + "/1", cont + "/slo", vers + "/o", cont + "/copied", cont + "/by-alt"}
	for _, name := range want {
		if id := onDisk[demoAcct[3:]+"/"+name]; id != demoKey {
			t.Errorf("%s kept under key %q, want demo's %s", name, id, demoKey)
		}
	}
	archived := 0
	for name, id := range onDisk {
		if strings.HasPrefix(name, demoAcct[3:]+"/"+arch+"/") {
			archived++
			if id != demoKey {
				t.Errorf("archived version %s kept under key %q, want demo's %s", name, id, demoKey)
			}
		}
	}
	if archived != 1 {
		t.Errorf("%d archived versions on disk, want 1", archived)
	}
	if id := e.diskKeyIDs(t, altAcct[3:]+"/")[altAcct[3:]+"/"+cont+"/from-demo"]; id != altKey {
		t.Errorf("COPY into alt's account kept under key %q, want alt's %s", id, altKey)
	}
}

// TestRealStackPipelineKeyIDs checks that the pipeline's subrequests get
// a key id of their own: the archived copy of a versioned write (a
// subrequest versioned_writes builds) reaches the object servers with the
// project's key id; that the middleware keeps a key id only as long as
// the filter's own cached entry (active_key_cache_ttl, 1 s here) and only
// for tokens of the project it was decided for; and that with the
// decision socket gone object writes whose key id is not kept and
// listings that hold sealed values answer 503 while reads, container
// writes and other listings go on.
func TestRealStackPipelineKeyIDs(t *testing.T) {
	e := startShapes(t)
	s := e.stack
	demoAcct := "/v1/AUTH_" + s.Project
	demo := e.shapes["pipeline"] + demoAcct
	cont := fmt.Sprintf("pipe-%d", time.Now().UnixNano())
	e.must(t, 201, "PUT", demo+"/"+cont+"-arch", s.Token, nil, nil)
	e.must(t, 201, "PUT", demo+"/"+cont, s.Token, nil, map[string][]string{
		"X-Versions-Location": {cont + "-arch"},
		"X-Container-Write":   {e.alt + ":*"},
	})
	e.must(t, 201, "PUT", demo+"/"+cont+"/o", s.Token, []byte("v1"), nil)
	key := e.activeKey(t, s.Project)
	// The filter's cached "no key yet" (error_cache_ttl) runs out.
	time.Sleep(1500 * time.Millisecond)
	n := e.wire.count()
	e.must(t, 201, "PUT", demo+"/"+cont+"/o", s.Token, []byte("v2"), nil)
	e.wantKeyIDs(t, "pipeline", n, demoAcct+"/"+cont+"/o", key, false)
	archived := e.wire.puts(n, "/"+cont+"-arch/")
	if len(archived) == 0 {
		t.Fatal("versioned_writes archived no copy")
	}
	for _, p := range archived {
		if len(p.keyIDs) != 1 || p.keyIDs[0] != key {
			t.Errorf("versioned_writes' archived copy %s reached the object server with key ids %q, want [%s]", p.path, p.keyIDs, key)
		}
	}

	// Kept: a burst of writes asks the decision socket about once (twice
	// if the filter's entry ends during it), and another project's token
	// writing through the container's ACL is still asked about, and gets
	// no key id from the owner's kept one.
	time.Sleep(1100 * time.Millisecond)
	keyAsks := func() int { return strings.Count(e.decisions.Log.String(), key) }
	before := keyAsks()
	const burst = 6
	for i := range burst {
		e.must(t, 201, "PUT", fmt.Sprintf("%s/%s/burst-%d", demo, cont, i), s.Token, []byte("b"), nil)
	}
	if got := keyAsks() - before; got < 1 || got > 2 {
		t.Errorf("%d decisions naming the key for %d writes in a row, want 1 (or 2 across the entry's end):\n%s",
			got, burst, e.decisions.Log.Tail(20))
	}
	strangers := strings.Count(e.decisions.Log.String(), "token's project does not own the account")
	n = e.wire.count()
	e.must(t, 201, "PUT", demo+"/"+cont+"/from-alt", e.altTok, []byte("a"), nil)
	e.wantKeyIDs(t, "pipeline", n, demoAcct+"/"+cont+"/from-alt", "", false)
	if got := strings.Count(e.decisions.Log.String(), "token's project does not own the account") - strangers; got != 1 {
		t.Errorf("alt's write through the ACL: %d decisions for a stranger, want 1 (never the owner's kept key id)", got)
	}
	// Past the entry's end the middleware asks again.
	time.Sleep(1100 * time.Millisecond)
	before = keyAsks()
	e.must(t, 201, "PUT", demo+"/"+cont+"/after", s.Token, []byte("c"), nil)
	if got := keyAsks() - before; got != 1 {
		t.Errorf("%d decisions naming the key for a write after the kept id's end, want 1", got)
	}

	// A token of the account's own project that Swift refuses to write
	// with (reader only): the middleware lets Swift authorize first, so
	// the decision socket is never asked and no key is looked up.
	readerTok, reader := e.ks.NewProjectUser(t, "reader")
	asked := strings.Count(e.decisions.Log.String(), "AUTH_"+reader)
	for _, shape := range e.shapeNames {
		if code, b := e.do(t, "PUT", e.shapes[shape]+"/v1/AUTH_"+reader+"/c/o", readerTok, []byte("x"), nil); code != http.StatusForbidden {
			t.Errorf("%s: a reader's PUT to its own project's account: %d, want 403: %s", shape, code, b)
		}
	}
	if n := strings.Count(e.decisions.Log.String(), "AUTH_"+reader) - asked; n != 0 {
		t.Errorf("the decision socket was asked %d times for a write Swift refuses", n)
	}
	if n := e.keyCount(t, reader); n != 0 {
		t.Errorf("%d keys for the reader's project", n)
	}

	// The socket gone, a key id kept lets its writes go on until the
	// filter's entry would have ended; then they answer 503.
	e.must(t, 201, "PUT", demo+"/"+cont+"/kept", s.Token, []byte("k"), nil)
	e.decisions.Stop()
	time.Sleep(1100 * time.Millisecond)
	code, b := e.do(t, "PUT", demo+"/"+cont+"/down", s.Token, []byte("x"), nil)
	if code != http.StatusServiceUnavailable {
		t.Errorf("object PUT with the decision socket down: %d, want 503: %s", code, b)
	}
	if b := e.must(t, 200, "GET", demo+"/"+cont+"/o", s.Token, nil, nil); string(b) != "v2" {
		t.Errorf("GET with the decision socket down: %q", b)
	}
	e.must(t, 200, "HEAD", demo+"/"+cont+"/o", s.Token, nil, nil)
	e.must(t, 201, "PUT", demo+"/"+cont+"-more", s.Token, nil, nil)
	e.must(t, 202, "POST", demo+"/"+cont+"/o", s.Token, nil, map[string][]string{"X-Object-Meta-A": {"b"}})
	// Fail closed: the listing's ETags cannot be opened. The pipeline's
	// listing_formats asks for JSON below it whatever the client asked.
	for _, q := range []string{"", "?format=json", "?format=xml"} {
		if code, b := e.do(t, "GET", demo+"/"+cont+q, s.Token, nil, nil); code != http.StatusServiceUnavailable {
			t.Errorf("listing%s with the decision socket down: %d, want 503: %s", q, code, b)
		}
	}
	e.must(t, 200, "GET", demo+"/"+cont+"-more?format=json", s.Token, nil, nil)
	e.must(t, 204, "DELETE", demo+"/"+cont+"-more", s.Token, nil, nil)
}
