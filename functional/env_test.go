package functional_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
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

	"github.com/go-sql-driver/mysql"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/internal/testdb"
	"opendev.org/x/arca/internal/testkeystone"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// keyIDHeader is where arca-object-server records an object's key id.
const keyIDHeader = objcrypt.SysmetaPrefix + "Key-Id"

func requireStack(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ARCA_REQUIRE_STACK") == "1" {
		t.Fatalf("real stack required (ARCA_REQUIRE_STACK=1) but %s", why)
	}
	t.Skipf("skipping: %s; run tools/stack.sh up and eval \"$(tools/stack.sh env)\"", why)
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func md5hex(b []byte) string {
	s := md5.Sum(b) //nolint:gosec // checksums of test files, as swift does
	return hex.EncodeToString(s[:])
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// logBuf is a goroutine-safe process log.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a daemon this test started, in a process group of its own.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *logBuf
}

func start(t *testing.T, log *logBuf, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), cmd: exec.Command(name, args...), done: make(chan struct{}), log: log}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM to the process group (SIGKILL after 15 s) and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func waitHealthy(t *testing.T, p *proc, url string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before answering %s:\n%s", p.name, url, tail(p.log.String(), 4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no 200 from %s within 60s:\n%s", p.name, url, tail(p.log.String(), 4000))
}

// env is the private deployment of the scenario.
type env struct {
	t        *testing.T
	ks       *testkeystone.Env
	tag      string
	work     string
	bins     string
	region   string
	svcName  string
	apiURL   string
	apiConf  string
	api      *proc
	apiLog   *logBuf
	filter   string // URL of arca-swift-filter
	proxy    string // URL of the private swift-proxy-server
	devices  []string
	users    map[string]*user
	adminEnv []string
	logs     map[string]*logBuf
	// registered is arca-manage register's output.
	registered string
	// keyURL is the key-manager URL in the catalog: apiURL, or what
	// envOptions.keyServiceURL returned.
	keyURL string
	// The daemons started besides arca-api, for tests that watch them.
	objServers []*proc
	objURLs    []string
	proxyProc  *proc
	filterProc *proc
}

// envOptions adjust the deployment of newEnvWith; the zero value is newEnv's.
type envOptions struct {
	// keyServiceURL, when set, is given arca-api's host:port and returns
	// the URL to register in the catalog instead (a testproxy in front of
	// arca-api, say), which the filter and the object servers then use.
	keyServiceURL func(apiAddr string) string
	// cacheTTL is the seconds of every key cache (active id, material,
	// errors) of the filter and the object servers; 0 means 1.
	cacheTTL int
}

type user struct {
	name, token, project string
}

// authenticate issues a token for who and returns it with its project id.
func authenticate(t *testing.T, ks *testkeystone.Env, who string) *user {
	t.Helper()
	u := ks.Users[who]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := openstack.NewClient(ks.URL)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ao := gophercloud.AuthOptions{IdentityEndpoint: ks.URL, Username: u.Name, Password: u.Password, DomainName: ks.UserDomain,
		Scope: &gophercloud.AuthScope{ProjectName: u.Project, DomainName: ks.ProjectDomain}}
	res := tokens.Create(ctx, ic, &ao)
	tok, err := res.ExtractTokenID()
	if err != nil {
		t.Fatalf("token for %s: %v", who, err)
	}
	proj, err := res.ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	return &user{name: who, token: tok, project: proj.ID}
}

// osEnv is the openstack CLI's environment for who in region.
func (e *env) osEnv(who, region string) []string {
	u := e.ks.Users[who]
	return []string{
		"OS_AUTH_URL=" + e.ks.URL, "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=" + u.Name, "OS_PASSWORD=" + u.Password,
		"OS_PROJECT_NAME=" + u.Project, "OS_USER_DOMAIN_NAME=" + e.ks.UserDomain, "OS_PROJECT_DOMAIN_NAME=" + e.ks.ProjectDomain,
		"OS_REGION_NAME=" + region, "OS_INTERFACE=public", "OS_CLOUD=",
	}
}

