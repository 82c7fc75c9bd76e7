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
)

// Check is one target figure, for every scenario of the run or, with a
// "SCENARIO:" prefix on the flag value, for that one only.
type Check struct {
	Kind     string
	Scenario string
	A, B     string // targets (B only for ratios)
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

func parseChecks(ratios, maxP99s, maxP999s, minRPSs []string) ([]Check, error) {
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
	return out, nil
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
				lines = append(lines, fmt.Sprintf("CHECK %s %s: %s %s = %s (target < %s%s)",
					passFail(v < c.Limit), prefix, c.A, name, fmtDur(v), c.Limit, o.paceNote()))
			case checkMinRPS:
				lines = append(lines, fmt.Sprintf("CHECK %s %s: %s = %.0f req/s (target >= %g)",
					passFail(a.RPS() >= c.Value), prefix, c.A, a.RPS(), c.Value))
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
