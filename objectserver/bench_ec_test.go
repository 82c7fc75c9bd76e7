package objectserver_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// ecLeg is one object tier of BenchmarkRealStackEC64MiB.
type ecLeg struct {
	name   string
	python []int // Python nodes (all six, or none)
	// swiftCrypto puts Swift's own encryption (keymaster + encryption)
	// in the proxy's pipeline.
	swiftCrypto bool
}

var ecLegs = []ecLeg{
	{name: "arca"},
	{name: "python", python: []int{0, 1, 2, 3, 4, 5}},
	{name: "swift-encryption", python: []int{0, 1, 2, 3, 4, 5}, swiftCrypto: true},
}

// ecFigures are one leg's figures for one operation, from its last run.
type ecFigures struct {
	mbps             float64
	nodesMS, proxyMS float64 // CPU per request, ms
}

// BenchmarkRealStackEC64MiB PUTs and GETs a 64 MiB object through the
// real Swift proxy on a 4+2 EC policy (1 MiB EC segments, Swift's
// default), one request at a time, on three object tiers: six
// arca-object-servers; six of Swift's Python object servers; and six
// Python ones with Swift's own encryption in the proxy (keymaster and
// encryption middleware, testenv.WithSwiftEncryption, the same set-up as
// make bench-report's swift-encryption proxy). Besides ns/op and MB/s it
// reports the CPU per request of the six object servers together
// (nodes-cpu-ms/op) and of the proxy (proxy-cpu-ms/op), from /proc; at
// the end it prints the three legs side by side with the load average
// before and after, and one PASS/FAIL line for issue 19's goal: Arca not
// slower than Swift's own encryption, PUT and GET. tools/bench-objectserver.sh
// runs it under make bench.
func BenchmarkRealStackEC64MiB(b *testing.B) {
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	load0 := loadAverage()
	start := time.Now()
	figs := map[string]ecFigures{}
	for _, leg := range ecLegs {
		s := newECStackOpts(b, 1<<20, leg.swiftCrypto, leg.python...)
		tag := make([]byte, 4)
		_, _ = rand.Read(tag)
		cont := "bench-ec-" + hex.EncodeToString(tag)
		if resp, _ := s.do("PUT", "/"+cont, nil, nil); resp.StatusCode/100 != 2 {
			b.Fatalf("container PUT: %s", resp.Status)
		}
		for _, op := range []string{"PUT", "GET"} {
			b.Run(leg.name+"/"+op, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				if op == "GET" {
					if resp, _ := s.do("PUT", "/"+cont+"/o", data, nil); resp.StatusCode != http.StatusCreated {
						b.Fatalf("PUT: %s", resp.Status)
					}
				}
				nodes0, proxy0 := s.nodesCPU(), testenv.ProcCPU(s.Proxy.Pid())
				t0 := time.Now()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var resp *http.Response
					var got []byte
					if op == "PUT" {
						resp, _ = s.do("PUT", "/"+cont+"/o", data, nil)
					} else {
						resp, got = s.do("GET", "/"+cont+"/o", nil, nil)
					}
					if resp.StatusCode/100 != 2 || (op == "GET" && !bytes.Equal(got, data)) {
						b.Fatalf("%s: %s", op, resp.Status)
					}
				}
				b.StopTimer()
				el := time.Since(t0)
				f := ecFigures{
					mbps:    float64(len(data)) * float64(b.N) / el.Seconds() / 1e6,
					nodesMS: float64(s.nodesCPU()-nodes0) / float64(time.Millisecond) / float64(b.N),
					proxyMS: float64(testenv.ProcCPU(s.Proxy.Pid())-proxy0) / float64(time.Millisecond) / float64(b.N),
				}
				figs[leg.name+" "+op] = f
				b.ReportMetric(f.nodesMS, "nodes-cpu-ms/op")
				b.ReportMetric(f.proxyMS, "proxy-cpu-ms/op")
			})
		}
		s.checkSwiftCrypto(b, leg, cont)
	}
	printECLegs(figs, load0, loadAverage(), time.Since(start))
}

