package functional_test

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"opendev.org/x/arca/internal/testenv"
)

// TestSwiftDiffWholePath sends the corpus (swiftdiff_corpus_test.go) as a
// Swift user with a Keystone token to three deployments and compares what
// a Swift client reads of each arca shape's answers with plain Swift's:
//
//   - reverse-proxy: arca-swift-filter → swift-proxy-server → two
//     arca-object-servers (with an arca-api of their own);
//   - pipeline: swift-proxy-server with the arca middleware in its
//     pipeline (asking arca-swift-filter's decision socket) → the same
//     arca-object-servers;
//   - swift: swift-proxy-server → the stack's Python object servers.
//
// The proxies are written by testenv.WholePathProxyConfig from the stack's
// configuration and differ only in their object ring (and, for the
// pipeline shape, the arca middleware), so a difference is the object
// tier's or the filter's. Accounts and containers are the stack's for all:
// each target's containers have names of their own (pd-<tag>-a-NN,
// pd-<tag>-b-NN, pd-<tag>-c-NN, the same length), normalized to {T}
// before comparing. Differences kept on purpose are in explainedDiffs,
// each naming the shapes it holds for and pointing at
// docs/compatibility.md; any other fails the test, and so does one
// explained for a shape but not seen on it.
func TestSwiftDiffWholePath(t *testing.T) {
	start := time.Now()
	d := startDiffTargets(t)
	started := time.Now()
	corpus := diffCorpus()
	results := make([][numTargets][]exchange, len(corpus))
	var g errgroup.Group
	// Three targets, four cases at a time: the 2 cores are the limit, not
	// the proxies' workers.
	g.SetLimit(6)
	for i, c := range corpus {
		for ti := range d.targets {
			g.Go(func() error {
				results[i][ti] = d.run(ti, i, c)
				return nil
			})
		}
	}
	_ = g.Wait()
	t.Logf("whole path: targets started in %.1fs, corpus run on the three in %.1fs",
		started.Sub(start).Seconds(), time.Since(started).Seconds())

	var r diffReport
	for i, c := range corpus {
		var line []string
		for si := range c.steps {
			var v [numTargets]view
			for ti := range d.targets {
				v[ti] = d.view(ti, results[i][ti][si])
			}
			for _, ti := range arcaShapes {
				r.compare(d.targets[ti].name, c.name, si, c.steps[si], v[ti], v[targetSwift])
			}
			line = append(line, statusTriple(v[targetProxy].status, v[targetSwift].status, v[targetPipeline].status))
		}
		// What each step answered, so that a reader sees the corpus
		// exercise what it means to (swift, or reverse-proxy/swift/pipeline
		// where they differ).
		t.Logf("%s: %s", c.name, strings.Join(line, " "))
	}
	r.check(t)
}

// The targets, by index: the two shapes of arca and plain Swift, the
// reference both are compared with.
const (
	targetProxy = iota
	targetSwift
	targetPipeline
	numTargets
)

// Shape names, as explainedDiff.shapes spell them.
const (
	shapeProxy    = "reverse-proxy"
	shapePipeline = "pipeline"
)

// arcaShapes are the targets compared with plain Swift.
var arcaShapes = []int{targetProxy, targetPipeline}

// diffTarget is one of the deployments.
type diffTarget struct {
	name string
	url  string
	// prefix starts every container name of this target's.
	prefix string
}

// diffUser is who a step runs as.
type diffUser struct{ token, project string }

type diffTargets struct {
	t        *testing.T
	targets  [numTargets]diffTarget
	demo     diffUser
	alt      diffUser
	deleteAt string
	// volatile are values of each target's answers that hold its container
	// names or times (the ETags of SLO manifests, which list their
	// segments' paths and times), replaced by a placeholder to compare.
	mu       sync.Mutex
	volatile [numTargets]map[string]bool
}

// noteVolatile records the manifest ETags in x, an answer of target ti to s.
func (d *diffTargets) noteVolatile(ti int, s diffStep, x exchange) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.volatile[ti] == nil {
		d.volatile[ti] = map[string]bool{}
	}
	if v := x.header.Get("X-Manifest-Etag"); v != "" {
		d.volatile[ti][v] = true
	}
	slo := strings.EqualFold(x.header.Get("X-Static-Large-Object"), "true")
	if v := strings.Trim(x.header.Get("Etag"), `"`); v != "" && slo && strings.Contains(s.P, "multipart-manifest=get") {
		d.volatile[ti][v] = true
	}
}

