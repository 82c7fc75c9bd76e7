package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Issue 21's object-server targets, judged on the first server of the
// report (arca encrypted) with every other server's same figure beside
// it: server CPU per 4 KiB request, and 64 MiB PUT MB/s. One line each,
// starting PASS, FAIL or SKIP (tools/bench-objectserver.sh puts them
// into make bench's summary).
const (
	osGetCPUTarget = 120 * time.Microsecond
	osPutCPUTarget = 700 * time.Microsecond
	osPut64Target  = 400 // MB/s
)

// osResults are a report's measurements by server name, op and size.
type osResults map[osKey]loadResult

type osKey struct {
	server, op string
	size       int
}

// cpuPerRequest is the server's CPU time per request.
func (r loadResult) cpuPerRequest() time.Duration {
	if r.reqs == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.reqs)
}

func (r loadResult) mbps() float64 { return float64(r.bytes) / r.dur.Seconds() / 1e6 }

// osTargetLines judges the targets; ok is false when one is missed (a
// target not measured, its size left out of -sizes, is a SKIP).
func osTargetLines(servers []osServer, res osResults) (lines []string, ok bool) {
	first, others := servers[0], servers[1:]
	ok = true
	verdict := func(pass bool) string {
		if pass {
			return "PASS"
		}
		ok = false
		return "FAIL"
	}
	const small, large = 4 << 10, 64 << 20

	get, okGet := res[osKey{first.name, "GET", small}]
	put, okPut := res[osKey{first.name, "PUT", small}]
	if okGet && okPut {
		g, p := get.cpuPerRequest(), put.cpuPerRequest()
		var beside []string
		for _, sv := range others {
			og, p1 := res[osKey{sv.name, "GET", small}]
			op, p2 := res[osKey{sv.name, "PUT", small}]
			if p1 && p2 {
				beside = append(beside, fmt.Sprintf("%s GET %s PUT %s", sv.name, fmtMicros(og.cpuPerRequest()), fmtMicros(op.cpuPerRequest())))
			}
		}
		lines = append(lines, fmt.Sprintf("%s objectserver 4 KiB server CPU per request, %s: GET %s (target <= %s), PUT %s (target <= %s); %d GETs, %d PUTs%s",
			verdict(g <= osGetCPUTarget && p <= osPutCPUTarget), first.name,
			fmtMicros(g), fmtMicros(osGetCPUTarget), fmtMicros(p), fmtMicros(osPutCPUTarget), get.reqs, put.reqs, besideList(beside)))
	} else {
		lines = append(lines, "SKIP objectserver 4 KiB server CPU per request: 4 KiB not measured (-sizes)")
	}

	if put64, found := res[osKey{first.name, "PUT", large}]; found {
		var beside []string
		for _, sv := range others {
			if r, found := res[osKey{sv.name, "PUT", large}]; found {
				beside = append(beside, fmt.Sprintf("%s %.0f MB/s", sv.name, r.mbps()))
			}
		}
		lines = append(lines, fmt.Sprintf("%s objectserver 64 MiB PUT, %s: %.0f MB/s (target >= %d MB/s; %d PUTs, server CPU %.2f ns/B)%s",
			verdict(put64.mbps() >= osPut64Target), first.name, put64.mbps(), osPut64Target, put64.reqs,
			float64(put64.serverCPU.Nanoseconds())/float64(max(put64.bytes, 1)), besideList(beside)))
	} else {
		lines = append(lines, "SKIP objectserver 64 MiB PUT: 64 MiB not measured (-sizes)")
	}
	return lines, ok
}

func besideList(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	return "; beside: " + strings.Join(parts, ", ")
}

func fmtMicros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// printOSTargets writes the target lines and returns errMissed when one
// is missed.
func printOSTargets(w io.Writer, servers []osServer, res osResults) error {
	lines, ok := osTargetLines(servers, res)
	fmt.Fprintf(w, "issue 21 targets (the first server, %s; the others beside it; load average %s):\n", servers[0].name, loadAvg())
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if !ok {
		return errMissed
	}
	return nil
}

// loadAvg is /proc/loadavg's first three fields ("-" where there is none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "-"
}
