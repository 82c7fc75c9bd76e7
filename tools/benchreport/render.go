package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// KeyRow is one row of loadgen -json.
type KeyRow struct {
	Title       string  `json:"title"`
	Scenario    string  `json:"scenario"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Errors      uint64  `json:"errors"`
	Requests    uint64  `json:"requests"`
	Skipped     string  `json:"skipped"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func machine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GiB RAM", kb/1024/1024)
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs (%s)%s, Linux %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func metStr(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func humanSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// renderConfig is what `benchreport render`'s flags ask for.
type renderConfig struct {
	keys, obj, mem, md, png string
	loadBefore              string
	elapsed                 time.Duration
	notes                   string
}

func parseRenderFlags(args []string) renderConfig {
	var cfg renderConfig
	fs := flag.NewFlagSet("render", flag.ExitOnError)
	fs.StringVar(&cfg.keys, "keys", "", "comma-separated loadgen -json files")
	fs.StringVar(&cfg.obj, "obj", "", "benchreport obj output")
	fs.StringVar(&cfg.mem, "mem", "", "benchreport mem output")
	fs.StringVar(&cfg.md, "md", "docs/bench-report.md", "Markdown output")
	fs.StringVar(&cfg.png, "png", "docs/bench-report.png", "PNG output")
	fs.StringVar(&cfg.loadBefore, "load-before", "", "load average when the run began")
	fs.DurationVar(&cfg.elapsed, "elapsed", 0, "duration of the run")
	fs.StringVar(&cfg.notes, "notes", "", "extra lines for the set-up section (| separated)")
	_ = fs.Parse(args)
	return cfg
}

// renderInputs is what the measuring steps wrote; a file that cannot be
// read leaves its section out.
type renderInputs struct {
	keys []KeyRow
	obj  []ObjRow
	mem  []MemRow
}

func readRenderInputs(cfg renderConfig) renderInputs {
	var in renderInputs
	for _, f := range strings.Split(cfg.keys, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		var rs []KeyRow
		if err := readJSON(f, &rs); err != nil {
			fmt.Fprintf(os.Stderr, "render: %s: %v (section left out)\n", f, err)
			continue
		}
		in.keys = append(in.keys, rs...)
	}
	if cfg.obj != "" {
		if err := readJSON(cfg.obj, &in.obj); err != nil {
			fmt.Fprintf(os.Stderr, "render: %s: %v (section left out)\n", cfg.obj, err)
		}
	}
	if cfg.mem != "" {
		if err := readJSON(cfg.mem, &in.mem); err != nil {
			fmt.Fprintf(os.Stderr, "render: %s: %v (section left out)\n", cfg.mem, err)
		}
	}
	return in
}

// report is the Markdown being written, the chart's panels and the
// end-to-end comparisons that have no component target.
type report struct {
	w       strings.Builder
	compare []string
	panels  []Panel
}

// p writes one line of the report.
func (r *report) p(format string, a ...any) { fmt.Fprintf(&r.w, format+"\n", a...) }

func renderCmd(args []string) error {
	cfg := parseRenderFlags(args)
	in := readRenderInputs(cfg)
	var r report
	r.header(cfg)
	r.keySection(in.keys)
	r.objSection(in.obj)
	r.memSection(in.mem)
	r.targets(in)
	if err := os.WriteFile(cfg.md, []byte(r.w.String()), 0o644); err != nil {
		return err
	}
	if len(r.panels) > 0 {
		if err := drawChart(cfg.png, r.panels); err != nil {
			return err
		}
	}
	fmt.Print(r.w.String())
	return nil
}

// header: the title and the set-up the figures were measured on.
func (r *report) header(cfg renderConfig) {
	p := r.p
	p("# Comparison report: Arca beside Barbican 15 and Swift's own encryption")
	p("")
	p("Written by `make bench-report` (`tools/bench-report.sh`); do not edit by hand, run it again.")
	p("")
	p("- date: %s", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	p("- machine: %s", machine())
	p("- load average: %s at the start, %s at the end (above %d, other work competed for the CPUs)", cfg.loadBefore, loadavg(), runtime.NumCPU())
	if cfg.elapsed > 0 {
		p("- run time: %s", cfg.elapsed.Round(time.Second))
	}
	p("- the load generators run on the same machine and share its CPUs with every server: the figures are for client and servers together")
	for _, n := range strings.Split(cfg.notes, "|") {
		if n = strings.TrimSpace(n); n != "" {
			p("- %s", n)
		}
	}
	p("")
	p("![bar chart: key service req/s, object path MB/s, memory](%s)", filepath.Base(cfg.png))
	p("")
}

func (r *report) keySection(krows []KeyRow) {
	if len(krows) == 0 {
		return
	}
	p := r.p
	p("## Key service: Arca vs Barbican 15")
	p("")
	p("`tools/loadgen`, keep-alive connections, Arca `auth_strategy = noauth` on MariaDB, Barbican 15 under uwsgi with demo's Keystone token; targets measured in alternating rounds.")
	p("")
	p("| scenario | concurrency | Arca req/s | Barbican req/s | Arca/Barbican | Arca p50 / p99 ms | Barbican p50 / p99 ms |")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	var g1, g16 []Group
	for _, grp := range groupKeyRows(krows) {
		k, a, b := grp.key, grp.byTarget["arca"], grp.byTarget["barbican"]
		p("| %s | %d | %.0f | %.1f | %s | %.2f / %.2f | %.1f / %.1f |", k.sc, k.c, a.RPS, b.RPS, ratio(a.RPS, b.RPS), a.P50ms, a.P99ms, b.P50ms, b.P99ms)
		g := Group{Label: fmt.Sprintf("%s c%d", k.sc, k.c), Bars: []Bar{{"arca", a.RPS}, {"barbican 15", b.RPS}}}
		if k.c == 1 {
			g1 = append(g1, g)
		} else {
			g16 = append(g16, g)
		}
	}
	p("")
	r.panels = append(r.panels, Panel{Title: "key service req/s (log scale)", Unit: "req/s", Log: true, Groups: append(g1, g16...)})
}

// objOpSize is an object operation at one size.
type objOpSize struct {
	op   string
	size int
}

func (r *report) objSection(orows []ObjRow) {
	if len(orows) == 0 {
		return
	}
	p := r.p
	p("## Object path through the real Swift proxy")
	p("")
	p("Raw HTTP with demo's Keystone token, keep-alive; each object's body checked (MD5) on GET. `swift`: the stack's proxy (:8081), no encryption. `swift-encryption`: a private proxy with Swift's `keymaster` + `encryption` middleware, on the stack's rings and object server. `arca`: `arca-swift-filter` -> a private proxy -> two `arca-object-server`s (AES-256-CBC + HMAC, project keys from `arca-api`).")
	p("")
	p("| op | size | concurrency | swift req/s (MB/s) | swift-encryption req/s (MB/s) | arca req/s (MB/s) | arca / swift-encryption | arca / swift | p50 / p99 ms: swift, swift-encryption, arca |")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	var small, large []Group
	for _, grp := range groupRows(orows, func(r ObjRow) objOpSize { return objOpSize{r.Op, r.Size} }, func(r ObjRow) string { return r.Target }) {
		k := grp.key
		s, e, a := grp.byTarget["swift"], grp.byTarget["swift-encryption"], grp.byTarget["arca"]
		p("| %s | %s | %d | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %s | %s | %.1f/%.1f, %.1f/%.1f, %.1f/%.1f |",
			k.op, humanSize(k.size), a.Concurrency, s.RPS, s.MBps, e.RPS, e.MBps, a.RPS, a.MBps,
			ratio(a.RPS, e.RPS), ratio(a.RPS, s.RPS), s.P50ms, s.P99ms, e.P50ms, e.P99ms, a.P50ms, a.P99ms)
		lbl := fmt.Sprintf("%s %s", k.op, humanSize(k.size))
		if k.size >= 1<<20 {
			large = append(large, Group{Label: lbl, Bars: []Bar{{"swift", s.MBps}, {"swift-encryption", e.MBps}, {"arca", a.MBps}}})
		} else {
			small = append(small, Group{Label: lbl, Bars: []Bar{{"swift", s.RPS}, {"swift-encryption", e.RPS}, {"arca", a.RPS}}})
		}
		r.objErrors(k, s, e, a)
	}
	p("")
	p("The component targets of issues 6 (object server: 4 KiB >= 5x Python, 64 MiB PUT/GET MB/s) and 7 (filter: added p50 < 0.5 ms, large >= 95 %% of direct) are measured against the servers directly by `make bench` and `tools/bench-filter.sh`; through the whole proxy path the Python proxy sets the pace, so this table is the end-to-end view, not those targets (see Targets below).")
	p("")
	r.panels = append(r.panels, Panel{Title: "object path 4 KIB req/s through the swift proxy", Unit: "req/s", Groups: small},
		Panel{Title: "object path 16 MIB MB/s through the swift proxy", Unit: "MB/s", Groups: large})
}

// objErrors flags the rows of one operation and size that had failed
// requests, and notes Arca beside Swift's encryption when both are valid.
func (r *report) objErrors(k objOpSize, s, e, a ObjRow) {
	for _, row := range []ObjRow{s, e, a} {
		if row.Errors > 0 {
			r.p("")
			r.p("**%s %s on %s: %d failed requests** (e.g. %s): that row is not valid.", k.op, humanSize(k.size), row.Target, row.Errors, row.ErrorSample)
			r.p("")
		}
	}
	if a.RPS > 0 && e.RPS > 0 && a.Errors == 0 && e.Errors == 0 {
		r.compare = append(r.compare, fmt.Sprintf("%s %s: Arca / Swift encryption %.2fx req/s (Arca %s)", k.op, humanSize(k.size), a.RPS/e.RPS, map[bool]string{true: "ahead", false: "behind"}[a.RPS >= e.RPS]))
	}
}

func (r *report) memSection(mrows []MemRow) {
	if len(mrows) == 0 {
		return
	}
	p := r.p
	p("## Memory")
	p("")
	p("Resident set size of each service after the load, summed over the process and its children (uwsgi workers count for their master), from `/proc/PID/status` (VmRSS; peak: VmHWM).")
	p("")
	p("| service | processes | RSS MiB | peak RSS MiB |")
	p("| --- | ---: | ---: | ---: |")
	var groups []Group
	for _, m := range mrows {
		p("| %s | %d | %.1f | %.1f |", m.Name, m.Procs, m.RSSMiB, m.HWMMiB)
		groups = append(groups, Group{Label: m.Name, Bars: []Bar{{"RSS MiB", m.RSSMiB}, {"peak RSS MiB", m.HWMMiB}}})
	}
	p("")
	r.panels = append(r.panels, Panel{Title: "memory per service (MiB)", Unit: "MiB", Groups: groups})
}

// targets: the verdicts on the component issues' targets, then the
// end-to-end comparisons.
func (r *report) targets(in renderInputs) {
	p := r.p
	p("## Targets")
	p("")
	p("The component issues' targets: judged where this run measures the same thing, shown as information where it only measures something like it, and pointed to `make bench` where only that measures it.")
	p("")
	p("| issue | target | this run | verdict |")
	p("| ---: | --- | --- | --- |")
	for _, v := range verdicts(in.keys, in.obj, in.mem) {
		p("| %d | %s | %s | %s |", v.Issue, v.Target, v.Figure, v.Verdict)
	}
	if len(r.compare) > 0 {
		p("")
		p("End to end, Arca's encrypted object path beside Swift's own encryption (issue 21's target, judged in the table above):")
		p("")
		for _, c := range r.compare {
			p("- %s", c)
		}
	}
}

// rowGroup is the rows that share a key (a scenario and concurrency, an
// operation and size), one per target.
type rowGroup[K comparable, R any] struct {
	key      K
	byTarget map[string]R
}

// groupRows groups rows by key, keys in the order they first appear, so
// that every table lists its rows as they were measured.
func groupRows[K comparable, R any](rows []R, key func(R) K, target func(R) string) []rowGroup[K, R] {
	var groups []rowGroup[K, R]
	at := map[K]int{}
	for _, r := range rows {
		k := key(r)
		i, ok := at[k]
		if !ok {
			i = len(groups)
			at[k] = i
			groups = append(groups, rowGroup[K, R]{key: k, byTarget: map[string]R{}})
		}
		groups[i].byTarget[target(r)] = r
	}
	return groups
}

// keyScenario is a key-service scenario at one concurrency.
type keyScenario struct {
	sc string
	c  int
}

// groupKeyRows groups the key-service rows by scenario and concurrency.
func groupKeyRows(rows []KeyRow) []rowGroup[keyScenario, KeyRow] {
	return groupRows(rows, func(r KeyRow) keyScenario { return keyScenario{r.Scenario, r.Concurrency} },
		func(r KeyRow) string { return r.Target })
}
