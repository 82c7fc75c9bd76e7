package rewrap_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
)

// stack is the real-stack set-up (testenv's ObjectStack): Keystone,
// account and container servers from tools/stack.sh, a real arca-api, two
// arca-object-servers behind a private Swift proxy whose object ring has 2
// replicas on them.
type stack struct {
	*testenv.ObjectStack
	t    *testing.T
	work string
	bins string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	testenv.RequireTools(t, "swift-proxy-server", "/usr/bin/python3")
	s := &stack{t: t, work: t.TempDir(), bins: testenv.Binaries(t)}
	s.ObjectStack = testenv.StartObjectStack(t, testenv.ClusterOptions{Work: s.work, PartPower: 6})
	return s
}

// do makes one request through the proxy; errors are returned, not fatal
// (it is used from goroutines).
func (s *stack) do(method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, s.Storage+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Auth-Token", s.Token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func (s *stack) must(method, path string, body []byte, hdr map[string]string, want int) []byte {
	s.t.Helper()
	code, _, b, err := s.do(method, path, body, hdr)
	if err != nil || code != want {
		s.t.Fatalf("%s %s: %d %v %s", method, path, code, err, b)
	}
	return b
}

// rewrap runs `arca-object-server rewrap` for a node.
func (s *stack) rewrap(n testenv.Node, args ...string) (string, error) {
	all := append([]string{"rewrap"}, args...)
	all = append(all, "--config-file", n.Config, "--project", s.Project, "--checksum-delay", "300ms")
	out, err := exec.Command(filepath.Join(s.bins, "arca-object-server"), all...).CombinedOutput()
	return string(out), err
}

var inactiveRe = regexp.MustCompile(`objects on inactive keys: (\d+)`)

func (s *stack) inactive(t *testing.T, n testenv.Node) int {
	t.Helper()
	out, err := s.rewrap(n, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	m := inactiveRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("status output:\n%s", out)
	}
	c, _ := strconv.Atoi(m[1])
	t.Logf("status on %s:\n%s", n.Device, out)
	return c
}

