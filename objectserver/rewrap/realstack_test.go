package rewrap_test

import (
	"bytes"
	"context"
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/internal/testkeystone"
	"opendev.org/x/arca/objectserver/diskfile"
)

// The real-stack set-up is a trimmed copy of objectserver's
// (realstack_test.go there): Keystone, account and container servers from
// tools/stack.sh, a real arca-api, two arca-object-servers behind a private
// Swift proxy whose object ring has 2 replicas on them.

type stack struct {
	t            *testing.T
	work         string
	bins         string
	nodes        []node
	proxyURL     string
	token        string
	project      string
	storage      string
	api          *testapi.Server
	serviceToken string
}

type node struct {
	devices, device, conf string
	port                  int
}

func requireStack(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ARCA_REQUIRE_STACK") == "1" {
		t.Fatalf("real stack required (ARCA_REQUIRE_STACK=1) but %s", why)
	}
	t.Skipf("skipping: %s; run tools/stack.sh up and eval \"$(tools/stack.sh env)\"", why)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProcess(t *testing.T, logName, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			s := out.String()
			t.Logf("--- %s output ---\n%s", logName, s[max(0, len(s)-3000):])
		}
	})
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became healthy", url)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	env := testkeystone.Load(t)
	swiftDir := os.Getenv("ARCA_TEST_SWIFT_DIR")
	if swiftDir == "" {
		requireStack(t, "ARCA_TEST_SWIFT_DIR is not set")
	}
	for _, tool := range []string{"swift-proxy-server", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireStack(t, tool+" is not installed")
		}
	}
	s := &stack{t: t, work: t.TempDir()}
	svc := env.ServiceConfig()
	s.api = testapi.Start(t, testapi.Options{AuthStrategy: "keystone", Extra: fmt.Sprintf(`
[keystone_authtoken]
www_authenticate_uri = %s
auth_url = %s
auth_type = password
username = %s
password = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
region_name = %s
`, svc.WWWAuthenticateURI, svc.AuthURL, svc.Username, svc.Password, svc.ProjectName,
		svc.UserDomainName, svc.ProjectDomainName, svc.RegionName)})
	s.serviceToken = env.Token(t, testkeystone.Arca)
	s.bins = testapi.Binaries(t)
	ringDir := filepath.Join(s.work, "rings")
	for i := 1; i <= 2; i++ {
		n := node{devices: filepath.Join(s.work, fmt.Sprintf("node%d", i)), device: fmt.Sprintf("d%d", i), port: testapi.FreePort(t)}
		if err := os.MkdirAll(filepath.Join(n.devices, n.device), 0o755); err != nil {
			t.Fatal(err)
		}
		n.conf = filepath.Join(s.work, fmt.Sprintf("object-server-%d.conf", i))
		conf := fmt.Sprintf(`[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
container_update_timeout = 2
[app:object-server]
[arca]
crypto_protocol = aes_256_cbc
key_service_url = %s
auth_url = %s
username = %s
password = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
region_name = %s
active_key_cache_ttl = 1
key_cache_ttl = 1
error_cache_ttl = 1
`, n.devices, n.port, ringDir, s.api.URL, svc.AuthURL, svc.Username, svc.Password,
			svc.ProjectName, svc.UserDomainName, svc.ProjectDomainName, svc.RegionName)
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		startProcess(t, "arca-object-server "+n.device, filepath.Join(s.bins, "arca-object-server"), n.conf, "-v")
		s.nodes = append(s.nodes, n)
	}
	if err := os.MkdirAll(ringDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"account.ring.gz", "container.ring.gz"} {
		b, err := os.ReadFile(filepath.Join(swiftDir, r))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ringDir, r), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	py := exec.Command("/usr/bin/python3", "-c", `
import os, sys
from swift.common.ring import RingBuilder
rb = RingBuilder(6, 2, 0)
for i, port in enumerate(sys.argv[2:]):
    rb.add_dev({'id': i, 'region': 1, 'zone': i + 1, 'ip': '127.0.0.1', 'port': int(port),
                'replication_ip': '127.0.0.1', 'replication_port': int(port),
                'device': 'd%d' % (i + 1), 'weight': 100.0, 'meta': ''})
rb.rebalance()
rb.get_ring().save(os.path.join(sys.argv[1], 'object.ring.gz'))
`, ringDir, strconv.Itoa(s.nodes[0].port), strconv.Itoa(s.nodes[1].port))
	if out, err := py.CombinedOutput(); err != nil {
		t.Fatalf("building the object ring: %v\n%s", err, out)
	}
	proxyConf, err := os.ReadFile(filepath.Join(swiftDir, "proxy-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	proxyPort := testapi.FreePort(t)
	pc := regexp.MustCompile(`(?m)^bind_port = .*$`).ReplaceAllString(string(proxyConf), "bind_port = "+strconv.Itoa(proxyPort))
	pc = regexp.MustCompile(`(?m)^swift_dir = .*$`).ReplaceAllString(pc, "swift_dir = "+ringDir)
	pconf := filepath.Join(s.work, "proxy-server.conf")
	if err := os.WriteFile(pconf, []byte(pc), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, "swift-proxy-server", "swift-proxy-server", pconf, "-v")
	s.proxyURL = fmt.Sprintf("http://127.0.0.1:%d", proxyPort)
	for _, n := range s.nodes {
		waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/healthcheck", n.port))
	}
	waitHealthy(t, s.proxyURL+"/healthcheck")

	u := env.Users[testkeystone.Demo]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pcl, err := openstack.NewClient(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewIdentityV3(pcl, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ao := gophercloud.AuthOptions{IdentityEndpoint: env.URL, Username: u.Name, Password: u.Password, DomainName: env.UserDomain,
		Scope: &gophercloud.AuthScope{ProjectName: u.Project, DomainName: env.ProjectDomain}}
	res := tokens.Create(ctx, ic, &ao)
	if s.token, err = res.ExtractTokenID(); err != nil {
		t.Fatal(err)
	}
	proj, err := res.ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	s.project = proj.ID
	s.storage = s.proxyURL + "/v1/AUTH_" + s.project
	return s
}

// do makes one request through the proxy; errors are returned, not fatal
// (it is used from goroutines).
func (s *stack) do(method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, s.storage+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Auth-Token", s.token)
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

func (s *stack) keyService(method, path string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.api.URL+path, nil)
	req.Header.Set("X-Auth-Token", s.serviceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// rewrap runs `arca-object-server rewrap` for a node.
func (s *stack) rewrap(n node, args ...string) (string, error) {
	all := append([]string{"rewrap"}, args...)
	all = append(all, "--config-file", n.conf, "--project", s.project, "--checksum-delay", "300ms")
	out, err := exec.Command(filepath.Join(s.bins, "arca-object-server"), all...).CombinedOutput()
	return string(out), err
}

var inactiveRe = regexp.MustCompile(`objects on inactive keys: (\d+)`)

func (s *stack) inactive(t *testing.T, n node) int {
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
	t.Logf("status on %s:\n%s", n.device, out)
	return c
}

// readEveryReplica GETs every .data file on every node straight from its
// object server, so a replica the proxy would not pick is read too.
func (s *stack) readEveryReplica(t *testing.T, want map[string][]byte) {
	t.Helper()
	read := 0
	for _, n := range s.nodes {
		_ = filepath.WalkDir(filepath.Join(n.devices, n.device, "objects"), func(p string, d fs.DirEntry, err error) error {
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
			rel, _ := filepath.Rel(filepath.Join(n.devices, n.device, "objects"), p)
			part := strings.Split(rel, string(filepath.Separator))[0]
			cur, _ := diskfile.CurrentData(filepath.Dir(p))
			if cur != filepath.Base(p) {
				return nil
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/%s/%s%s", n.port, n.device, part, name))
			if err != nil {
				t.Errorf("GET %s from %s: %v", name, n.device, err)
				return nil
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(b, exp) {
				t.Errorf("GET %s from %s: %d, %d bytes, want %d", name, n.device, resp.StatusCode, len(b), len(exp))
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
// kill in the middle and a rerun, node 2 while a client overwrites and
// posts to the same objects; then every object reads back identical, status
// reports nothing on the old key, and after destroying the old key every
// object still reads, with the last write and the last metadata.
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
	code, active := s.keyService("GET", "/v1/project-keys/active?project_id="+s.project)
	if code != 200 {
		t.Fatalf("active key: %d %v", code, active)
	}
	oldID, _ := active["key_id"].(string)
	if code, rotated := s.keyService("POST", "/v1/project-keys/rotate?project_id="+s.project); code/100 != 2 || rotated["key_id"] == oldID {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	time.Sleep(1500 * time.Millisecond) // active_key_cache_ttl
	for i := 24; i < 30; i++ {
		put(i)
	}
	for _, n := range s.nodes {
		if c := s.inactive(t, n); c != 24 {
			t.Fatalf("%s: %d objects on the old key before the rewrap, want 24", n.device, c)
		}
	}

	// A client keeps overwriting and posting to four of the old objects.
	hot := []string{"o00", "o01", "o02", "o03"}
	var mu sync.Mutex
	lastBody := map[string][]byte{}
	lastMeta := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 0; ; round++ {
			for _, name := range hot {
				select {
				case <-stop:
					return
				default:
				}
				body := []byte(fmt.Sprintf("%s overwritten in round %d", name, round))
				if code, _, _, err := s.do("PUT", cont+"/"+name, body, nil); err == nil && code == 201 {
					mu.Lock()
					lastBody[name], lastMeta[name] = body, ""
					mu.Unlock()
				}
				meta := fmt.Sprintf("round-%d", round)
				if code, _, _, err := s.do("POST", cont+"/"+name, nil, map[string]string{"X-Object-Meta-Round": meta}); err == nil && code == 202 {
					mu.Lock()
					lastMeta[name] = meta
					mu.Unlock()
				}
			}
		}
	}()

	// Node 1: killed mid-run, then run again from its state file.
	n1 := s.nodes[0]
	stateFile := filepath.Join(s.work, "rewrap-d1.state")
	cmd := exec.Command(filepath.Join(s.bins, "arca-object-server"), "rewrap", "--config-file", n1.conf, "--project", s.project,
		"--state-file", stateFile, "--rate", "5", "--checksum-delay", "300ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it as soon as its state file records finished work: a fixed sleep would
	// depend on how busy the machine is. At 5 objects/s the job needs about
	// 5 s for its 24 objects, so it is killed half-way.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(stateFile); err == nil && (bytes.Contains(b, []byte(`"done"`)) || bytes.Contains(b, []byte(`"completed"`))) {
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if c := s.inactive(t, n1); c == 0 || c >= 24 {
		t.Logf("after the kill %d objects remain on the old key (expected some done, some not)", c)
	}
	for _, n := range s.nodes {
		args := []string{}
		if n.device == n1.device {
			args = []string{"--state-file", stateFile}
		}
		out, err := s.rewrap(n, args...)
		t.Logf("rewrap on %s:\n%s", n.device, out)
		if err != nil {
			t.Fatalf("rewrap on %s: %v", n.device, err)
		}
		if n.device == n1.device && !strings.Contains(out, "resumed after") {
			t.Errorf("the second run on %s did not resume:\n%s", n1.device, out)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	for _, n := range s.nodes {
		if c := s.inactive(t, n); c != 0 {
			t.Fatalf("%s: %d objects still on the old key", n.device, c)
		}
	}
	if code, body := s.keyService("DELETE", "/v1/project-keys/"+oldID+"?project_id="+s.project); code/100 != 2 {
		t.Fatalf("destroying the old key: %d %v", code, body)
	}
	time.Sleep(1500 * time.Millisecond) // key_cache_ttl
	for name, body := range lastBody {
		want[name] = body
	}
	for name, body := range want {
		code, hdr, b, err := s.do("GET", cont+"/"+name, nil, nil)
		if err != nil || code != 200 || !bytes.Equal(b, body) {
			t.Errorf("GET %s after the rewrap and destroy: %d %v %q, want %q", name, code, err, b, body)
			continue
		}
		if m, ok := lastMeta[name]; ok {
			if hdr.Get("X-Object-Meta-Round") != m {
				t.Errorf("%s: metadata Round %q, want %q (last acknowledged POST)", name, hdr.Get("X-Object-Meta-Round"), m)
			}
		} else if idx := strings.TrimPrefix(name, "o"); hdr.Get("X-Object-Meta-Index") != strings.TrimLeft(idx, "0") && !(idx == "00" && hdr.Get("X-Object-Meta-Index") == "0") {
			t.Errorf("%s: user metadata lost: %v", name, hdr)
		}
	}
	s.readEveryReplica(t, want)
}
