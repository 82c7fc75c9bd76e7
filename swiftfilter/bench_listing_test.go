package swiftfilter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objcrypt"
)

// listingBenchObjects is the size of the listing benchmark's container:
// one full page of Swift's listing (container_listing_limit).
const listingBenchObjects = 10000

// benchListingKeyID is the key the benchmark's container's ETags are sealed
// under; the filter process's key resolver (benchKeys) derives its listing
// key from testProjectKey, as the key service derives it from the key.
const benchListingKeyID = "bench-listing-key"

// benchKeys is the benchmarks' key resolver: fakeKeys, and listing keys
// for any project (warm caches: the figures are the filter's own cost).
type benchKeys struct{ fakeKeys }

func (*benchKeys) ListingKey(_ context.Context, _, id string) ([]byte, error) {
	return objcrypt.DeriveListingKey(testProjectKey(id))
}

// BenchmarkFilterListing: a 10,000-object JSON listing from the stack's
// Swift proxy, straight and through the filter (in a process of its own),
// every ETag sealed as the object servers seal them. Besides latency it
// reports the CPU per listing of the servers: the proxy and the container
// server (server-cpu-µs/op, both runs) and the filter (filter-cpu-µs/op).
// The container is filled once per stack, by container-server PUTs as the
// object servers' container updates make them.
func BenchmarkFilterListing(b *testing.B) {
	ks := testenv.LoadKeystone(b)
	swiftURL := os.Getenv("ARCA_TEST_SWIFT_URL")
	stackDir := os.Getenv("ARCA_STACK_DIR")
	if swiftURL == "" || stackDir == "" {
		testenv.StackMissing(b, "ARCA_TEST_SWIFT_URL or ARCA_STACK_DIR is not set")
	}
	v, err := keystone.NewValidator(ks.UserConfig(testenv.UserArcaFilter))
	if err != nil {
		b.Fatal(err)
	}
	tok := ks.Token(b, testenv.UserDemo)
	kt, err := v.Validate(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	account, cont := "AUTH_"+kt.ProjectID, "arca-bench-listing-1"
	fillListingContainer(b, swiftURL, tok, account, cont)
	servers := stackCPU(b, stackDir, "swift-proxy", "swift-container")
	via := benchFilter(b, swiftURL, true)
	path := "/v1/" + account + "/" + cont + "?format=json"
	c := benchClient()
	// The filter shows the MD5s the object servers sealed.
	_, body := listingGet(b, c, via.URL+path, tok)
	if n := bytes.Count(body, []byte(`"hash": "`+md5A+`"`)); n != listingBenchObjects || bytes.Contains(body, []byte("arca1.")) {
		b.Fatalf("the filter opened %d of %d hashes", n, listingBenchObjects)
	}
	for _, base := range []struct {
		name, url string
		cpu       func() time.Duration
	}{{"direct", swiftURL, nil}, {"filter", via.URL, via.cpu}} {
		b.Run("GET10000json/"+base.name, func(b *testing.B) {
			runListing(b, c, base.url+path, tok, servers, base.cpu)
		})
	}
}

// runListing runs b.N listings one after the other and reports their
// latency and the servers' and the filter's CPU per listing.
func runListing(b *testing.B, c *http.Client, url, tok string, servers, filter func() time.Duration) {
	listingGet(b, c, url, tok) // warm
	lat := make([]time.Duration, 0, b.N)
	var f0 time.Duration
	if filter != nil {
		f0 = filter()
	}
	s0 := servers()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		listingGet(b, c, url, tok)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64((servers()-s0).Microseconds())/float64(b.N), "server-cpu-µs/op")
	if filter != nil {
		b.ReportMetric(float64((filter()-f0).Microseconds())/float64(b.N), "filter-cpu-µs/op")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

func listingGet(b *testing.B, c *http.Client, url, tok string) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return resp, body
}

// stackCPU returns the CPU time so far of the stack's named daemons
// ($ARCA_STACK_DIR/run/NAME.pid; the stack runs them with workers = 0, one
// process each).
func stackCPU(b *testing.B, stackDir string, names ...string) func() time.Duration {
	var pids []int
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(stackDir, "run", n+".pid"))
		pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || perr != nil {
			testenv.StackMissing(b, "no pid file for "+n)
		}
		pids = append(pids, pid)
	}
	return func() time.Duration {
		var total time.Duration
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				b.Fatal(err)
			}
			// fields after the command's closing parenthesis: utime and
			// stime are the 12th and 13th, in clock ticks (100 Hz on Linux)
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(ut+st) * 10 * time.Millisecond
		}
		return total
	}
}