// readEveryReplica GETs every .data file on every node straight from its
// object server, so a replica the proxy would not pick is read too, and
// checks its content and, for the objects in wantMeta, the metadata of the
// last acknowledged POST.
func (s *stack) readEveryReplica(t *testing.T, want map[string][]byte, wantMeta map[string]string) {
	t.Helper()
	read := 0
	for _, n := range s.Nodes {
		_ = filepath.WalkDir(filepath.Join(n.Devices, n.Device, "objects"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, ".data") {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			raw, err := diskfile.ReadRawMetadata(f)
			f.Close()
			if err != nil {
				t.Errorf("%s: %v", p, err)
				return nil
			}
			name := raw.Values["name"]
			obj := name[strings.LastIndex(name, "/")+1:]
			exp, ok := want[obj]
			if !ok {
				return nil
			}
			rel, _ := filepath.Rel(filepath.Join(n.Devices, n.Device, "objects"), p)
			part := strings.Split(rel, string(filepath.Separator))[0]
			cur, _ := diskfile.CurrentData(filepath.Dir(p))
			if cur != filepath.Base(p) {
				return nil
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/%s/%s%s", n.Port, n.Device, part, name))
			if err != nil {
				t.Errorf("GET %s from %s: %v", name, n.Device, err)
				return nil
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(b, exp) {
				t.Errorf("GET %s from %s: %d, %d bytes, want %d", name, n.Device, resp.StatusCode, len(b), len(exp))
			}
			if m, ok := wantMeta[obj]; ok && resp.Header.Get("X-Object-Meta-Round") != m {
				t.Errorf("GET %s from %s: metadata Round %q, want %q", name, n.Device, resp.Header.Get("X-Object-Meta-Round"), m)
			}
			read++
			return nil
		})
	}
	if read < len(want) {
		t.Errorf("read only %d replicas of %d objects", read, len(want))
	}
}

// TestRewrapRealStack: upload, rotate, upload more; rewrap node 1 with a
// kill in the middle and a rerun, node 2 too, while clients overwrite and
// post to some of the objects and only post to others (whose .data files
// the jobs rewrite as the POSTs land); then every object reads back
// identical from the proxy and every replica, with the ETag, length and
// Last-Modified clients saw before, status reports nothing on the old key,
// and after destroying the old key every object still reads, with the last
// write and the last metadata.
func TestRewrapRealStack(t *testing.T) {
	s := newStack(t)
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	cont := "/rewrap-" + hex.EncodeToString(tag)
	s.must("PUT", cont, nil, nil, 201)
	want := map[string][]byte{}
	put := func(i int) {
		name := fmt.Sprintf("o%02d", i)
		body := []byte(fmt.Sprintf("object %d %s", i, strings.Repeat("z", i*37)))
		s.must("PUT", cont+"/"+name, body, map[string]string{"X-Object-Meta-Index": strconv.Itoa(i)}, 201)
		want[name] = body
	}
	for i := range 24 {
		put(i)
	}
	code, active := s.KeyService(t, s.ObjectToken, "GET", "/v1/project-keys/active?project_id="+s.Project)
	if code != 200 {
		t.Fatalf("active key: %d %v", code, active)
	}
	oldID, _ := active["key_id"].(string)
	if code, rotated := s.KeyService(t, s.KeyAdminToken, "POST", "/v1/project-keys/rotate?project_id="+s.Project); code/100 != 2 || rotated["key_id"] == oldID {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	time.Sleep(1500 * time.Millisecond) // active_key_cache_ttl
	for i := 24; i < 30; i++ {
		put(i)
	}
	for _, n := range s.Nodes {
		if c := s.inactive(t, n); c != 24 {
			t.Fatalf("%s: %d objects on the old key before the rewrap, want 24", n.Device, c)
		}
	}

	// What clients see of every object before the rewrap: the job must not
	// change it (a POST changes Last-Modified, so that is compared only for
	// objects nobody posts to).
	type seen struct{ etag, length, modified string }
	before := map[string]seen{}
	for name := range want {
		code, hdr, _, err := s.do("HEAD", cont+"/"+name, nil, nil)
		if err != nil || code != 200 {
			t.Fatalf("HEAD %s: %d %v", name, code, err)
		}
		before[name] = seen{hdr.Get("Etag"), hdr.Get("Content-Length"), hdr.Get("Last-Modified")}
	}

	// Clients keep writing to ten of the old objects, one client per
	// object (so "latest" is well defined) for as long as the jobs run:
	// two are overwritten (PUT, then POST), which moves them to the new key
	// at once; eight are only posted to, which leaves their .data on the
	// old key, so the jobs rewrite those .data files while POSTs land on
	// them. Each client loops back to back, so a POST to its object is in
	// flight at nearly every instant, the instants of the rewrites included.
	overwrite := []string{"o00", "o01"}
	postOnly := []string{"o02", "o03", "o04", "o05", "o06", "o07", "o08", "o09"}
	type hotState struct {
		body            []byte
		meta            string // the last acknowledged POST's Round ("" after a PUT)
		posted          bool
		postsDuringJobs int
	}
	var mu sync.Mutex
	hot := map[string]*hotState{}
	var jobsRunning atomic.Bool
	stop := make(chan struct{})
	var wg, firstRound sync.WaitGroup
	for _, name := range append(append([]string{}, overwrite...), postOnly...) {
		st := &hotState{body: want[name]}
		hot[name] = st
		put := slices.Contains(overwrite, name)
		wg.Add(1)
		firstRound.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			for round := 0; ; round++ {
				select {
				case <-stop:
					once.Do(firstRound.Done)
					return
				default:
				}
				ok := true
				if put {
					body := []byte(fmt.Sprintf("%s overwritten in round %d", name, round))
					code, _, _, err := s.do("PUT", cont+"/"+name, body, nil)
					ok = err == nil && code == 201
					if ok {
						mu.Lock()
						st.body, st.meta = body, ""
						mu.Unlock()
					}
				}
				meta := fmt.Sprintf("round-%d", round)
				during := jobsRunning.Load()
				code, _, _, err := s.do("POST", cont+"/"+name, nil, map[string]string{"X-Object-Meta-Round": meta})
				if err == nil && code == 202 {
					mu.Lock()
					st.meta, st.posted = meta, true
					if during && jobsRunning.Load() {
						st.postsDuringJobs++
					}
					mu.Unlock()
				} else {
					ok = false
				}
				if ok {
					once.Do(firstRound.Done)
				}
			}
		}()
	}
	// The overwritten objects are on the new key before the jobs start, so
	// the jobs' counts below are of the objects they move themselves.
	ready := make(chan struct{})
	go func() { firstRound.Wait(); close(ready) }()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		close(stop)
		t.Fatal("the clients' first writes never succeeded")
	}
	onOld := 24 - len(overwrite)
	for _, n := range s.Nodes {
		if c := s.inactive(t, n); c != onOld {
			t.Fatalf("%s: %d objects on the old key with the clients running, want %d", n.Device, c, onOld)
		}
	}

	// Node 1: killed mid-run, then run again from its state file. The first
	// run is slowed to 3 objects/s, so examining the node's 30 objects
	// takes about 10 s however busy the machine is; it is killed once its
	// state file records finished work and status shows objects moved, so
	// the kill lands with part, not all, done.
	jobsRunning.Store(true)
	n1 := s.Nodes[0]
	stateFile := filepath.Join(s.work, "rewrap-d1.state")
	cmd := exec.Command(filepath.Join(s.bins, "arca-object-server"), "rewrap", "--config-file", n1.Config, "--project", s.Project,
		"--state-file", stateFile, "--rate", "3", "--checksum-delay", "300ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	progressed := false
	for deadline := time.Now().Add(60 * time.Second); !progressed && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(stateFile); err == nil && (bytes.Contains(b, []byte(`"done"`)) || bytes.Contains(b, []byte(`"completed"`))) {
			progressed = s.inactive(t, n1) < onOld
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	var st struct {
		Done      *struct{ Partition, Suffix string } `json:"done"`
		Completed []string                            `json:"completed"`
		Complete  bool                                `json:"complete"`
	}
	b, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatalf("state file after the kill: %v", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file after the kill: %v\n%s", err, b)
	}
	c := s.inactive(t, n1)
	if !progressed || st.Complete || (st.Done == nil && len(st.Completed) == 0) || c == 0 || c >= onOld {
		t.Fatalf("the kill did not land mid-run: progressed %v, %d of %d objects still on the old key, state:\n%s", progressed, c, onOld, b)
	}
	t.Logf("killed with %d of %d objects still on the old key; state:\n%s", c, onOld, b)
	scannedRe := regexp.MustCompile(`scanned (\d+),`)
	for _, n := range s.Nodes {
		args := []string{}
		if n.Device == n1.Device {
			args = []string{"--state-file", stateFile}
		}
		out, err := s.rewrap(n, args...)
		t.Logf("rewrap on %s:\n%s", n.Device, out)
		if err != nil {
			t.Fatalf("rewrap on %s: %v", n.Device, err)
		}
		if n.Device == n1.Device {
			m := scannedRe.FindStringSubmatch(out)
			if !strings.Contains(out, "resumed after") || m == nil {
				t.Errorf("the second run on %s did not resume:\n%s", n1.Device, out)
			} else if sc, _ := strconv.Atoi(m[1]); sc >= len(want) {
				t.Errorf("the resumed run on %s examined all %d objects again:\n%s", n1.Device, sc, out)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	jobsRunning.Store(false)
	close(stop)
	wg.Wait()

	for _, n := range s.Nodes {
		if c := s.inactive(t, n); c != 0 {
			t.Fatalf("%s: %d objects still on the old key", n.Device, c)
		}
	}
	if code, body := s.KeyService(t, s.KeyAdminToken, "DELETE", "/v1/project-keys/"+oldID+"?project_id="+s.Project); code/100 != 2 {
		t.Fatalf("destroying the old key: %d %v", code, body)
	}
	time.Sleep(1500 * time.Millisecond) // key_cache_ttl
	wantMeta := map[string]string{}
	for name, st := range hot {
		want[name] = st.body
		wantMeta[name] = st.meta
		if slices.Contains(postOnly, name) && (!st.posted || st.postsDuringJobs == 0) {
			t.Errorf("%s: no POST acknowledged while the jobs ran (%+v): the test did not race", name, st)
		}
	}
	for name, body := range want {
		code, hdr, b, err := s.do("GET", cont+"/"+name, nil, nil)
		if err != nil || code != 200 || !bytes.Equal(b, body) {
			t.Errorf("GET %s after the rewrap and destroy: %d %v %q, want %q", name, code, err, b, body)
			continue
		}
		if m, ok := wantMeta[name]; ok {
			if hdr.Get("X-Object-Meta-Round") != m {
				t.Errorf("%s: metadata Round %q, want %q (last acknowledged POST)", name, hdr.Get("X-Object-Meta-Round"), m)
			}
		} else if idx := strings.TrimPrefix(name, "o"); hdr.Get("X-Object-Meta-Index") != strings.TrimLeft(idx, "0") && !(idx == "00" && hdr.Get("X-Object-Meta-Index") == "0") {
			t.Errorf("%s: user metadata lost: %v", name, hdr)
		}
		was := before[name]
		switch {
		case slices.Contains(overwrite, name):
		case hdr.Get("Etag") != was.etag || hdr.Get("Content-Length") != was.length:
			t.Errorf("%s: ETag %s length %s, were %s %s", name, hdr.Get("Etag"), hdr.Get("Content-Length"), was.etag, was.length)
		case !slices.Contains(postOnly, name) && hdr.Get("Last-Modified") != was.modified:
			t.Errorf("%s: Last-Modified %s, was %s", name, hdr.Get("Last-Modified"), was.modified)
		}
	}
	s.readEveryReplica(t, want, wantMeta)
	for _, name := range postOnly {
		t.Logf("%s: %d POSTs acknowledged while the jobs ran", name, hot[name].postsDuringJobs)
	}
}