// run runs a CLI with extra environment in dir; stdout, and an error with stderr.
func run(t *testing.T, extra []string, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extra...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// swift runs the swift CLI as u against the filter.
func (e *env) swift(u *user, dir string, args ...string) (string, error) {
	e.t.Helper()
	full := append([]string{"--os-auth-token", u.token, "--os-storage-url", e.storage(u.project)}, args...)
	return run(e.t, nil, dir, "swift", full...)
}

func (e *env) storage(project string) string { return e.filter + "/v1/AUTH_" + project }

// manage runs arca-manage with the private arca-api's configuration.
func (e *env) manage(args ...string) (string, error) {
	e.t.Helper()
	return run(e.t, e.adminEnv, "", filepath.Join(e.bins, "arca-manage"), append([]string{"--config-file", e.apiConf}, args...)...)
}

// do is one HTTP request; body nil means none.
func do(t *testing.T, method, url, token string, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// keyIDs returns the Key-Id recorded in every replica of an object's
// .data file (Swift's xattr metadata), read with the diskfile package.
func (e *env) keyIDs(account, container, object string) []string {
	e.t.Helper()
	name := "/" + account + "/" + container + "/" + object
	var ids []string
	for _, dev := range e.devices {
		_ = filepath.WalkDir(dev, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".data") {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return nil
			}
			defer f.Close()
			md, err := diskfile.ReadRawMetadata(f)
			if err != nil || md.Values["name"] != name {
				return nil
			}
			ids = append(ids, md.Values[keyIDHeader])
			return nil
		})
	}
	return ids
}

// grepDevices returns the files under the object devices that contain needle.
func (e *env) grepDevices(needle []byte) []string {
	var hits []string
	for _, dev := range e.devices {
		err := filepath.WalkDir(dev, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(b, needle) {
				hits = append(hits, path)
			}
			return nil
		})
		if err != nil {
			e.t.Errorf("searching %s for plaintext: %v", dev, err)
		}
	}
	return hits
}

// activeKey asks arca-api for u's project's active key id (u's own token).
func (e *env) activeKey(u *user) string {
	e.t.Helper()
	code, b := do(e.t, "GET", e.apiURL+"/v1/project-keys/active", u.token, nil, nil)
	if code != 200 {
		e.t.Fatalf("active key of %s: %d %s", u.name, code, b)
	}
	var k struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(b, &k); err != nil || k.KeyID == "" {
		e.t.Fatalf("active key of %s: %v %s", u.name, err, b)
	}
	return k.KeyID
}

// newEnv brings up the private deployment.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, envOptions{})
}

// newEnvWith brings up the private deployment adjusted by o.
func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.cacheTTL <= 0 {
		o.cacheTTL = 1
	}
	ks := testkeystone.Load(t)
	swiftDir := os.Getenv("ARCA_TEST_SWIFT_DIR")
	if swiftDir == "" {
		requireStack(t, "ARCA_TEST_SWIFT_DIR is not set")
	}
	for _, tool := range []string{"openstack", "swift", "swift-proxy-server", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireStack(t, tool+" is not installed")
		}
	}
	e := &env{t: t, ks: ks, tag: randHex(t, 4), work: t.TempDir(), bins: testapi.Binaries(t), logs: map[string]*logBuf{}}
	e.region = "arca-func-" + e.tag
	e.svcName = "arca-func-" + e.tag
	e.adminEnv = e.osEnv(testkeystone.Admin, ks.Region)
	t.Cleanup(func() {
		if t.Failed() {
			for name, l := range e.logs {
				t.Logf("--- %s log (tail) ---\n%s", name, tail(l.String(), 2500))
			}
		}
	})
	svc := ks.ServiceConfig()

	// arca-api on a fresh MariaDB database, keys and schema by arca-manage.
	_, dsn := testdb.RawMySQL(t)
	mcfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbURL := url.URL{Scheme: "mysql+pymysql", Host: mcfg.Addr, Path: "/" + mcfg.DBName}
	if mcfg.Passwd != "" {
		dbURL.User = url.UserPassword(mcfg.User, mcfg.Passwd)
	} else {
		dbURL.User = url.User(mcfg.User)
	}
	apiPort := testapi.FreePort(t)
	e.apiURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	e.apiConf = filepath.Join(e.work, "arca.conf")
	authtoken := fmt.Sprintf(`[keystone_authtoken]
www_authenticate_uri = %s
auth_url = %s
auth_type = password
username = %s
password = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
region_name = %s
`, svc.WWWAuthenticateURI, svc.AuthURL, svc.Username, svc.Password, svc.ProjectName, svc.UserDomainName, svc.ProjectDomainName, svc.RegionName)
	conf := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
