package swiftfilter

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// BenchmarkPipelineSwift compares, through the real Swift proxy on one
// tier of Arca object servers, the three ways a client's request can go:
// plain (the proxy with no arca at all), pipeline (the arca middleware in
// the proxy's pipeline and arca-swift-filter's decision socket) and
// reverse-proxy (arca-swift-filter in front of the plain proxy). It
// reports p50, the server side's CPU per request (filter-cpu-µs/op: the
// proxy and filter processes; the object servers are the same in all
// three) and
// MB/s of 16 MiB PUTs and GETs. tools/bench-pipeline.sh prints them side
// by side.
func BenchmarkPipelineSwift(b *testing.B) {
	work := b.TempDir()
	s := testenv.StartObjectStack(b, testenv.ClusterOptions{Work: work, PartPower: 4})
	ks := testenv.LoadKeystone(b)
	swiftDir := testenv.SwiftDir(b)
	dec, sock := testenv.StartDecisionSocket(b, ks, testenv.DecisionSocketOptions{Work: work, KeyServiceURL: s.API.URL, CacheTTL: 60})
	pp, purl := testenv.StartPipelineProxy(b, swiftDir, s.RingDir, work, "pipeline-proxy", sock)
	wp, wurl := testenv.StartWholePathProxy(b, swiftDir, s.RingDir, work, "plain-proxy")
	pp.WaitHealthy(b, purl+"/healthcheck")
	wp.WaitHealthy(b, wurl+"/healthcheck")
	fp, furl := testenv.StartSwiftFilter(b, ks, testenv.SwiftFilterOptions{Work: work, Upstream: wurl, KeyServiceURL: s.API.URL, CacheTTL: 60})
	shapes := []struct {
		name string
		url  string
		pids []int
	}{
		{"plain", wurl, []int{wp.Pid()}},
		{"pipeline", purl, []int{pp.Pid(), dec.Pid()}},
		{"reverse-proxy", furl, []int{fp.Pid(), wp.Pid()}},
	}
	acct := "/v1/AUTH_" + s.Project
	c := benchClient()
	cont := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	small := bytes.Repeat([]byte("s"), 1024)
	large := bytes.Repeat([]byte("L"), 16<<20)
	req, _ := http.NewRequest("PUT", wurl+acct+"/"+cont, nil)
	req.Header.Set("X-Auth-Token", s.Token)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("container PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, sh := range shapes {
		cpu := func() time.Duration {
			var sum time.Duration
			for _, pid := range sh.pids {
				sum += testenv.ProcCPU(pid)
			}
			return sum
		}
		base := sh.url + acct + "/" + cont
		b.Run("PUT/"+sh.name, func(b *testing.B) {
			runLatency(b, c, "PUT", base+"/small-"+sh.name, s.Token, small, cpu, 0)
		})
		b.Run("GET/"+sh.name, func(b *testing.B) {
			runLatency(b, c, "GET", base+"/small-"+sh.name, s.Token, nil, cpu, 0)
		})
		b.Run("LargePUT/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(large)))
			runLatency(b, c, "PUT", base+"/large-"+sh.name, s.Token, large, cpu, int64(len(large)))
		})
		b.Run("LargeGET/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(large)))
			runLatency(b, c, "GET", base+"/large-"+sh.name, s.Token, nil, cpu, int64(len(large)))
		})
	}
}
