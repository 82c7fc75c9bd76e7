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
// Swift user with a Keystone token to two deployments and compares what a
// Swift client reads of the answers:
//
//   - arca: arca-swift-filter → swift-proxy-server → two arca-object-servers
//     (with an arca-api of their own);
//   - swift: swift-proxy-server → the stack's Python object servers.
//
// Both proxies are written by testenv.WholePathProxyConfig from the stack's
// configuration and differ only in their object ring, so a difference is
// the object tier's or the filter's. Accounts and containers are the
// stack's for both: each target's containers have names of their own
// (pd-<tag>-a-NN, pd-<tag>-b-NN, the same length), normalized to {T}
// before comparing. Differences kept on purpose are in explainedDiffs,
// each pointing at docs/compatibility.md; any other fails the test.
func TestSwiftDiffWholePath(t *testing.T) {
	d := startDiffTargets(t)
	corpus := diffCorpus()
	results := make([][2][]exchange, len(corpus))
	var g errgroup.Group
	g.SetLimit(4)
	for i, c := range corpus {
		for ti := range d.targets {
			g.Go(func() error {
				results[i][ti] = d.run(ti, i, c)
				return nil
			})
		}
	}
	_ = g.Wait()

	var r diffReport
	for i, c := range corpus {
		var line []string
		for si := range c.steps {
			a, b := d.view(0, results[i][0][si]), d.view(1, results[i][1][si])
			r.compare(c.name, si, c.steps[si], a, b)
			line = append(line, statusPair(a.status, b.status))
		}
		// What each step answered, so that a reader sees the corpus
		// exercise what it means to (swift, or arca/swift where they differ).
		t.Logf("%s: %s", c.name, strings.Join(line, " "))
	}
	r.check(t)
}

// diffTarget is one of the two deployments.
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
	targets  [2]diffTarget
	demo     diffUser
	alt      diffUser
	deleteAt string
	// volatile are values of each target's answers that hold its container
	// names or times (the ETags of SLO manifests, which list their
	// segments' paths and times), replaced by a placeholder to compare.
	mu       sync.Mutex
	volatile [2]map[string]bool
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

// startDiffTargets brings up both deployments.
func startDiffTargets(t *testing.T) *diffTargets {
	t.Helper()
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "swift-proxy-server")
	work := t.TempDir()
	stack := testenv.StartObjectStack(t, testenv.ClusterOptions{Work: work, PartPower: 6})
	arcaProxy, arcaURL := testenv.StartWholePathProxy(t, swiftDir, stack.RingDir, work, "proxy-arca")
	swiftProxy, swiftURL := testenv.StartWholePathProxy(t, swiftDir, swiftDir, work, "proxy-swift")
	arcaProxy.WaitHealthy(t, arcaURL+"/healthcheck")
	swiftProxy.WaitHealthy(t, swiftURL+"/healthcheck")
	_, filterURL := testenv.StartSwiftFilter(t, ks, testenv.SwiftFilterOptions{Work: work, Upstream: arcaURL, KeyServiceURL: stack.API.URL})

	tag := testenv.RandomHex(t, 5)
	d := &diffTargets{t: t,
		targets: [2]diffTarget{
			{name: "arca", url: filterURL, prefix: "pd-" + tag + "-a"},
			{name: "swift", url: swiftURL, prefix: "pd-" + tag + "-b"},
		},
		demo:     diffUser{token: stack.Token, project: stack.Project},
		deleteAt: strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
	}
	d.alt.token, d.alt.project = ks.ScopedToken(t, testenv.UserAlt)
	t.Cleanup(func() { d.cleanup(arcaURL, swiftURL) })
	return d
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

// cleanup removes, best effort, every container of both targets (and
// what is in them, old versions included) from both accounts. What the
// arca target's own path cannot delete (should a fault leave something
// behind) goes through the plain proxy: a DELETE there of an object its
// object servers never had still removes the container's listing row.
func (d *diffTargets) cleanup(arcaProxy, swiftProxy string) {
	var wg sync.WaitGroup
	for i, proxy := range []string{arcaProxy, swiftProxy} {
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
	used             map[int]int
	// explained is every explained difference, logged with -v so that
	// what an entry covers can be read.
	explained []string
}

// compare compares one step's two answers field by field. A status
// difference explains every other field of the step, and a body
// difference the Content-Length: they follow from it.
func (r *diffReport) compare(caseName string, si int, s diffStep, a, b view) {
	if r.byClass == nil {
		r.byClass, r.used = map[string]int{}, map[int]int{}
	}
	r.requests += 2
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
		k := explain(diffSeen{caseName, si, s.M, f, v[0], v[1], a.status + "/" + b.status})
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
		line := fmt.Sprintf("%s step %d (%s %s %q) %s: arca=%q swift=%q",
			caseName, si, s.M, clip(s.P), clipAll(s.H), f, clip(v[0]), clip(v[1]))
		if k >= 0 {
			r.used[k]++
			r.byClass[explainedDiffs[k].class]++
			r.explained = append(r.explained, explainedDiffs[k].class+": "+line)
			continue
		}
		r.byClass["unexplained"]++
		r.unexplained = append(r.unexplained, line)
	}
}

// check logs the counts and fails on unexplained differences and on
// explained ones no longer seen.
func (r *diffReport) check(t *testing.T) {
	t.Helper()
	classes := make([]string, 0, len(r.byClass))
	for c, n := range r.byClass {
		classes = append(classes, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(classes)
	t.Logf("whole path: %d requests, %d compared fields, differences by class: %s", r.requests, r.fields, strings.Join(classes, " "))
	if testing.Verbose() {
		for _, e := range r.explained {
			t.Logf("explained difference (%s)", e)
		}
	}
	for _, u := range r.unexplained {
		t.Errorf("unexplained difference (fix it, or explain it in explainedDiffs and docs/compatibility.md): %s", u)
	}
	for k, e := range explainedDiffs {
		t.Logf("explained (%s) %d fields: %s", e.class, r.used[k], e.why)
		if r.used[k] == 0 && !e.sometimes {
			t.Errorf("explained difference no longer seen, remove it (and its docs/compatibility.md entry if any): %+v", e)
		}
	}
}

// statusPair is a step's statuses for the log: one when they agree.
func statusPair(arca, swift string) string {
	short := func(s string) string {
		if rest, ok := strings.CutPrefix(s, "no answer"); ok {
			s, _, _ = strings.Cut("none"+rest, ":")
		}
		return strings.ReplaceAll(s, " after ", "<")
	}
	if arca == swift {
		return short(swift)
	}
	return short(arca) + "/" + short(swift)
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