// volatileValues are target ti's recorded volatile values.
func (d *diffTargets) volatileValues(ti int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for v := range d.volatile[ti] {
		out = append(out, v)
	}
	return out
}

// startDiffTargets brings up the three deployments. Both arca shapes
// share one object tier (and its arca-api); their containers' names keep
// them apart.
func startDiffTargets(t *testing.T) *diffTargets {
	t.Helper()
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "swift-proxy-server")
	work := t.TempDir()
	stack := testenv.StartObjectStack(t, testenv.ClusterOptions{Work: work, PartPower: 6})
	_, sock := testenv.StartDecisionSocket(t, ks, testenv.DecisionSocketOptions{Work: work, KeyServiceURL: stack.API.URL})
	arcaProxy, arcaURL := testenv.StartWholePathProxy(t, swiftDir, stack.RingDir, work, "proxy-arca")
	swiftProxy, swiftURL := testenv.StartWholePathProxy(t, swiftDir, swiftDir, work, "proxy-swift")
	pipeProxy, pipeURL := testenv.StartPipelineProxy(t, swiftDir, stack.RingDir, work, "proxy-pipeline", sock)
	arcaProxy.WaitHealthy(t, arcaURL+"/healthcheck")
	swiftProxy.WaitHealthy(t, swiftURL+"/healthcheck")
	pipeProxy.WaitHealthy(t, pipeURL+"/healthcheck")
	_, filterURL := testenv.StartSwiftFilter(t, ks, testenv.SwiftFilterOptions{Work: work, Upstream: arcaURL, KeyServiceURL: stack.API.URL})

	tag := testenv.RandomHex(t, 5)
	d := &diffTargets{t: t,
		targets: [numTargets]diffTarget{
			targetProxy:    {name: shapeProxy, url: filterURL, prefix: "pd-" + tag + "-a"},
			targetSwift:    {name: "swift", url: swiftURL, prefix: "pd-" + tag + "-b"},
			targetPipeline: {name: shapePipeline, url: pipeURL, prefix: "pd-" + tag + "-c"},
		},
		demo:     diffUser{token: stack.Token, project: stack.Project},
		deleteAt: strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
	}
	d.alt.token, d.alt.project = ks.ScopedToken(t, testenv.UserAlt)
	d.ensureAccounts(swiftURL)
	// Each target's containers are removed through a proxy with no arca
	// in front (the arca tier's plain proxy for both shapes).
	t.Cleanup(func() { d.cleanup([numTargets]string{arcaURL, swiftURL, arcaURL}, swiftURL) })
	return d
}

// ensureAccounts makes sure the demo's and alt's accounts exist before
// the corpus runs. On a fresh stack they do not: Swift's proxy then
// answers a HEAD of the account with the fake listing of account_autocreate
// (200, X-Put-Timestamp, no X-Account-Project-Domain-Id) until the first
// container PUT of any target creates it, so the account case's first
// step would compare an account that one target sees and another does
// not. A container PUT creates the account (as the corpus's would);
// the container goes at once.
func (d *diffTargets) ensureAccounts(swiftProxy string) {
	d.t.Helper()
	for _, u := range []diffUser{d.demo, d.alt} {
		c := swiftProxy + "/v1/AUTH_" + u.project + "/" + d.targets[targetSwift].prefix + "-account"
		if code, b := do(d.t, http.MethodPut, c, u.token, nil, nil); code != http.StatusCreated && code != http.StatusAccepted {
			d.t.Fatalf("creating the account AUTH_%s: PUT of a container: %d %s", u.project, code, b)
		}
		if code, b := do(d.t, http.MethodDelete, c, u.token, nil, nil); code != http.StatusNoContent {
			d.t.Fatalf("creating the account AUTH_%s: DELETE of the container: %d %s", u.project, code, b)
		}
	}
}

// run runs case i's script on target ti and returns its exchanges.
func (d *diffTargets) run(ti, i int, c diffCase) []exchange {
	target := d.targets[ti]
	vars := map[string]string{
		"{c}":        fmt.Sprintf("%s-%02d", target.prefix, i),
		"{acct}":     "AUTH_" + d.demo.project,
		"{altacct}":  "AUTH_" + d.alt.project,
		"{demoproj}": d.demo.project,
		"{altproj}":  d.alt.project,
		"{deleteAt}": d.deleteAt,
	}
	out := make([]exchange, len(c.steps))
	for si, s := range c.steps {
		time.Sleep(s.Wait)
		out[si] = roundTrip(target.url, d.wire(s, vars))
		if out[si].header != nil {
			d.noteVolatile(ti, s, out[si])
		}
		if name, header, ok := strings.Cut(s.Save, "="); ok && out[si].header != nil {
			vars["{$"+name+"}"] = out[si].header.Get(header)
		}
	}
	return out
}

