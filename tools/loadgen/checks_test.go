package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseMaxCPU(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    Check
		wantErr bool
	}{
		{spec: "arca=100us", want: Check{Kind: checkMaxCPU, A: "arca", Process: "arca", Limit: 100 * time.Microsecond}},
		{spec: "secret-get-payload:arca/arca-noauth=100us",
			want: Check{Kind: checkMaxCPU, Scenario: ScenarioGetPayload, A: "arca", Process: "arca-noauth", Limit: 100 * time.Microsecond}},
		{spec: "secret-store:arca/arca-noauth=0.15ms",
			want: Check{Kind: checkMaxCPU, Scenario: ScenarioStore, A: "arca", Process: "arca-noauth", Limit: 150 * time.Microsecond}},
		// an unknown scenario prefix is part of the target name, as for the other checks
		{spec: "nosuch:arca=1ms", want: Check{Kind: checkMaxCPU, A: "nosuch:arca", Process: "nosuch:arca", Limit: time.Millisecond}},
		{spec: "arca", wantErr: true},
		{spec: "arca=100", wantErr: true},
		{spec: "arca=-1ms", wantErr: true},
		{spec: "=100us", wantErr: true},
		{spec: "/arca-noauth=100us", wantErr: true},
		{spec: "arca/a/b=100us", wantErr: true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := parseChecks(checkFlags{maxCPUs: []string{tc.spec}})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				if !strings.Contains(err.Error(), "-max-cpu") {
					t.Errorf("error %q does not name the flag", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// result is a measured target: n requests of latency lat, and the CPU
// ticks (1/100 s) of each watched process during them.
func result(sc, target string, n int, lat time.Duration, cpu CPUSample) *Result {
	r := &Result{Scenario: sc, Target: target, CPU: cpu, Elapsed: time.Second}
	for range n {
		r.Hist.Record(lat)
	}
	return r
}

func TestEvaluateMaxCPU(t *testing.T) {
	// 1,000 requests: 10 ticks (100 ms) of CPU is 100 µs per request.
	arca := func(ticks uint64) *Result {
		return result(ScenarioGetPayload, "arca", 1000, time.Millisecond, CPUSample{"arca-noauth": ticks, "barbican": 0})
	}
	barbican := result(ScenarioGetPayload, "barbican", 100, time.Second, CPUSample{"arca-noauth": 0, "barbican": 170})
	o := options{title: "a-core", concurrency: 16, scenarios: []string{ScenarioGetPayload}}
	for _, tc := range []struct {
		name    string
		spec    string
		results []*Result
		want    []string // substrings of the one line
	}{
		{"under the limit", "arca/arca-noauth=120us", []*Result{arca(10), barbican},
			[]string{"CHECK PASS a-core secret-get-payload: arca-noauth CPU per request of arca = 100µs (target <= 120µs, 1000 requests, closed loop c=16)",
				"; beside: barbican CPU per request 17.0ms"}},
		{"at the limit", "arca/arca-noauth=100us", []*Result{arca(10)}, []string{"CHECK PASS", "= 100µs (target <= 100µs"}},
		{"over the limit", "arca/arca-noauth=100us", []*Result{arca(11), barbican}, []string{"CHECK FAIL", "= 110µs (target <= 100µs"}},
		{"the process named like the target", "barbican=20ms", []*Result{arca(10), barbican},
			[]string{"CHECK PASS a-core secret-get-payload: barbican CPU per request of barbican = 17.0ms (target <= 20.0ms", "beside: arca CPU per request not measured"}},
		{"process not watched", "arca/arca-keystone=100us", []*Result{arca(10)},
			[]string{"CHECK SKIP a-core secret-get-payload: arca-keystone's CPU per request not measured"}},
		{"other scenario", "secret-store:arca/arca-noauth=1us", []*Result{arca(10)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if o.checks, err = parseChecks(checkFlags{maxCPUs: []string{tc.spec}}); err != nil {
				t.Fatal(err)
			}
			lines := evaluate(o, tc.results)
			if tc.want == nil {
				if len(lines) != 0 {
					t.Fatalf("lines %q; want none (the check is for another scenario)", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("lines %q; want one", lines)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("line %q\nlacks %q", lines[0], w)
				}
			}
		})
	}
}

// TestEvaluateShowsTheBaseline: a latency or rate check prints the same
// figure of the scenario's other targets beside its own, with the
// requests a target left unsent.
func TestEvaluateShowsTheBaseline(t *testing.T) {
	barbican := result(ScenarioStore, "barbican", 100, 4*time.Second, nil)
	barbican.Missed = 14372
	results := []*Result{result(ScenarioStore, "arca", 1000, 2*time.Millisecond, nil), barbican}
	o := options{title: "d-open-store", rate: 1500, concurrency: 32, scenarios: []string{ScenarioStore}}
	for _, tc := range []struct {
		flags checkFlags
		want  string
	}{
		{checkFlags{maxP99s: []string{"arca=5ms"}},
			"CHECK PASS d-open-store secret-store: arca p99 = 2.00ms (target < 5ms, open loop at 1500 req/s); beside: barbican p99 4.00s (14372 unsent)"},
		{checkFlags{maxP999s: []string{"arca=1ms"}},
			"CHECK FAIL d-open-store secret-store: arca p99.9 = 2.00ms (target < 1ms, open loop at 1500 req/s); beside: barbican p99.9 4.00s (14372 unsent)"},
		{checkFlags{minRPSs: []string{"arca=500"}},
			"CHECK PASS d-open-store secret-store: arca = 1000 req/s (target >= 500); beside: barbican 100 req/s"},
	} {
		var err error
		if o.checks, err = parseChecks(tc.flags); err != nil {
			t.Fatal(err)
		}
		lines := evaluate(o, results)
		if len(lines) != 1 || lines[0] != tc.want {
			t.Errorf("lines %q\nwant [%q]", lines, tc.want)
		}
	}
}
