package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func find(results []*Result, target string) *Result {
	for _, r := range results {
		if r.Target == target {
			return r
		}
	}
	return nil
}

// Check kinds.
const (
	checkRatio   = "ratio"
	checkMaxP99  = "max-p99"
	checkMaxP999 = "max-p99.9"
	checkMinRPS  = "min-rps"
	checkMaxCPU  = "max-cpu"
)

// Check is one target figure, for every scenario of the run or, with a
// "SCENARIO:" prefix on the flag value, for that one only.
type Check struct {
	Kind     string
	Scenario string
	A, B     string // targets (B only for ratios)
	Process  string // the -pid name whose CPU a max-cpu check reads
	Op       string // ">=" or "<=" for ratios
	Value    float64
	Limit    time.Duration
}

func (c Check) holds(v float64) bool {
	if c.Op == "<=" {
		return v <= c.Value
	}
	return v >= c.Value
}

// scoped splits an optional "SCENARIO:" prefix off a check.
func scoped(s string) (scenario, rest string) {
	if sc, r, ok := strings.Cut(s, ":"); ok && slices.Contains(scenarioNames, sc) {
		return sc, r
	}
	return "", s
}

// checkFlags are the command line's check flags, as given.
type checkFlags struct {
	ratios, maxP99s, maxP999s, minRPSs, maxCPUs []string
}