// wire is step s as it goes on the wire, templates expanded with vars.
func (d *diffTargets) wire(s diffStep, vars map[string]string) wireRequest {
	expand := func(v string) string {
		for k, val := range vars {
			v = strings.ReplaceAll(v, k, val)
		}
		return v
	}
	target := expand(s.P)
	if !strings.HasPrefix(target, "/") {
		target = "/v1/" + target
	}
	r := wireRequest{method: s.M, target: target, body: []byte(expand(s.B)), mode: s.Mode}
	switch s.U {
	case "":
		r.header = append(r.header, [2]string{"X-Auth-Token", d.demo.token})
	case "alt":
		r.header = append(r.header, [2]string{"X-Auth-Token", d.alt.token})
	case "bad":
		r.header = append(r.header, [2]string{"X-Auth-Token", "gAAAAABnot-a-token-keystone-issued"})
	}
	for _, h := range s.H {
		name, value, _ := strings.Cut(h, ":")
		r.header = append(r.header, [2]string{name, strings.TrimSpace(expand(value))})
	}
	return r
}

// cleanup removes, best effort, every container of the targets (and what
// is in them, old versions included) from both accounts, each target's
// through proxies[ti]. What an arca tier's proxy cannot delete (should a
// fault leave something behind) goes through the plain Swift proxy
// swiftProxy: a DELETE there of an object its object servers never had
// still removes the container's listing row.
func (d *diffTargets) cleanup(proxies [numTargets]string, swiftProxy string) {
	var wg sync.WaitGroup
	for i, proxy := range proxies {
		for _, u := range []diffUser{d.demo, d.alt} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.emptyAccount(proxy, u, d.targets[i].prefix)
				if proxy != swiftProxy {
					d.emptyAccount(swiftProxy, u, d.targets[i].prefix)
				}
			}()
		}
	}
	wg.Wait()
}

// emptyAccount deletes u's containers whose names start with prefix.
func (d *diffTargets) emptyAccount(proxy string, u diffUser, prefix string) {
	acct := proxy + "/v1/AUTH_" + u.project
	call := func(method, url string, hdr ...string) (int, []byte) {
		h := map[string]string{}
		for _, kv := range hdr {
			k, v, _ := strings.Cut(kv, ": ")
			h[k] = v
		}
		return do(d.t, method, url, u.token, nil, h)
	}
	_, b := call("GET", acct+"?prefix="+prefix)
	for _, c := range strings.Fields(string(b)) {
		// One change a request: a container refuses a POST that turns
		// off a mode it never had.
		for _, h := range []string{"X-Remove-Versions-Location: x", "X-Remove-History-Location: x", "X-Versions-Enabled: false"} {
			call("POST", acct+"/"+c, h)
		}
		for range 5 {
			code, lb := call("GET", acct+"/"+c+"?versions&format=json")
			if code != http.StatusOK {
				code, lb = call("GET", acct+"/"+c+"?format=json")
			}
			names := jsonNames(lb)
			if code != http.StatusOK || len(names) == 0 {
				break
			}
			for _, n := range names {
				call("DELETE", acct+"/"+c+"/"+n)
			}
		}
		call("DELETE", acct+"/"+c)
	}
}

// jsonNames is the objects of a JSON listing as a path after the container:
// name%-encoded, with ?version-id= when the listing has versions.
func jsonNames(b []byte) []string {
	var items []struct {
		Name      string `json:"name"`
		VersionID string `json:"version_id"`
		Subdir    string `json:"subdir"`
	}
	if err := jsonUnmarshal(b, &items); err != nil {
		return nil
	}
	var out []string
	for _, it := range items {
		if it.Name == "" {
			continue
		}
		p := pathEscape(it.Name)
		if it.VersionID != "" && it.VersionID != "null" {
			p += "?version-id=" + it.VersionID
		}
		out = append(out, p)
	}
	return out
}

// diffReport gathers the comparisons.
type diffReport struct {
	requests, fields int
	byClass          map[string]int
	unexplained      []string
	// used counts the fields each explainedDiffs entry explained, by
	// shape.
	used map[usedKey]int
	// explained is every explained difference, logged with -v so that
	// what an entry covers can be read.
	explained []string
}