// checkSwiftCrypto checks that the leg's archives are what it says: with
// Swift's own encryption, the archives' metadata carries the encryption
// middleware's body key; without it, none does. A proxy whose pipeline
// lost the keymaster would measure plain Python nodes under the name of
// Swift's encryption.
func (s *ecStack) checkSwiftCrypto(b *testing.B, leg ecLeg, cont string) {
	b.Helper()
	if len(leg.python) == 0 {
		return
	}
	archives := 0
	for _, paths := range s.fragFiles(cont, "o") {
		if p := dataFileOf(paths); p != "" {
			archives++
			_, has := readXattrMeta(b, p)["X-Object-Sysmeta-Crypto-Body-Meta"]
			if has != leg.swiftCrypto {
				b.Fatalf("%s: archive %s has Swift's body crypto metadata: %v", leg.name, p, has)
			}
		}
	}
	if archives == 0 {
		b.Fatalf("%s: no fragment archive found", leg.name)
	}
}

// printECLegs prints the legs side by side and issue 19's verdict.
func printECLegs(figs map[string]ecFigures, load0, load1 string, el time.Duration) {
	if len(figs) < 2*len(ecLegs) {
		return // a -bench filter ran only some legs
	}
	fmt.Printf("ec64 64 MiB through the proxy, 4+2 EC, one request at a time (%s); load average %s before, %s after\n",
		el.Round(time.Second), load0, load1)
	fmt.Printf("ec64 %-17s %-4s %9s %16s %16s\n", "leg", "op", "MB/s", "nodes CPU ms/req", "proxy CPU ms/req")
	for _, leg := range ecLegs {
		for _, op := range []string{"PUT", "GET"} {
			f := figs[leg.name+" "+op]
			fmt.Printf("ec64 %-17s %-4s %9.1f %16.0f %16.0f\n", leg.name, op, f.mbps, f.nodesMS, f.proxyMS)
		}
	}
	verdict := "PASS"
	var why []string
	for _, op := range []string{"PUT", "GET"} {
		a, e := figs["arca "+op], figs["swift-encryption "+op]
		why = append(why, fmt.Sprintf("%s %.1f vs %.1f MB/s (%.2fx), CPU %.0f vs %.0f ms/req", op, a.mbps, e.mbps, a.mbps/e.mbps,
			a.nodesMS+a.proxyMS, e.nodesMS+e.proxyMS))
		if a.mbps < e.mbps {
			verdict = "FAIL"
		}
	}
	fmt.Printf("ec64 %s Arca not slower than Swift's own encryption: %s\n", verdict, strings.Join(why, "; "))
	// MB/s on a shared machine moves with the other load; the CPU each
	// request costs (nodes and proxy) moves much less.
	a, e := figs["arca PUT"], figs["swift-encryption PUT"]
	ag, eg := figs["arca GET"], figs["swift-encryption GET"]
	fmt.Printf("ec64 CPU per request, nodes + proxy, Arca / Swift's own encryption: PUT %.2fx, GET %.2fx (information)\n",
		(a.nodesMS+a.proxyMS)/(e.nodesMS+e.proxyMS), (ag.nodesMS+ag.proxyMS)/(eg.nodesMS+eg.proxyMS))
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// newECStackOpts is newECStack with another EC segment size, and Swift's
// own encryption in the proxy when swiftCrypto is set.
func newECStackOpts(t testing.TB, seg int, swiftCrypto bool, pythonNodes ...int) *ecStack {
	t.Helper()
	old := ecSegmentSize
	ecSegmentSize = seg
	defer func() { ecSegmentSize = old }()
	return newECStackWith(t, swiftCrypto, pythonNodes...)
}

// nodesCPU is the CPU the object servers have used (all their threads,
// from the scheduler's counters: testenv.ProcCPU).
func (s *ecStack) nodesCPU() time.Duration {
	var total time.Duration
	for _, n := range s.Nodes {
		total += testenv.ProcCPU(n.Proc.Pid())
	}
	return total
}

// BenchmarkRealStackECPutAB compares the CPU the six arca-object-servers
// spend per 64 MiB EC PUT (4+2, 1 MiB segments, through the real proxy)
// between this checkout and earlier commits, ARCA_EC_AB_BASE (one or
// several, comma-separated; skipped without it): a stack each, side by
// side, PUTs in alternating rounds (base, this, base, this, ...) so that
// all see the same load. Per PUT it
// reports the nodes' CPU and context switches (all threads, /proc) and
// MB/s, per round and as medians, with the load average: the CPU and the
// switches move much less with the machine's other work than MB/s does.
// ARCA_EC_AB_ROUNDS (default 4) rounds of ARCA_EC_AB_PUTS (default 3).
func BenchmarkRealStackECPutAB(b *testing.B) {
	base := os.Getenv("ARCA_EC_AB_BASE")
	if base == "" {
		b.Skip("ARCA_EC_AB_BASE (a commit to compare with) is not set")
	}
	rounds, puts := envInt("ARCA_EC_AB_ROUNDS", 4), envInt("ARCA_EC_AB_PUTS", 3)
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	type side struct {
		name string
		s    *ecStack
		cont string
		cpu  []float64 // ms per PUT, per round
		csw  []float64 // context switches per PUT, per round
		mbps []float64
	}
	start := func(name, bins string) *side {
		ecBinaries = bins
		defer func() { ecBinaries = "" }()
		s := newECStackOpts(b, 1<<20, false)
		tag := make([]byte, 4)
		_, _ = rand.Read(tag)
		cont := "bench-ecab-" + hex.EncodeToString(tag)
		if resp, _ := s.do("PUT", "/"+cont, nil, nil); resp.StatusCode/100 != 2 {
			b.Fatalf("container PUT: %s", resp.Status)
		}
		return &side{name: name, s: s, cont: cont}
	}
	var sides []*side
	for _, c := range strings.Split(base, ",") {
		sides = append(sides, start(c, testenv.ReleaseBinaries(b, c)))
	}
	sides = append(sides, start("this checkout", ""))
	// One PUT each first: caches, keys, the page cache's first pages.
	for _, sd := range sides {
		if resp, _ := sd.s.do("PUT", "/"+sd.cont+"/o", data, nil); resp.StatusCode != http.StatusCreated {
			b.Fatalf("%s: PUT: %s", sd.name, resp.Status)
		}
	}
	load0 := loadAverage()
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for _, sd := range sides {
			cpu0, csw0, t0 := sd.s.nodesCPU(), sd.s.nodesSwitches(), time.Now()
			for i := 0; i < puts; i++ {
				if resp, _ := sd.s.do("PUT", "/"+sd.cont+"/o", data, nil); resp.StatusCode != http.StatusCreated {
					b.Fatalf("%s: PUT: %s", sd.name, resp.Status)
				}
			}
			el := time.Since(t0)
			sd.cpu = append(sd.cpu, float64(sd.s.nodesCPU()-cpu0)/float64(time.Millisecond)/float64(puts))
			sd.csw = append(sd.csw, float64(sd.s.nodesSwitches()-csw0)/float64(puts))
			sd.mbps = append(sd.mbps, float64(len(data))*float64(puts)/el.Seconds()/1e6)
			fmt.Printf("ecab round %d %-22s nodes CPU %6.0f ms/PUT  switches %7.0f /PUT  %6.1f MB/s  load %s\n",
				r+1, sd.name, sd.cpu[r], sd.csw[r], sd.mbps[r], loadAverage())
		}
	}
	b.StopTimer()
	fmt.Printf("ecab 64 MiB EC PUT, 4+2, %d rounds of %d PUTs alternating; load average %s before, %s after\n",
		rounds, puts, load0, loadAverage())
	for _, sd := range sides {
		fmt.Printf("ecab median %-22s nodes CPU %6.0f ms/PUT  switches %7.0f /PUT  %6.1f MB/s\n",
			sd.name, median(sd.cpu), median(sd.csw), median(sd.mbps))
	}
	b.ReportMetric(median(sides[len(sides)-1].cpu), "nodes-cpu-ms/put")
	b.ReportMetric(median(sides[0].cpu), "base-nodes-cpu-ms/put")
}

// nodesSwitches is the context switches (voluntary and not) of every
// thread of the object servers.
func (s *ecStack) nodesSwitches() float64 {
	var total float64
	for _, n := range s.Nodes {
		total += float64(testenv.ProcSwitches(n.Proc.Pid()))
	}
	return total
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