func parseChecks(f checkFlags) ([]Check, error) {
	ratios, maxP99s, maxP999s, minRPSs := f.ratios, f.maxP99s, f.maxP999s, f.minRPSs
	var out []Check
	for _, spec := range ratios {
		sc, s := scoped(spec)
		op := ">="
		lhs, rhs, ok := strings.Cut(s, op)
		if !ok {
			op = "<="
			lhs, rhs, ok = strings.Cut(s, op)
		}
		a, b, ok2 := strings.Cut(lhs, "/")
		v, err := strconv.ParseFloat(strings.TrimSuffix(rhs, "x"), 64)
		if !ok || !ok2 || err != nil || a == "" || b == "" {
			return nil, fmt.Errorf("-ratio %q: want A/B>=X or A/B<=X", s)
		}
		out = append(out, Check{Kind: checkRatio, Scenario: sc, A: a, B: b, Op: op, Value: v})
	}
	for kind, specs := range map[string][]string{checkMaxP99: maxP99s, checkMaxP999: maxP999s} {
		for _, spec := range specs {
			sc, s := scoped(spec)
			name, val, ok := strings.Cut(s, "=")
			d, err := time.ParseDuration(val)
			if !ok || err != nil || name == "" {
				return nil, fmt.Errorf("-%s %q: want NAME=DURATION", strings.ReplaceAll(kind, ".", ""), s)
			}
			out = append(out, Check{Kind: kind, Scenario: sc, A: name, Limit: d})
		}
	}
	for _, spec := range minRPSs {
		sc, s := scoped(spec)
		name, val, ok := strings.Cut(s, "=")
		v, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil || name == "" {
			return nil, fmt.Errorf("-min-rps %q: want NAME=N", s)
		}
		out = append(out, Check{Kind: checkMinRPS, Scenario: sc, A: name, Value: v})
	}
	for _, spec := range f.maxCPUs {
		c, err := parseMaxCPU(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// parseMaxCPU reads -max-cpu [SCENARIO:]TARGET[/PROCESS]=DURATION: the CPU
// time per request that the -pid process PROCESS (by default the one named
// like the target) spends while TARGET is measured. The process is named
// apart because the same server process is often watched under a name of
// its own (-pid arca-noauth=PID) while the target is called arca.
func parseMaxCPU(spec string) (Check, error) {
	sc, s := scoped(spec)
	lhs, val, ok := strings.Cut(s, "=")
	d, err := time.ParseDuration(val)
	target, process, _ := strings.Cut(lhs, "/")
	if process == "" {
		process = target
	}
	if !ok || err != nil || d <= 0 || target == "" || strings.Contains(process, "/") {
		return Check{}, fmt.Errorf("-max-cpu %q: want [SCENARIO:]TARGET[/PROCESS]=DURATION", spec)
	}
	return Check{Kind: checkMaxCPU, Scenario: sc, A: target, Process: process, Limit: d}, nil
}

// evaluate turns every check, for every scenario, into a "CHECK PASS|FAIL|
// SKIP" line that bench.sh collects into its summary.
func evaluate(o options, all []*Result) []string {
	var lines []string
	for _, sc := range o.scenarios {
		var results []*Result
		for _, r := range all {
			if r.Scenario == sc {
				results = append(results, r)
			}
		}
		for _, c := range o.checks {
			a := find(results, c.A)
			if a == nil || (c.Scenario != "" && c.Scenario != sc) {
				continue
			}
			prefix := fmt.Sprintf("%s %s", o.title, sc)
			if a.Skipped != "" {
				lines = append(lines, fmt.Sprintf("CHECK SKIP %s: %s not measured (%s)", prefix, c.A, a.Skipped))
				continue
			}
			switch c.Kind {
			case checkRatio:
				b := find(results, c.B)
				if b == nil {
					continue
				}
				if b.Skipped != "" || b.RPS() == 0 {
					lines = append(lines, fmt.Sprintf("CHECK SKIP %s: %s not measured", prefix, c.B))
					continue
				}
				ratio := a.RPS() / b.RPS()
				lines = append(lines, fmt.Sprintf("CHECK %s %s: %s/%s = %.1fx req/s (%.0f vs %.0f; target %s %gx)",
					passFail(c.holds(ratio)), prefix, c.A, c.B, ratio, a.RPS(), b.RPS(), c.Op, c.Value))
			case checkMaxP99, checkMaxP999:
				q, name := 0.99, "p99"
				if c.Kind == checkMaxP999 {
					q, name = 0.999, "p99.9"
				}
				v := a.Hist.Quantile(q)
				lines = append(lines, fmt.Sprintf("CHECK %s %s: %s %s = %s (target < %s%s)%s",
					passFail(v < c.Limit), prefix, c.A, name, fmtDur(v), c.Limit, o.paceNote(),
					beside(results, c.A, func(r *Result) string { return name + " " + fmtDur(r.Hist.Quantile(q)) + missedNote(r) })))
			case checkMinRPS:
				lines = append(lines, fmt.Sprintf("CHECK %s %s: %s = %.0f req/s (target >= %g)%s",
					passFail(a.RPS() >= c.Value), prefix, c.A, a.RPS(), c.Value,
					beside(results, c.A, func(r *Result) string { return fmt.Sprintf("%.0f req/s", r.RPS()) })))
			case checkMaxCPU:
				lines = append(lines, maxCPULine(o, c, prefix, a, results))
			}
		}
	}
	return lines
}

// paceNote says, beside a latency target, at what load it was measured.
func (o options) paceNote() string {
	if o.rate > 0 {
		return fmt.Sprintf(", open loop at %.0f req/s", o.rate)
	}
	return fmt.Sprintf(", closed loop c=%d", o.concurrency)
}

// beside describes, for a check line, the same figure of every other
// measured target of the scenario (its baseline, e.g. Barbican beside
// arca): "; beside: barbican p99 10.07s".
func beside(results []*Result, self string, figure func(*Result) string) string {
	var parts []string
	for _, r := range results {
		if r.Target != self && r.Skipped == "" && r.Hist.Count() > 0 {
			parts = append(parts, r.Target+" "+figure(r))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; beside: " + strings.Join(parts, ", ")
}

// missedNote says how many scheduled requests a target never sent: a
// latency of a target that fell behind its schedule is only part of it.
func missedNote(r *Result) string {
	if r.Missed == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d unsent)", r.Missed)
}

// maxCPULine judges a max-cpu check: the CPU per request of the watched
// process c.Process while target a was measured, with the SQL statements
// per request (-mysql) and, beside it, each other target's own process's
// CPU per request (a target watched under its own name, e.g. barbican).
func maxCPULine(o options, c Check, prefix string, a *Result, results []*Result) string {
	v, ok := a.CPU.perRequest(c.Process, a.Hist.Count())
	if !ok {
		return fmt.Sprintf("CHECK SKIP %s: %s's CPU per request not measured (no -pid %s=PID, or no /proc)", prefix, c.Process, c.Process)
	}
	line := fmt.Sprintf("CHECK %s %s: %s CPU per request of %s = %s (target <= %s, %d requests%s)",
		passFail(v <= c.Limit), prefix, c.Process, c.A, fmtDur(v), fmtDur(c.Limit), a.Hist.Count(), o.paceNote())
	if sql := sqlPerRequest(a.SQL, a.Hist.Count()); sql != "" {
		line += "; sql per request: " + sql
	}
	return line + beside(results, c.A, func(r *Result) string {
		if d, ok := r.CPU.perRequest(r.Target, r.Hist.Count()); ok {
			return "CPU per request " + fmtDur(d)
		}
		return "CPU per request not measured"
	})
}