// usedKey is an explainedDiffs index and a shape.
type usedKey struct {
	k     int
	shape string
}

// compare compares one step's answers of an arca shape (a) and of plain
// Swift (b) field by field. A status difference explains every other field
// of the step, and a body difference the Content-Length: they follow from
// it.
func (r *diffReport) compare(shape, caseName string, si int, s diffStep, a, b view) {
	if r.byClass == nil {
		r.byClass, r.used = map[string]int{}, map[usedKey]int{}
	}
	r.requests++
	fields := map[string][2]string{"status": {a.status, b.status}, "body": {a.body, b.body}}
	for _, name := range unionKeys(a.header, b.header) {
		fields["header:"+name] = [2]string{a.header[name], b.header[name]}
	}
	names := make([]string, 0, len(fields))
	for f := range fields {
		if f != "status" && f != "body" {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	names = append([]string{"status", "body"}, names...)
	byStatus, byBody := -1, -1
	for _, f := range names {
		v := fields[f]
		r.fields++
		if v[0] == v[1] || f == "header:X-Delete-At" && closeInts(v[0], v[1], 5) {
			continue
		}
		k := explain(diffSeen{shape, caseName, si, s.M, f, v[0], v[1], a.status + "/" + b.status})
		switch {
		case k >= 0:
		case byStatus >= 0:
			k = byStatus
		case byBody >= 0 && f == "header:Content-Length":
			k = byBody
		}
		switch f {
		case "status":
			byStatus = k
		case "body":
			byBody = k
		}
		line := fmt.Sprintf("%s: %s step %d (%s %s %q) %s: arca=%q swift=%q",
			shape, caseName, si, s.M, clip(s.P), clipAll(s.H), f, clip(v[0]), clip(v[1]))
		if k >= 0 {
			r.used[usedKey{k, shape}]++
			r.byClass[shape+"/"+explainedDiffs[k].class]++
			r.explained = append(r.explained, explainedDiffs[k].class+": "+line)
			continue
		}
		r.byClass[shape+"/unexplained"]++
		r.unexplained = append(r.unexplained, line)
	}
}

// check logs the counts and fails on unexplained differences, on explained
// ones no longer seen on a shape they are explained for, and on entries
// that name no shape.
func (r *diffReport) check(t *testing.T) {
	t.Helper()
	classes := make([]string, 0, len(r.byClass))
	for c, n := range r.byClass {
		classes = append(classes, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(classes)
	t.Logf("whole path: %d comparisons of a shape's answer with Swift's, %d compared fields, differences by shape and class: %s",
		r.requests, r.fields, strings.Join(classes, " "))
	if testing.Verbose() {
		for _, e := range r.explained {
			t.Logf("explained difference (%s)", e)
		}
	}
	for _, u := range r.unexplained {
		t.Errorf("unexplained difference (fix it, or explain it for this shape in explainedDiffs and docs/compatibility.md): %s", u)
	}
	for k, e := range explainedDiffs {
		if len(e.shapes) == 0 {
			t.Errorf("explained difference names no shape (it explains nothing): %+v", e)
		}
		for _, shape := range e.shapes {
			n := r.used[usedKey{k, shape}]
			t.Logf("explained (%s, %s) %d fields: %s", e.class, shape, n, e.why)
			if n == 0 && !e.sometimes {
				t.Errorf("explained difference no longer seen on the %s shape, remove the shape from it (and from its docs/compatibility.md entry): %+v", shape, e)
			}
		}
	}
}

// statusTriple is a step's statuses for the log: one when they agree,
// else reverse-proxy/swift/pipeline.
func statusTriple(proxy, swift, pipeline string) string {
	short := func(s string) string {
		if rest, ok := strings.CutPrefix(s, "no answer"); ok {
			s, _, _ = strings.Cut("none"+rest, ":")
		}
		return strings.ReplaceAll(s, " after ", "<")
	}
	if proxy == swift && pipeline == swift {
		return short(swift)
	}
	return short(proxy) + "/" + short(swift) + "/" + short(pipeline)
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	return out
}

func closeInts(a, b string, tolerance int64) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return err1 == nil && err2 == nil && x-y <= tolerance && y-x <= tolerance
}

func clipAll(h []string) []string {
	if len(h) > 3 {
		return append(clipAll(h[:3]), fmt.Sprintf("(%d more)", len(h)-3))
	}
	out := make([]string, len(h))
	for i, v := range h {
		out[i] = clip(v)
	}
	return out
}

// clip keeps long bodies readable in a failure.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
