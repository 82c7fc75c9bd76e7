package main

import (
	"slices"
	"strings"
	"testing"
)

func TestVerdicts(t *testing.T) {
	keys := func(arcaRPS, arcaP99, barbRPS float64) []KeyRow {
		return []KeyRow{
			{Scenario: "secret-store", Target: "arca", Concurrency: 1, RPS: 200, P99ms: 30},
			{Scenario: "secret-store", Target: "barbican", Concurrency: 1, RPS: 6},
			{Scenario: "secret-store", Target: "arca", Concurrency: 16, RPS: arcaRPS, P99ms: arcaP99},
			{Scenario: "secret-store", Target: "barbican", Concurrency: 16, RPS: barbRPS, P99ms: 900},
		}
	}
	obj := []ObjRow{
		{Target: "swift", Op: "PUT", Size: 4096, Concurrency: 16, RPS: 30, P50ms: 500},
		{Target: "arca", Op: "PUT", Size: 4096, Concurrency: 16, RPS: 28, P50ms: 520.5},
		{Target: "swift", Op: "GET", Size: 4096, Concurrency: 16, RPS: 50, P50ms: 300},
		{Target: "arca", Op: "GET", Size: 4096, Concurrency: 16, RPS: 50, P50ms: 299.5},
		{Target: "swift", Op: "PUT", Size: 16 << 20, Concurrency: 2, RPS: 8},
		{Target: "swift-encryption", Op: "PUT", Size: 16 << 20, Concurrency: 2, RPS: 3},
		{Target: "arca", Op: "PUT", Size: 16 << 20, Concurrency: 2, RPS: 4},
		{Target: "swift", Op: "GET", Size: 16 << 20, Concurrency: 2, RPS: 5},
		{Target: "arca", Op: "GET", Size: 16 << 20, Concurrency: 2, RPS: 4},
	}
	failed := slices.Clone(obj)
	for i := range failed {
		if failed[i].Target == "arca" {
			failed[i].Errors = 3
		}
	}
	mem := []MemRow{
		{Name: "arca-api", Procs: 1, RSSMiB: 20, HWMMiB: 21},
		{Name: "arca-object-server-1", Procs: 1, RSSMiB: 17.5, HWMMiB: 18.8},
		{Name: "arca-object-server-2", Procs: 1, RSSMiB: 17.6, HWMMiB: 18.9},
		{Name: "barbican", Procs: 2, RSSMiB: 140, HWMMiB: 140},
	}
	const info = "information, not a verdict"
	type row struct {
		issue          int
		target, figure string // target: a prefix; figure: exact
		verdict        string // a prefix
	}
	// In every report: the targets only make bench measures.
	always := []row{
		{3, "authenticated secret GETs within 1.5x", "- (Arca runs noauth here)", byMakeBench},
		{4, "project-key payloads at c=32", "-", byMakeBench},
		{5, "objcrypt: encrypt + MAC + MD5", "-", byMakeBench},
		{6, "object server, directly: 4 KiB >= 5x", "- (here through the Swift proxy, 4 KiB and 16 MiB)", byMakeBench},
		{10, "rewrap >= 2,000 objects/s", "-", byMakeBench},
	}
	for _, tc := range []struct {
		name  string
		keys  []KeyRow
		obj   []ObjRow
		mem   []MemRow
		want  []row
		count int // rows in all
	}{
		{
			name: "all met", keys: keys(3000, 8, 100), obj: obj, mem: mem, count: 11,
			want: []row{
				{2, "secret-store at c=16: Arca >= 20x Barbican req/s", "30.0x (3000 vs 100.0 req/s)", "**met**"},
				{2, "secret-store at c=16: Arca p99 < 10 ms", "8.00 ms", "**met**"},
				{6, "memory per in-flight request", "peak RSS arca-object-server-1 18.8 MiB, arca-object-server-2 18.9 MiB (objects up to 16 MiB at c=2 through them)", "not judged here"},
				{7, "added p50 per small request", "p50 arca - swift: PUT 4 KiB +20.5 ms, GET 4 KiB -0.5 ms", info},
				{7, "large PUT/GET through the filter >= 95 %", "arca / swift req/s: PUT 16 MiB 0.50x, GET 16 MiB 0.80x", info},
				// only PUT 16 MiB has a swift-encryption row
				{21, "end to end through the Swift proxy", "arca / swift-encryption: PUT 4 KiB not measured, GET 4 KiB not measured, " +
					"PUT 16 MiB 1.33x (4.0 req/s 0 MB/s vs 3.0 req/s 0 MB/s), GET 16 MiB not measured (target >= 1x each); " +
					"beside: swift without encryption PUT 16 MiB 8.0 req/s 0 MB/s", "**not met**"},
			},
		},
		{
			name: "key targets missed", keys: keys(981, 88.08, 50), obj: obj, mem: mem, count: 11,
			want: []row{
				{2, "secret-store at c=16: Arca >= 20x Barbican req/s", "19.6x (981 vs 50.0 req/s)", "**not met**"},
				{2, "secret-store at c=16: Arca p99 < 10 ms", "88.08 ms", "**not met**"},
			},
		},
		{
			name: "arca's object requests failed", keys: keys(3000, 8, 100), obj: failed, mem: mem[:1], count: 11,
			want: []row{
				{6, "memory per in-flight request", "no arca-object-server in the memory section", "not judged here"},
				{7, "added p50 per small request", "no arca and swift rows of that size without errors to compare", info},
				{7, "large PUT/GET through the filter", "no arca and swift rows of that size without errors to compare", info},
				{21, "end to end through the Swift proxy", "arca / swift-encryption: PUT 4 KiB not measured, GET 4 KiB not measured, " +
					"PUT 16 MiB errors: arca 3, swift-encryption 0, GET 16 MiB not measured (target >= 1x each)", "**not met**"},
			},
		},
		{
			name: "nothing measured", count: 10,
			want: []row{
				{2, "Arca >= 20x Barbican req/s, p99 < 10 ms at c=16", notMeasured, "-"},
				{6, "memory per in-flight request", notMeasured, "not judged here"},
				{7, "added p50 per small request", notMeasured, info},
				{21, "end to end through the Swift proxy", notMeasured, "-"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := verdicts(tc.keys, tc.obj, tc.mem)
			if len(got) != tc.count {
				t.Errorf("%d rows, want %d: %+v", len(got), tc.count, got)
			}
			if !slices.IsSortedFunc(got, func(a, b Verdict) int { return a.Issue - b.Issue }) {
				t.Errorf("rows not in issue order: %+v", got)
			}
			for _, w := range append(slices.Clone(always), tc.want...) {
				i := slices.IndexFunc(got, func(v Verdict) bool { return v.Issue == w.issue && strings.HasPrefix(v.Target, w.target) })
				switch {
				case i < 0:
					t.Errorf("no row for issue %d %q in %+v", w.issue, w.target, got)
				case got[i].Figure != w.figure || !strings.HasPrefix(got[i].Verdict, w.verdict):
					t.Errorf("issue %d %q: figure %q, verdict %q; want %q, %q...", w.issue, w.target, got[i].Figure, got[i].Verdict, w.figure, w.verdict)
				}
			}
			for _, v := range got {
				if strings.Contains(v.Target+v.Figure+v.Verdict, "|") {
					t.Errorf("a | would break the Markdown table: %+v", v)
				}
			}
		})
	}
}