host_href = %s
auth_strategy = keystone

[database]
connection = %s

[crypto]
master_key_file = %s
crypto_protocol = aes_256_cbc

%s`, apiPort, e.apiURL, dbURL.String(), filepath.Join(e.work, "master.key"), authtoken)
	if err := os.WriteFile(e.apiConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"kek", "rotate"}, {"db", "upgrade"}} {
		if out, err := e.manage(args...); err != nil {
			t.Fatalf("arca-manage %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	e.apiLog = &logBuf{}
	e.logs["arca-api"] = e.apiLog
	e.startAPI()
	e.keyURL = e.apiURL
	if o.keyServiceURL != nil {
		e.keyURL = o.keyServiceURL(fmt.Sprintf("127.0.0.1:%d", apiPort))
	}

	// Scenario 1's registration comes first: the filter and the object
	// servers find arca-api in the private region's catalog. Its entries go
	// when the test ends.
	t.Cleanup(func() { e.removeCatalog() })
	// With the admin's openrc as the openstack CLI and DevStack write it
	// (OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME).
	register := []string{"register", "--url", e.keyURL, "--region", e.region, "--name", e.svcName}
	e.registered, err = e.manage(register...)
	if err != nil {
		t.Errorf("1: arca-manage register with a standard openrc (OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME): %v", err)
		// gophercloud's AuthOptionsFromEnv reads OS_DOMAIN_NAME only: go on with it.
		saved := e.adminEnv
		e.adminEnv = append(append([]string(nil), saved...), "OS_DOMAIN_NAME="+ks.UserDomain)
		e.registered, err = e.manage(register...)
		e.adminEnv = saved
		if err != nil {
			t.Fatalf("1: arca-manage register with OS_DOMAIN_NAME too: %v", err)
		}
	}

	// Two arca-object-servers on devices of their own, finding arca-api
	// through the catalog of the private region.
	ringDir := filepath.Join(e.work, "rings")
	if err := os.MkdirAll(ringDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ports []string
	var objProcs []*proc
	for i := 1; i <= 2; i++ {
		devs := filepath.Join(e.work, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(filepath.Join(devs, fmt.Sprintf("d%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
		e.devices = append(e.devices, devs)
		port := testapi.FreePort(t)
		ports = append(ports, strconv.Itoa(port))
		oconf := filepath.Join(e.work, fmt.Sprintf("object-server-%d.conf", i))
		body := fmt.Sprintf(`[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
container_update_timeout = 2
[app:object-server]
[arca]
crypto_protocol = aes_256_cbc
region_name = %s
interface = internal
auth_url = %s
username = %s
password = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
active_key_cache_ttl = %[11]d
key_cache_ttl = %[11]d
error_cache_ttl = %[11]d
`, devs, port, ringDir, e.region, svc.AuthURL, svc.Username, svc.Password, svc.ProjectName, svc.UserDomainName, svc.ProjectDomainName, o.cacheTTL)
		if err := os.WriteFile(oconf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		l := &logBuf{}
		e.logs[fmt.Sprintf("arca-object-server %d", i)] = l
		objProcs = append(objProcs, start(t, l, filepath.Join(e.bins, "arca-object-server"), "--config-file", oconf))
		e.objURLs = append(e.objURLs, fmt.Sprintf("http://127.0.0.1:%d", port))
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
	py := exec.Command("/usr/bin/python3", append([]string{"-c", `
import os, sys
from swift.common.ring import RingBuilder
rb = RingBuilder(6, 2, 0)
for i, port in enumerate(sys.argv[2:]):
    rb.add_dev({'id': i, 'region': 1, 'zone': i + 1, 'ip': '127.0.0.1', 'port': int(port),
                'replication_ip': '127.0.0.1', 'replication_port': int(port),
                'device': 'd%d' % (i + 1), 'weight': 100.0, 'meta': ''})
rb.rebalance()
rb.get_ring().save(os.path.join(sys.argv[1], 'object.ring.gz'))
`, ringDir}, ports...)...)
	if out, err := py.CombinedOutput(); err != nil {
		t.Fatalf("building the object ring: %v\n%s", err, out)
	}

	// A private Swift proxy from the stack's configuration, on our rings.
	pconf, err := os.ReadFile(filepath.Join(swiftDir, "proxy-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	proxyPort := testapi.FreePort(t)
	pc := regexp.MustCompile(`(?m)^bind_port = .*$`).ReplaceAllString(string(pconf), "bind_port = "+strconv.Itoa(proxyPort))
	pc = regexp.MustCompile(`(?m)^swift_dir = .*$`).ReplaceAllString(pc, "swift_dir = "+ringDir+"\nuser = root")
	proxyConf := filepath.Join(e.work, "proxy-server.conf")
	if err := os.WriteFile(proxyConf, []byte(pc), 0o600); err != nil {
		t.Fatal(err)
	}
	pl := &logBuf{}
	e.logs["swift-proxy-server"] = pl
	proxy := start(t, pl, "swift-proxy-server", proxyConf, "-v")
	e.proxy = fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	// arca-swift-filter in front of it, the key service from the catalog.
	filterPort := testapi.FreePort(t)
	e.filter = fmt.Sprintf("http://127.0.0.1:%d", filterPort)
	fconf := filepath.Join(e.work, "swift-filter.conf")
	fbody := fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
reseller_prefix = AUTH
access_log = true
[upstream]
url = %s
%s
[key_service]
region_name = %s
interface = public
active_key_cache_ttl = %[5]d
error_cache_ttl = %[5]d
`, filterPort, e.proxy, authtoken, e.region, o.cacheTTL)
	if err := os.WriteFile(fconf, []byte(fbody), 0o600); err != nil {
		t.Fatal(err)
	}
	fl := &logBuf{}
	e.logs["arca-swift-filter"] = fl
	filter := start(t, fl, filepath.Join(e.bins, "arca-swift-filter"), "--config-file", fconf)

	for i, p := range objProcs {
		waitHealthy(t, p, fmt.Sprintf("http://127.0.0.1:%s/healthcheck", ports[i]))
	}
	waitHealthy(t, proxy, e.proxy+"/healthcheck")
	waitHealthy(t, filter, e.filter+"/healthcheck")
	e.objServers, e.proxyProc, e.filterProc = objProcs, proxy, filter

	e.users = map[string]*user{
		testkeystone.Demo: authenticate(t, ks, testkeystone.Demo),
		testkeystone.Alt:  authenticate(t, ks, testkeystone.Alt),
	}
	return e
}

