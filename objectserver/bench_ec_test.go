package objectserver_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRealStackEC64MiB PUTs and GETs a 64 MiB object through the
// real Swift proxy on a 4+2 EC policy (1 MiB EC segments, Swift's
// default), on six arca-object-servers and on six of Swift's Python
// object servers, one request at a time. Besides ns/op it reports the
// object servers' CPU per request (cpu-ms/op, all six nodes together, from
// /proc) and MB/s. tools/bench-objectserver.sh runs it under make bench.
// Swift's own encryption (in the proxy) on Python nodes is not measured
// here yet.
func BenchmarkRealStackEC64MiB(b *testing.B) {
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	for _, side := range []struct {
		name   string
		python []int
	}{{"arca", nil}, {"python", []int{0, 1, 2, 3, 4, 5}}} {
		s := newECStackSeg(b, 1<<20, side.python...)
		tag := make([]byte, 4)
		_, _ = rand.Read(tag)
		cont := "bench-ec-" + hex.EncodeToString(tag)
		if resp, _ := s.do("PUT", "/"+cont, nil, nil); resp.StatusCode/100 != 2 {
			b.Fatalf("container PUT: %s", resp.Status)
		}
		for _, op := range []string{"PUT", "GET"} {
			b.Run(side.name+"/"+op, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				if op == "GET" {
					if resp, _ := s.do("PUT", "/"+cont+"/o", data, nil); resp.StatusCode != http.StatusCreated {
						b.Fatalf("PUT: %s", resp.Status)
					}
				}
				cpu0 := s.nodesCPU(b)
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
				b.ReportMetric(float64(s.nodesCPU(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// newECStackSeg is newECStack with another EC segment size.
func newECStackSeg(t testing.TB, seg int, pythonNodes ...int) *ecStack {
	t.Helper()
	old := ecSegmentSize
	ecSegmentSize = seg
	defer func() { ecSegmentSize = old }()
	return newECStack(t, pythonNodes...)
}

// nodesCPU is the user+system CPU the object servers have used.
func (s *ecStack) nodesCPU(t testing.TB) time.Duration {
	var total time.Duration
	for _, n := range s.Nodes {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.Proc.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		// fields after the command's closing parenthesis: utime is the
		// 12th, stime the 13th (stat(5) fields 14 and 15)
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return total
}
