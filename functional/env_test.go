package functional_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// keyIDHeader is where arca-object-server records an object's key id.
const keyIDHeader = sysmeta.Prefix + "Key-Id"

func md5hex(b []byte) string {
	s := md5.Sum(b) //nolint:gosec // checksums of test files, as swift does
	return hex.EncodeToString(s[:])
}

// env is the private deployment of the scenario.
type env struct {
	t       *testing.T
	ks      *testenv.KeystoneEnv
	tag     string
	work    string
	bins    string
	region  string
	svcName string
	apiURL  string
	apiConf string
	api     *testenv.Proc
	apiLog  *testenv.LogBuffer
	filter  string // URL of arca-swift-filter
	// entry is where clients' requests go: filter, or, for the pipeline
	// shape (envOptions.shape), the Swift proxy with the arca middleware.
	entry    string
	shape    string
	proxy    string // URL of the private swift-proxy-server
	devices  []string
	users    map[string]*user
	adminEnv []string
	// logs are the daemons' logs by name, for tests that read them; each
	// is shown when the test fails.
	logs map[string]*testenv.LogBuffer
	// registered is arca-manage register's output.
	registered string
	// keyURL is the key-manager URL in the catalog: apiURL, or what
	// envOptions.keyServiceURL returned.
	keyURL string
	// The daemons started besides arca-api, for tests that watch them.
	objServers []*testenv.Proc
	objURLs    []string
	proxyProc  *testenv.Proc
	filterProc *testenv.Proc
}

// envOptions adjust the deployment of newEnvWith; the zero value is newEnv's.
type envOptions struct {
	// keyServiceURL, when set, is given arca-api's host:port and returns
	// the URL to register in the catalog instead (a testenv.TCPProxy in front of
	// arca-api, say), which the filter and the object servers then use.
	keyServiceURL func(apiAddr string) string
	// cacheTTL is the seconds of every key cache (active id, material,
	// errors) of the filter and the object servers; 0 means 1. It is also
	// arca-api's [project_keys] active_key_cache_ttl. The deployment rule
	// asks for the object servers' value plus a margin (70 s against 60 s by
	// default); equal values are safe here because the key client ages an
	// active id from the moment it asked and never keeps it longer than the
	// guard arca-api states in X-Arca-Active-Key-Cache-Ttl.
	cacheTTL int
	// filterActiveTTL, when set, is the filter's (and the decision
	// socket's) active_key_cache_ttl instead of cacheTTL (a filter whose
	// cache outlives a rotation).
	filterActiveTTL int
	// apiActiveKeyTTL, when set, is arca-api's [project_keys]
	// active_key_cache_ttl instead of cacheTTL.
	apiActiveKeyTTL int
	// shape is the arca shape clients' requests go through: shapeProxy
	// (the default: arca-swift-filter in front of the proxy) or
	// shapePipeline (a second proxy on the same object servers with the
	// arca middleware in its pipeline, asking arca-swift-filter's
	// decision socket, which reaches the key service at keyURL).
	shape string
}

type user struct {
	name, token, project string
}

// swift runs the swift CLI as u against the filter.
func (e *env) swift(u *user, dir string, args ...string) (string, error) {
	e.t.Helper()
	full := append([]string{"--os-auth-token", u.token, "--os-storage-url", e.storage(u.project)}, args...)
	return testenv.Run(nil, dir, "swift", full...)
}

func (e *env) storage(project string) string { return e.entry + "/v1/AUTH_" + project }

// manage runs arca-manage with the private arca-api's configuration.
func (e *env) manage(args ...string) (string, error) {
	e.t.Helper()
	return testenv.Run(e.adminEnv, "", filepath.Join(e.bins, "arca-manage"), append([]string{"--config-file", e.apiConf}, args...)...)
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
	var ids []string
	e.eachDataFile(account, container, object, func(_, _ string, md *diskfile.RawMetadata) {
		ids = append(ids, md.Values[keyIDHeader])
	})
	return ids
}

// eachDataFile calls fn with the device folder, the path and the metadata
// of every .data file of the object on the object devices.
func (e *env) eachDataFile(account, container, object string, fn func(dev, path string, md *diskfile.RawMetadata)) {
	name := "/" + account + "/" + container + "/" + object
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
			fn(dev, path, md)
			return nil
		})
	}
}

