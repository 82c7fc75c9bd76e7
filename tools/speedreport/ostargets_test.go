package main

import (
	"strings"
	"testing"
	"time"
)

func TestOSTargetLines(t *testing.T) {
	servers := []osServer{{name: "arca encrypted"}, {name: "arca plaintext"}, {name: "swift (python, 2 workers)"}}
	// n requests of size bytes in one second, cpu of server CPU per request
	lr := func(n, size int, cpu time.Duration) loadResult {
		return loadResult{reqs: n, bytes: int64(n * size), dur: time.Second, serverCPU: cpu * time.Duration(n)}
	}
	const kib4, mib64 = 4 << 10, 64 << 20
	full := func(get, put time.Duration, put64 int) osResults {
		return osResults{
			{"arca encrypted", "GET", kib4}: lr(1000, kib4, get), {"arca encrypted", "PUT", kib4}: lr(1000, kib4, put),
			{"arca plaintext", "GET", kib4}: lr(1000, kib4, 80*time.Microsecond), {"arca plaintext", "PUT", kib4}: lr(1000, kib4, 500*time.Microsecond),
			{"swift (python, 2 workers)", "GET", kib4}: lr(100, kib4, 900*time.Microsecond), {"swift (python, 2 workers)", "PUT", kib4}: lr(100, kib4, 2*time.Millisecond),
			// put64 requests of 64 MiB in one second: put64 * 67 MB/s
			{"arca encrypted", "PUT", mib64}:            lr(put64, mib64, time.Second/time.Duration(put64)),
			{"swift (python, 2 workers)", "PUT", mib64}: lr(3, mib64, time.Second),
		}
	}
	for _, tc := range []struct {
		name   string
		res    osResults
		want   []string // prefixes of the lines, in order
		wantOK bool
	}{
		{"all met", full(120*time.Microsecond, 700*time.Microsecond, 6), []string{
			"PASS objectserver 4 KiB server CPU per request, arca encrypted: GET 120 µs (target <= 120 µs), PUT 700 µs (target <= 700 µs); 1000 GETs, 1000 PUTs; beside: arca plaintext GET 80 µs PUT 500 µs, swift (python, 2 workers) GET 900 µs PUT 2000 µs",
			"PASS objectserver 64 MiB PUT, arca encrypted: 403 MB/s (target >= 400 MB/s; 6 PUTs, server CPU 2.48 ns/B); beside: swift (python, 2 workers) 201 MB/s",
		}, true},
		{"GET over", full(121*time.Microsecond, 700*time.Microsecond, 6), []string{"FAIL objectserver 4 KiB", "PASS objectserver 64 MiB"}, false},
		{"PUT over", full(100*time.Microsecond, 701*time.Microsecond, 6), []string{"FAIL objectserver 4 KiB", "PASS objectserver 64 MiB"}, false},
		{"64 MiB slow", full(100*time.Microsecond, 600*time.Microsecond, 5), []string{"PASS objectserver 4 KiB", "FAIL objectserver 64 MiB PUT, arca encrypted: 336 MB/s"}, false},
		{"sizes left out", osResults{}, []string{
			"SKIP objectserver 4 KiB server CPU per request: 4 KiB not measured",
			"SKIP objectserver 64 MiB PUT: 64 MiB not measured",
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, ok := osTargetLines(servers, tc.res)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("lines %q; want %d", lines, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d:\n %q\nwant prefix\n %q", i, lines[i], w)
				}
			}
		})
	}
}