// startAPI (re)starts arca-api from its configuration.
func (e *env) startAPI() {
	e.t.Helper()
	e.api = start(e.t, e.apiLog, filepath.Join(e.bins, "arca-api"), "--config-file", e.apiConf)
	waitHealthy(e.t, e.api, e.apiURL+"/healthcheck")
}

// removeCatalog deletes the private region's endpoints, the service
// registered under our name, and the region.
func (e *env) removeCatalog() {
	t := e.t
	ic := e.ks.Client(t, testkeystone.Admin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pages, err := endpoints.List(ic, endpoints.ListOpts{RegionID: e.region}).AllPages(ctx); err == nil {
		eps, _ := endpoints.ExtractEndpoints(pages)
		for _, ep := range eps {
			if err := endpoints.Delete(ctx, ic, ep.ID).ExtractErr(); err != nil {
				t.Errorf("cleanup: endpoint %s: %v", ep.ID, err)
			}
		}
	}
	if pages, err := services.List(ic, services.ListOpts{Name: e.svcName}).AllPages(ctx); err == nil {
		svcs, _ := services.ExtractServices(pages)
		for _, s := range svcs {
			if err := services.Delete(ctx, ic, s.ID).ExtractErr(); err != nil {
				t.Errorf("cleanup: service %s: %v", s.ID, err)
			}
		}
	}
	if err := regions.Delete(ctx, ic, e.region).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("cleanup: region %s: %v", e.region, err)
	}
}