// grepDevices returns where under the object devices needle is found: a
// file's content or extended attributes (testenv.ScanAtRest).
func (e *env) grepDevices(needle []byte) []string {
	var hits []string
	for _, f := range testenv.ScanAtRest(e.t, e.devices, []testenv.Secret{{Name: "plaintext", Value: string(needle)}}).Found {
		hits = append(hits, f.Path+" ("+f.Where+")")
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
	if o.filterActiveTTL <= 0 {
		o.filterActiveTTL = o.cacheTTL
	}
	if o.apiActiveKeyTTL <= 0 {
		o.apiActiveKeyTTL = o.cacheTTL
	}
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "openstack", "swift", "swift-proxy-server", "/usr/bin/python3")
	e := &env{t: t, ks: ks, tag: testenv.RandomHex(t, 4), work: t.TempDir(), bins: testenv.Binaries(t), logs: map[string]*testenv.LogBuffer{}}
	e.region = "arca-func-" + e.tag
	e.svcName = "arca-func-" + e.tag
	e.adminEnv = ks.OpenRC(testenv.UserAdmin, ks.Region)

	// arca-api on a fresh MariaDB database, keys and schema by arca-manage.
	_, dsn := testenv.RawMySQL(t)
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
	apiPort := testenv.FreePort(t)
	e.apiURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	e.apiConf = filepath.Join(e.work, "arca.conf")
	authtoken := ks.AuthtokenSection()
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

[project_keys]
active_key_cache_ttl = %d

%s`, apiPort, e.apiURL, dbURL.String(), filepath.Join(e.work, "master.key"), o.apiActiveKeyTTL, authtoken)
	if err := os.WriteFile(e.apiConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"kek", "rotate"}, {"db", "upgrade"}} {
		if out, err := e.manage(args...); err != nil {
			t.Fatalf("arca-manage %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	e.apiLog = testenv.NewLog(t, "arca-api")
	e.logs["arca-api"] = e.apiLog
	e.startAPI()
	e.keyURL = e.apiURL
	if o.keyServiceURL != nil {
		e.keyURL = o.keyServiceURL(fmt.Sprintf("127.0.0.1:%d", apiPort))
	}

	// Scenario 1's registration comes first: the filter and the object
	// servers find arca-api in the private region's catalog. Its entries go
	// when the test ends.
	ks.ShareKeyManagers(t)
	t.Cleanup(func() { ks.RemoveRegion(t, e.region, e.svcName) })
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
	// through the catalog of the private region, behind a private Swift
	// proxy from the stack's configuration.
	// As arca-object (key-manager:object-server only), as deployed.
	objConf := testenv.ObjectServerConfig{Keystone: ks.UserConfig(testenv.UserArcaObject), CacheTTL: o.cacheTTL}
	objConf.Keystone.RegionName = e.region
	cluster := testenv.StartCluster(t, swiftDir, testenv.ClusterOptions{Work: e.work, PartPower: 6, Object: objConf})
	for _, n := range cluster.Nodes {
		e.devices = append(e.devices, n.Devices)
		e.objServers = append(e.objServers, n.Proc)
		e.objURLs = append(e.objURLs, n.URL)
		e.logs["arca-object-server "+n.Device] = n.Proc.Log
	}
	e.proxy, e.proxyProc = cluster.ProxyURL, cluster.Proxy
	e.logs["swift-proxy-server"] = cluster.Proxy.Log

	// arca-swift-filter in front of it, the key service from the catalog.
	// As its own service user, arca-filter (service and
	// key-manager:swift-filter), as deployed.
	fc := ks.UserConfig(testenv.UserArcaFilter)
	filterAuth := fmt.Sprintf("[keystone_authtoken]\nwww_authenticate_uri = %s\nauth_type = %s\n", fc.WWWAuthenticateURI, fc.AuthType) +
		testenv.PasswordOptions(fc)
	filterPort := testenv.FreePort(t)
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
active_key_cache_ttl = %[6]d
error_cache_ttl = %[5]d
`, filterPort, e.proxy, filterAuth, e.region, o.cacheTTL, o.filterActiveTTL)
	if err := os.WriteFile(fconf, []byte(fbody), 0o600); err != nil {
		t.Fatal(err)
	}
	fl := testenv.NewLog(t, "arca-swift-filter")
	e.logs["arca-swift-filter"] = fl
	e.filterProc = testenv.StartProc(t, fl, filepath.Join(e.bins, "arca-swift-filter"), "--config-file", fconf)
	e.filterProc.WaitHealthy(t, e.filter+"/healthcheck")
	e.entry, e.shape = e.filter, shapeProxy
	if o.shape == shapePipeline {
		e.startPipeline(swiftDir, cluster.RingDir, o.cacheTTL, o.filterActiveTTL)
	}

	e.users = map[string]*user{}
	for _, who := range []string{testenv.UserDemo, testenv.UserAlt} {
		u := &user{name: who}
		u.token, u.project = ks.ScopedToken(t, who)
		e.users[who] = u
	}
	return e
}

// startPipeline starts the pipeline shape's entry: arca-swift-filter's
// decision socket (as arca-filter, the key service at keyURL, its active
// key ids cached activeTTL seconds, the rest cacheTTL) and a Swift proxy
// on the object servers' rings with the arca middleware asking it.
func (e *env) startPipeline(swiftDir, ringDir string, cacheTTL, activeTTL int) {
	e.t.Helper()
	dec, sock := testenv.StartDecisionSocket(e.t, e.ks, testenv.DecisionSocketOptions{Work: e.work, KeyServiceURL: e.keyURL, CacheTTL: cacheTTL, ActiveTTL: activeTTL})
	e.logs["arca-swift-filter pipeline"] = dec.Log
	p, u := testenv.StartPipelineProxy(e.t, swiftDir, ringDir, e.work, "proxy-pipeline", sock)
	p.WaitHealthy(e.t, u+"/healthcheck")
	e.logs["swift-proxy-server pipeline"] = p.Log
	e.entry, e.shape = u, shapePipeline
}

// startAPI (re)starts arca-api from its configuration.
func (e *env) startAPI() {
	e.t.Helper()
	e.api = testenv.StartProc(e.t, e.apiLog, filepath.Join(e.bins, "arca-api"), "--config-file", e.apiConf)
	e.api.WaitHealthy(e.t, e.apiURL+"/healthcheck")
}