// fillListingContainer makes account/cont hold listingBenchObjects objects
// whose ETags are sealed, by PUTs to its container servers (found in the
// stack's container ring), unless it does already.
func fillListingContainer(b *testing.B, swiftURL, tok, account, cont string) {
	c := benchClient()
	req, _ := http.NewRequest(http.MethodPut, swiftURL+"/v1/"+account+"/"+cont, nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Container-Object-Count") == strconv.Itoa(listingBenchObjects) {
		return
	}
	head, _ := http.NewRequest(http.MethodHead, swiftURL+"/v1/"+account+"/"+cont, nil)
	head.Header.Set("X-Auth-Token", tok)
	if resp, err := c.Do(head); err == nil {
		resp.Body.Close()
		if resp.Header.Get("X-Container-Object-Count") == strconv.Itoa(listingBenchObjects) {
			return
		}
	}
	part, nodes := containerNodes(b, account, cont)
	lk, err := objcrypt.DeriveListingKey(testProjectKey(benchListingKeyID))
	if err != nil {
		b.Fatal(err)
	}
	lc, err := objcrypt.NewListingCipher(benchListingKeyID, lk)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("obj-%05d", i)
				etag, err := lc.Seal("/"+account+"/"+cont+"/"+name, "etag", md5A, nil)
				if err != nil {
					b.Error(err)
					return
				}
				for _, n := range nodes {
					r, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/%s/%d/%s/%s/%s", n.Addr, n.Device, part, account, cont, name), nil)
					r.Header.Set("X-Timestamp", fmt.Sprintf("%.5f", float64(time.Now().UnixNano())/1e9))
					r.Header.Set("X-Size", "5")
					r.Header.Set("X-Content-Type", "text/plain")
					r.Header.Set("X-Etag", etag)
					resp, err := c.Do(r)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						b.Errorf("container PUT %s: %d", name, resp.StatusCode)
						return
					}
				}
			}
		}()
	}
	for i := range listingBenchObjects {
		work <- i
	}
	close(work)
	wg.Wait()
	b.Logf("filled %s/%s with %d objects in %v", account, cont, listingBenchObjects, time.Since(start).Round(time.Second))
}

type ringNode struct{ Addr, Device string }

// containerNodes asks Swift's own ring code where account/cont lives.
func containerNodes(b *testing.B, account, cont string) (int, []ringNode) {
	ring := filepath.Join(os.Getenv("ARCA_TEST_SWIFT_DIR"), "container.ring.gz")
	script := `import json, sys
from swift.common.ring import Ring
p, nodes = Ring(sys.argv[1]).get_nodes(sys.argv[2], sys.argv[3])
print(json.dumps([p, [{"Addr": "%s:%d" % (n["ip"], n["port"]), "Device": n["device"]} for n in nodes]]))`
	out, err := exec.Command("/usr/bin/python3", "-c", script, ring, account, cont).Output()
	if err != nil {
		testenv.StackMissing(b, "the stack's container ring is not readable: "+err.Error())
	}
	var v []json.RawMessage
	var part int
	var nodes []ringNode
	if json.Unmarshal(out, &v) != nil || len(v) != 2 || json.Unmarshal(v[0], &part) != nil || json.Unmarshal(v[1], &nodes) != nil {
		b.Fatalf("ring answer %q", out)
	}
	return part, nodes
}
