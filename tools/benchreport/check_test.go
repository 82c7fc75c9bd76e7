package main

import (
	"strings"
	"testing"
)

func TestE2ETargetLine(t *testing.T) {
	const small, large = 4 << 10, 16 << 20
	rows := func(arcaPUT4K float64, arcaErrors int) []ObjRow {
		return []ObjRow{
			{Target: "swift", Op: "PUT", Size: small, RPS: 150},
			{Target: "swift-encryption", Op: "PUT", Size: small, RPS: 100},
			{Target: "arca", Op: "PUT", Size: small, RPS: arcaPUT4K, Errors: arcaErrors},
			{Target: "swift", Op: "GET", Size: small, RPS: 400},
			{Target: "swift-encryption", Op: "GET", Size: small, RPS: 300},
			{Target: "arca", Op: "GET", Size: small, RPS: 330},
			{Target: "swift", Op: "PUT", Size: large, RPS: 8, MBps: 134},
			{Target: "swift-encryption", Op: "PUT", Size: large, RPS: 4, MBps: 67},
			{Target: "arca", Op: "PUT", Size: large, RPS: 5, MBps: 84},
			{Target: "swift", Op: "GET", Size: large, RPS: 10, MBps: 168},
			{Target: "swift-encryption", Op: "GET", Size: large, RPS: 5, MBps: 84},
			{Target: "arca", Op: "GET", Size: large, RPS: 6, MBps: 101},
		}
	}
	for _, tc := range []struct {
		name   string
		rows   []ObjRow
		want   []string // substrings
		wantOK bool
	}{
		{"all faster", rows(110, 0), []string{
			"PASS end to end through the Swift proxy, arca / swift-encryption req/s: PUT 4 KiB 1.10x (110 req/s vs 100 req/s), GET 4 KiB 1.10x (330 req/s vs 300 req/s), PUT 16 MiB 1.25x (5.0 req/s 84 MB/s vs 4.0 req/s 67 MB/s), GET 16 MiB 1.20x (6.0 req/s 101 MB/s vs 5.0 req/s 84 MB/s) (target >= 1x each)",
			"; beside: swift without encryption PUT 4 KiB 150 req/s, GET 4 KiB 400 req/s, PUT 16 MiB 8.0 req/s 134 MB/s, GET 16 MiB 10.0 req/s 168 MB/s",
		}, true},
		{"equal is met", rows(100, 0), []string{"PASS ", "PUT 4 KiB 1.00x"}, true},
		{"one slower", rows(99, 0), []string{"FAIL ", "PUT 4 KiB 0.99x (99 req/s vs 100 req/s)"}, false},
		{"arca errors", rows(200, 2), []string{"FAIL ", "PUT 4 KiB errors: arca 2, swift-encryption 0"}, false},
		{"a case missing", rows(110, 0)[3:], []string{"FAIL ", "PUT 4 KiB not measured", "GET 4 KiB 1.10x"}, false},
		{"nothing measured", nil, []string{"FAIL ", "PUT 4 KiB not measured, GET 4 KiB not measured, PUT 16 MiB not measured, GET 16 MiB not measured"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, ok := e2eTargetLine(tc.rows)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v (line %q)", ok, tc.wantOK, line)
			}
			if strings.Contains(line, "\n") {
				t.Errorf("line %q spans lines", line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("line %q\nlacks %q", line, w)
				}
			}
		})
	}
}
