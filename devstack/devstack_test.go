package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// TestShellcheck keeps the plugin and the stand-ins shellcheck-clean.
func TestShellcheck(t *testing.T) {
	testenv.RequireTools(t, "shellcheck")
	cmd := exec.Command("shellcheck", "-x", "devstack/plugin.sh", "devstack/lib/swift-filter", "devstack/lib/swift-ec", "devstack/settings", "devstack/testdata/standins.sh")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// plugin is one run of devstack/plugin.sh's phases in a temporary DevStack.
type plugin struct {
	t       *testing.T
	repo    string
	dir     string
	env     []string // DevStack's variables for the phases
	osAdmin []string // OS_* of the admin, for the stand-ins and checks
	vars    map[string]string
	user    *stackUser    // STACK_USER the phases run as; nil: this process's
	timeout time.Duration // of each phase; 0: phaseTimeout
}

// phaseTimeout bounds one phase: post-config makes some twenty Keystone
// calls through the openstack CLI.
const phaseTimeout = 4 * time.Minute

func (p *plugin) phaseTimeout() time.Duration {
	if p.timeout != 0 {
		return p.timeout
	}
	return phaseTimeout
}

// bounded makes the end of cmd's context end cmd's whole process group (a
// phase's go build, curl or sleep; not the services run_process starts in
// sessions of their own, which killRecorded stops) and stops waiting for
// its output soon after. Without it a killed bash leaves a child holding
// the output pipe, the test waits for it until go test's own timeout,
// whose panic skips every cleanup (the test's Keystone service, user,
// sudoers drop-in). After stackUser.as, which sets SysProcAttr.
func bounded(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
}

// set gives the phases DevStack's variable k (the last value set wins).
func (p *plugin) set(k, v string) {
	if p.vars == nil {
		p.vars = map[string]string{}
	}
	p.vars[k] = v
	p.env = append(p.env, k+"="+v)
}

// run sources the stand-ins, the plugin's settings and plugin.sh with
// the phase's arguments, as stack.sh does.
func (p *plugin) run(args ...string) (string, error) {
	script := `set -o errexit -o pipefail
source "$1"
source "$ARCA_DIR/devstack/settings"
shift
source "$ARCA_DIR/devstack/plugin.sh" "$@"
`
	ctx, cancel := context.WithTimeout(context.Background(), p.phaseTimeout())
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, "phase", filepath.Join(p.repo, "devstack", "testdata", "standins.sh")}, args...)...)
	cmd.Env = append(append(os.Environ(), p.env...), p.osAdmin...)
	if p.user != nil {
		p.user.as(cmd)
	}
	bounded(cmd)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	p.t.Logf("phase %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return string(out), err
}

// phase runs a phase that must succeed.
func (p *plugin) phase(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("plugin.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, p.serviceLogTails())
	}
	return out
}

// serviceLogTails is the end of each log run_process wrote, for a failed
// phase's message: a service that did not answer says why there, and the
// test's folder is gone by the time anyone reads the failure.
func (p *plugin) serviceLogTails() string {
	logs, _ := filepath.Glob(filepath.Join(p.vars["LOGDIR"], "*.log"))
	var b strings.Builder
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-20):]
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s\n", filepath.Base(path), strings.Join(lines, "\n"))
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func httpStatus(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// killRecorded stops whatever the stand-in run_process recorded and is
// still running (after a failed unstack): by PID, its own process group.
func killRecorded(t *testing.T, serviceDir string) {
	entries, _ := os.ReadDir(serviceDir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".pid") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(serviceDir, e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		t.Logf("stopped %s (pid %d) left running", e.Name(), pid)
	}
}

// TestRealStackDevStackPlugin runs the plugin's phases (install,
// post-config, extra, unstack, clean) with stand-ins for DevStack's
// functions that do the real work against the project's stack: a private
// region of the real Keystone catalog, a fresh database on the real
// MariaDB, a private Swift proxy, container server and object rings derived
// from the stack's, and real processes. As in DevStack, the phases and the
// services run as STACK_USER, an ordinary user with sudo, and the binaries
// are Arca's pre-built ones (ARCA_BUILD=False). Then the catalog, the
// configs and the services.
func TestRealStackDevStackPlugin(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "openstack", "swift", "swift-proxy-server", "swift-container-server", "swift-object-server",
		"swift-object-replicator", "swift-ring-builder", "rsync", "mysql", "curl", "setsid", "/usr/bin/python3")
	dsn := os.Getenv("ARCA_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = testenv.DefaultMySQLDSN
	}
	mcfg, err := mysql.ParseDSN(dsn)
	if err != nil || mcfg.Net != "tcp" {
		t.Fatalf("ARCA_TEST_MYSQL_DSN %q: want a tcp go-sql-driver DSN (%v)", dsn, err)
	}
	dbHost, dbPort, err := net.SplitHostPort(mcfg.Addr)
	if err != nil {
		t.Fatal(err)
	}

	tag := testenv.RandomHex(t, 4)
	ic := ks.Client(t, testenv.UserAdmin)
	// The test's folders are root's (as / is) and open to STACK_USER, who
	// owns only what DevStack gives it.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stack := newStackUser(t, filepath.Join(dir, "home"))
	// post-config's twenty Keystone calls and, for ARCA_EC_POLICY, its
	// ring (a dozen swift-ring-builder runs) took more than 4 minutes
	// on a loaded machine (load average 30 on 2 cores).
	p := &plugin{t: t, repo: stack.readableRepo(t, repoRoot(t), dir), dir: dir, user: stack, timeout: 12 * time.Minute}
	admin := ks.OpenRC(testenv.UserAdmin, ks.Region)
	p.osAdmin = admin
	region := "arca-dstest-" + tag
	svcUser := "arca-dstest-" + tag
	objUser, filterUser := "arca-dstest-obj-"+tag, "arca-dstest-flt-"+tag
	dbName := "arca_dstest_" + tag
	keystoneURI := strings.TrimSuffix(strings.TrimSuffix(ks.URL, "/"), "/v3")
	// The services bind these a minute or more later, while other
	// packages' tests open connections: ServicePort keeps them out of the
	// ephemeral range those take their ports from. Node N's
	// arca-object-server listens on objBase + 10 * (N - 1). Arca's
	// services (arca-api, the filter on the public port, the object
	// servers) also open their metrics listener MetricsPortOffset above
	// their port, which must be kept out of that range too: an object
	// server whose metrics port a test's connection held did not start.
	const mp = metrics.MetricsPortOffset
	apiPort, publicPort, proxyPort := testenv.ServicePort(t, 0, mp), testenv.ServicePort(t, 0, mp), testenv.ServicePort(t)
	objBase := testenv.ServicePort(t, 0, 10, mp, mp+10)
	// Swift's own object servers (s-object) of the two nodes, its
	// container server (s-container) and rsyncd.
	swiftObj := []int{testenv.ServicePort(t), testenv.ServicePort(t)}
	containerPort, rsyncPort := testenv.ServicePort(t), testenv.ServicePort(t)
	// /etc: root's. The plugin creates ARCA_CONF_DIR in it with sudo;
	// nova's, cinder's and glance's are STACK_USER's, as lib/* make them.
	etc := filepath.Join(dir, "etc")
	consumers := map[string]string{
		"nova.conf": filepath.Join(etc, "nova", "nova.conf"), "cinder.conf": filepath.Join(etc, "cinder", "cinder.conf"),
		"glance-api.conf": filepath.Join(etc, "glance", "glance-api.conf"),
		"tempest.conf":    filepath.Join(dir, "opt", "tempest", "etc", "tempest.conf"),
	}
	p.vars = map[string]string{
		"DEST": filepath.Join(dir, "opt"), "DATA_DIR": filepath.Join(dir, "data"), "STACK_USER": stack.name,
		"SERVICE_DIR": filepath.Join(dir, "status"), "LOGDIR": filepath.Join(dir, "logs"),
		// SERVICE_IP_VERSION=6's listen address, bracketed as stackrc
		// writes it; lib/swift's unquoted one. Keystone stays on IPv4.
		"SERVICE_HOST": "127.0.0.1", "SERVICE_LISTEN_ADDRESS": "[::]", "SERVICE_PROTOCOL": "http",
		"SERVICE_PASSWORD": "Dst-" + testenv.RandomHex(t, 8), "SERVICE_PROJECT_NAME": ks.Users[testenv.UserArca].Project,
		"SERVICE_DOMAIN_NAME": ks.UserDomain, "KEYSTONE_SERVICE_URI": keystoneURI, "REGION_NAME": ks.Region,
		"SSL_BUNDLE_FILE": "", "MEMCACHE_SERVERS": "", "ENABLE_DEBUG_LOG_LEVEL": "False",
		"DATABASE_TYPE": "mysql", "DATABASE_HOST": dbHost, "DATABASE_PORT": dbPort, "DATABASE_USER": mcfg.User,
		"DATABASE_PASSWORD": mcfg.Passwd,
		"SWIFT_CONF_DIR":    filepath.Join(etc, "swift"), "SWIFT_DEFAULT_BIND_PORT": strconv.Itoa(publicPort),
		"SWIFT_DEFAULT_BIND_PORT_INT": strconv.Itoa(proxyPort), "SWIFT_SERVICE_LISTEN_ADDRESS": "::",
		"SWIFT_REPLICAS": "2", "SWIFT_USE_MOD_WSGI": "False",
		// A venv install: swift-ring-builder is in SWIFT_BIN_DIR only.
		"SWIFT_BIN_DIR": filepath.Join(dir, "opt", "swift-venv", "bin"),
		// Services whose configs the plugin edits (lib/barbican's
		// key_manager) and tempest's (test-config).
		"ENABLED_SERVICES": "key,mysql,s-proxy,s-object,s-account,s-container,g-api,n-cpu,c-vol,tempest",
		"NOVA_CONF":        consumers["nova.conf"], "CINDER_CONF": consumers["cinder.conf"],
		"GLANCE_API_CONF": consumers["glance-api.conf"], "TEMPEST_CONFIG": consumers["tempest.conf"],
		// The plugin's own knobs: a private region, user, database, ports.
		"ARCA_DIR": p.repo, "ARCA_CONF_DIR": filepath.Join(etc, "arca"),
		"ARCA_REGION_NAME": region, "ARCA_SERVICE_USER": svcUser, "ARCA_DB_NAME": dbName,
		"ARCA_OBJECT_SERVICE_USER": objUser, "ARCA_FILTER_SERVICE_USER": filterUser,
		// Another storage node's address, for trusted_networks.
		"SWIFT_STORAGE_IPS": "127.0.0.2",
		"ARCA_API_PORT":     strconv.Itoa(apiPort), "ARCA_OBJECT_PORT_BASE": strconv.Itoa(objBase),
		"ARCA_SERVICE_TIMEOUT": "60", "ARCA_GO_DIR": filepath.Join(dir, "opt", "arca-go"),
		// Arca's binaries, built once by this test binary, where a package
		// would put them (root's): STACK_USER has no Go build cache, and
		// install must not look for a Go (ARCA_GO names none).
		"ARCA_BUILD": "False", "ARCA_BIN_DIR": filepath.Join(dir, "usr", "bin"),
		"ARCA_GO": filepath.Join(dir, "no-go", "go"),
		// An erasure-coded policy laid out by the plugin: 4+2 on the two
		// nodes' devices (three each), EC segments of 8 KiB so that a
		// small object spans several.
		"ARCA_EC_POLICY": "dstest-ec", "ARCA_EC_SEGMENT_SIZE": "8192",
	}
	for k, v := range p.vars {
		p.set(k, v)
	}
	binaries := []string{"arca-api", "arca-manage", "arca-swift-filter", "arca-object-server"}
	if err := os.MkdirAll(p.vars["ARCA_BIN_DIR"], 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range binaries {
		copyFile(t, filepath.Join(testenv.Binaries(t), b), filepath.Join(p.vars["ARCA_BIN_DIR"], b))
		if err := os.Chmod(filepath.Join(p.vars["ARCA_BIN_DIR"], b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// DevStack's global venv: Swift's commands in SWIFT_BIN_DIR, run by the
	// venv's python (the system's Swift through system site packages),
	// whose site folder gets the plugin's .pth.
	swiftPython := swiftVenv(t, p.vars["SWIFT_BIN_DIR"])
	builderLog := filepath.Join(p.vars["LOGDIR"], "swift-ring-builder.log")
	writeExec(t, filepath.Join(p.vars["SWIFT_BIN_DIR"], "swift-ring-builder"),
		fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%q\nexec /usr/bin/swift-ring-builder \"$@\"\n", builderLog))

	sw := p.vars["SWIFT_CONF_DIR"]
	swiftData := filepath.Join(dir, "data", "swift")
	writeSwiftConfigs(t, swiftDir, sw, swiftData, stack.name, publicPort, swiftObj, containerPort, rsyncPort)
	// lib/swift's proxy-server.conf, before the plugin edits it.
	origProxyConf := readFile(t, filepath.Join(sw, "proxy-server.conf"))
	// Node N's devices, as DevStack's create_swift_disk lays them out.
	devices := filepath.Join(swiftData, "1")
	devices2 := filepath.Join(swiftData, "2")
	// What stack.sh and lib/* give STACK_USER before the plugin runs.
	stack.own(t, p.vars["DEST"], p.vars["DATA_DIR"], p.vars["SERVICE_DIR"], p.vars["LOGDIR"], sw,
		filepath.Dir(consumers["nova.conf"]), filepath.Dir(consumers["cinder.conf"]),
		filepath.Dir(consumers["glance-api.conf"]), filepath.Dir(consumers["tempest.conf"]))
	// Swift's servers of the test read its swift.conf (policy 1, silver),
	// not the stack's /etc/swift/swift.conf: testdata/swiftconf.
	swiftEnv := []string{"PYTHONPATH=" + filepath.Join(p.repo, "devstack", "testdata", "swiftconf"), "SWIFT_CONF_FILE=" + filepath.Join(sw, "swift.conf")}

	// The plugin, as DevStack, finds the key-manager service by type: no
	// other test's may come or go meanwhile (testenv.OwnKeyManagers).
	ks.OwnKeyManagers(t)
	// Cleanup, registered before anything is created, runs last: processes
	// by recorded PID, catalog entries in our region, the region, our
	// service user, our service (only if the plugin created it), the database.
	t.Cleanup(func() {
		killRecorded(t, p.vars["SERVICE_DIR"])
		ks.RemoveRegion(t, region, p.vars["ARCA_SERVICE_NAME"])
		for _, u := range []string{svcUser, objUser, filterUser} {
			removeUser(t, ks, u)
		}
		drop := exec.Command("mysql", "-h", dbHost, "-P", dbPort, "-u", mcfg.User, "-e", "DROP DATABASE IF EXISTS `"+dbName+"`")
		if mcfg.Passwd != "" {
			drop.Args = append(drop.Args, "-p"+mcfg.Passwd)
		}
		if out, err := drop.CombinedOutput(); err != nil {
			t.Errorf("cleanup: dropping %s: %v %s", dbName, err, out)
		}
	})
	// Our own service name: the cleanup removes the service only when the
	// plugin created it (get_or_create_service reuses an existing
	// key-manager service, as in DevStack).
	p.set("ARCA_SERVICE_NAME", "arca-dstest-"+tag)
	// A second region is created by the operator in DevStack's multi-region
	// set-ups; Keystone wants it to exist before endpoints name it.
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	if _, err := regions.Create(rctx, ic, regions.CreateOpts{ID: region}).Extract(); err != nil {
		t.Fatal(err)
	}

	// stack.sh's order: pre-install, install, post-config; then
	// start_swift (object servers, rsyncd, the proxy, /info through the
	// public port) and Glance's image upload through Swift; extra;
	// test-config.
	p.phase("stack", "pre-install")
	if out := p.phase("stack", "install"); !strings.Contains(out, "Using Arca's binaries in "+p.vars["ARCA_BIN_DIR"]) {
		t.Fatalf("stack install with ARCA_BUILD=False did not take ARCA_BIN_DIR's binaries:\n%s", out)
	}
	p.phase("stack", "post-config")
	// ARCA_CONF_DIR, in root's etc: made with sudo, STACK_USER's.
	if st, err := os.Stat(p.vars["ARCA_CONF_DIR"]); err != nil {
		t.Fatal(err)
	} else if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != stack.uid || st.Mode().Perm() != 0o750 {
		t.Errorf("%s: owner %v, mode %04o; want STACK_USER's (uid %d), 0750", p.vars["ARCA_CONF_DIR"], st.Sys(), st.Mode().Perm(), stack.uid)
	}

	// The pipeline shape (the default): arca in the proxy's pipeline, the
	// proxy left on the public port.
	sock := filepath.Join(p.vars["DATA_DIR"], "arca", "run", "decision.sock")
	checkPipelineConf(t, readFile(t, filepath.Join(sw, "proxy-server.conf")), publicPort, sock)
	p.standin(fmt.Sprintf(`ENABLED_SERVICES+=,s-object-2,rsyncd
export %[4]q %[5]q
run_process s-object "swift-object-server %[1]s/object-server/1.conf -v"
run_process s-object-2 "swift-object-server %[1]s/object-server/2.conf -v"
run_process s-container "swift-container-server %[1]s/container-server/1.conf -v"
run_process rsyncd "rsync --daemon --no-detach --config=%[1]s/rsyncd.conf --port=%[3]d"
run_process s-proxy "$SWIFT_BIN_DIR/swift-proxy-server %[1]s/proxy-server.conf -v"
wait_for_service 60 http://127.0.0.1:%[2]d/info || { cat "$LOGDIR/s-proxy.log"; exit 1; }`, sw, publicPort, rsyncPort, swiftEnv[0], swiftEnv[1]))
	token, project := ks.ScopedToken(t, testenv.UserDemo)
	storage := fmt.Sprintf("http://127.0.0.1:%d/v1/AUTH_%s", publicPort, project)
	t.Run("image upload between post-config and extra", func(t *testing.T) {
		// What upload_image does with Glance's Swift store: a container,
		// then the image, through Swift's public endpoint.
		cont := "glance-dstest-" + tag
		image := bytes.Repeat([]byte("cirros "+tag), 4096)
		for _, put := range []struct {
			path string
			body []byte
		}{{cont, nil}, {cont + "/cirros", image}} {
			if code := swiftReqRetried(t, "PUT", storage+"/"+put.path, token, put.body); code != 201 && code != 202 {
				t.Fatalf("PUT %s through Swift's public port before stack extra: %d", put.path, code)
			}
		}
		t.Cleanup(func() {
			swiftReq(t, "DELETE", storage+"/"+cont+"/cirros", token, nil)
			swiftReq(t, "DELETE", storage+"/"+cont, token, nil)
		})
	})
	p.phase("stack", "extra")
	p.phase("stack", "test-config")

	t.Run("configs", func(t *testing.T) {
		arca := readFile(t, filepath.Join(p.vars["ARCA_CONF_DIR"], "arca.conf"))
		for _, want := range []string{
			"host_href = http://127.0.0.1:" + strconv.Itoa(apiPort),
			"auth_strategy = keystone",
			fmt.Sprintf("connection = mysql+pymysql://%s", mcfg.User),
			"/" + dbName + "?charset=utf8",
			"username = " + svcUser,
			"auth_url = " + keystoneURI,
			"[keystone_authtoken]",
			// The destroy guard: the object servers' active-id cache
			// (60 s) plus the margin (10 s).
			"[project_keys]",
			"active_key_cache_ttl = 70\n",
		} {
			if !strings.Contains(arca, want) {
				t.Errorf("arca.conf lacks %q:\n%s", want, arca)
			}
		}
		// Each object server: the caches the guard is measured against, and
		// the peers it answers.
		obj := readFile(t, filepath.Join(p.vars["ARCA_CONF_DIR"], "object-server-1.conf"))
		for _, want := range []string{"\nactive_key_cache_ttl = 60\n", "\nkey_cache_ttl = 60\n", "\ntrusted_networks = "} {
			if !strings.Contains(obj, want) {
				t.Errorf("object-server-1.conf lacks %q:\n%s", want, obj)
			}
		}
		key, err := os.Stat(filepath.Join(p.vars["ARCA_CONF_DIR"], "master.key"))
		if err != nil || key.Mode().Perm()&0o077 != 0 {
			t.Errorf("master.key: %v, mode %v", err, key)
		}
		filter := readFile(t, filepath.Join(p.vars["ARCA_CONF_DIR"], "swift-filter.conf"))
		for _, want := range []string{
			"[pipeline]\nsocket = " + sock + "\nsocket_group = " + stack.name + "\n",
			"endpoint = http://127.0.0.1:" + strconv.Itoa(apiPort),
		} {
			if !strings.Contains(filter, want) {
				t.Errorf("swift-filter.conf lacks %q:\n%s", want, filter)
			}
		}
		overlay := readFile(t, filepath.Join(p.vars["ARCA_CONF_DIR"], "object-server-1.conf"))
		for _, want := range []string{
			"bind_port = " + strconv.Itoa(objBase), "[arca]", "key_service_url = http://127.0.0.1:" + strconv.Itoa(apiPort),
			// Loopback, SERVICE_HOST (already in it) and SWIFT_STORAGE_IPS.
			"trusted_networks = 127.0.0.0/8, ::1, 127.0.0.1, 127.0.0.2",
		} {
			if !strings.Contains(overlay, want) {
				t.Errorf("object-server-1.conf lacks %q:\n%s", want, overlay)
			}
		}
		// Every policy's ring (object-1.ring.gz, DevStack's copy, too)
		// names arca-object-server's port per node; the replication port
		// stays Swift's object server's, that of rsyncd's module.
		want := fmt.Sprintf("127.0.0.1:%d/%d/sdb1 127.0.0.1:%d/%d/sdb1", objBase, swiftObj[0], objBase+10, swiftObj[1])
		for _, ring := range []string{"object.ring.gz", "object-1.ring.gz"} {
			if got := ringDevices(t, filepath.Join(sw, ring)); got != want {
				t.Errorf("%s devices (ip:port/replication port/device) %q, want %q", ring, got, want)
			}
		}
		// ARCA_EC_POLICY: policy 2, above silver, and its ring: six
		// devices dealt in turn to policy 0's (sdb1 of each node, then
		// sdb1-ec1, sdb1-ec2 beside them), arca-object-server's port for
		// service and replication (SSYNC).
		swiftConf := readFile(t, filepath.Join(sw, "swift.conf"))
		if want := "[storage-policy:2]\nname = dstest-ec\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\n" +
			"ec_num_data_fragments = 4\nec_num_parity_fragments = 2\nec_object_segment_size = 8192\n"; !strings.Contains(swiftConf, want) {
			t.Errorf("swift.conf lacks %q:\n%s", want, swiftConf)
		}
		var ec []string
		for _, dev := range []string{"sdb1", "sdb1-ec1", "sdb1-ec2"} {
			for _, port := range []int{objBase, objBase + 10} {
				ec = append(ec, fmt.Sprintf("127.0.0.1:%d/%d/%s", port, port, dev))
			}
		}
		if got := ringDevices(t, filepath.Join(sw, "object-2.ring.gz")); got != strings.Join(ec, " ") {
			t.Errorf("object-2.ring.gz devices %q, want %q", got, strings.Join(ec, " "))
		}
		if log, err := os.ReadFile(builderLog); err != nil || !strings.Contains(string(log), "write_ring") {
			t.Errorf("swift-ring-builder of SWIFT_BIN_DIR not used: %v %q", err, log)
		}
		for _, want := range []string{"crypto_protocol = aes_256_cbc\n", "debug = False\n", "bind_host = ::\n"} {
			if !strings.Contains(arca, want) {
				t.Errorf("arca.conf lacks %q:\n%s", want, arca)
			}
		}
	})

	t.Run("test-config and consumers", func(t *testing.T) {
		for name, wants := range map[string][]string{
			"tempest.conf":    {"[service_available]\nbarbican = True", "[enforce_scope]\nbarbican = True"},
			"nova.conf":       {"[key_manager]\nbackend = barbican"},
			"cinder.conf":     {"[key_manager]\nbackend = barbican"},
			"glance-api.conf": {"[key_manager]\nbackend = barbican"},
		} {
			body, _ := os.ReadFile(consumers[name])
			for _, want := range wants {
				if !strings.Contains(string(body), want) {
					t.Errorf("%s lacks %q:\n%s", name, want, body)
				}
			}
		}
	})

	// Each service's credentials are its own user's, in a file only the
	// DevStack user (STACK_USER) can read or write.
	t.Run("credentials", func(t *testing.T) {
		confDir := p.vars["ARCA_CONF_DIR"]
		for file, user := range map[string]string{
			"arca.conf":            svcUser,
			"swift-filter.conf":    filterUser,
			"object-server-1.conf": objUser,
		} {
			path := filepath.Join(confDir, file)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600 (it holds %s's password)", file, st.Mode().Perm(), user)
			}
			if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != stack.uid {
				t.Errorf("%s: owner %v, want uid %d (STACK_USER)", file, st.Sys(), stack.uid)
			}
			body := readFile(t, path)
			if !strings.Contains(body, "username = "+user+"\n") {
				t.Errorf("%s does not authenticate as %s:\n%s", file, user, body)
			}
			if !strings.Contains(body, "password = "+p.vars["SERVICE_PASSWORD"]) {
				t.Errorf("%s lacks %s's password", file, user)
			}
		}
	})

	// Each user holds exactly the roles its service needs: the object
	// servers' user no service or admin role (it validates no token), the
	// filter's no object-server role (it reads no key material).
	t.Run("grants", func(t *testing.T) {
		for user, want := range map[string]string{
			svcUser:    "service",
			objUser:    "key-manager:object-server",
			filterUser: "key-manager:swift-filter service",
		} {
			out, err := testenv.Run(admin, "", "openstack", "role", "assignment", "list", "--names",
				"--user", user, "--user-domain", p.vars["SERVICE_DOMAIN_NAME"], "-f", "value", "-c", "Role", "-c", "Project")
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) != 2 {
					t.Errorf("%s: unexpected assignment %q", user, line)
					continue
				}
				if proj, _, _ := strings.Cut(f[1], "@"); proj != p.vars["SERVICE_PROJECT_NAME"] {
					t.Errorf("%s: role %s on %s, want only on the service project %s", user, f[0], f[1], p.vars["SERVICE_PROJECT_NAME"])
				}
				roles = append(roles, f[0])
			}
			slices.Sort(roles)
			if got := strings.Join(roles, " "); got != want {
				t.Errorf("%s's roles: %q, want %q", user, got, want)
			}
		}
	})

	t.Run("catalog", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pages, err := endpoints.List(ic, endpoints.ListOpts{RegionID: region}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := endpoints.ExtractEndpoints(pages)
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
		got := map[string]string{}
		for _, ep := range eps {
			got[string(ep.Availability)] = ep.URL
		}
		for _, iface := range []string{"public", "internal", "admin"} {
			if got[iface] != url {
				t.Errorf("key-manager %s endpoint in region %s: %q, want the unversioned %s", iface, region, got[iface], url)
			}
		}
		cat, err := testenv.Run(ks.OpenRC(testenv.UserDemo, region), "", "openstack", "catalog", "list", "-f", "value")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(cat, "key-manager") || !strings.Contains(cat, region) {
			t.Errorf("openstack catalog list lacks key-manager in %s:\n%s", region, cat)
		}
	})

	t.Run("services", func(t *testing.T) {
		for name, url := range map[string]string{
			"arca-api":                              fmt.Sprintf("http://127.0.0.1:%d/healthcheck", apiPort),
			"arca-api on IPv6":                      fmt.Sprintf("http://[::1]:%d/healthcheck", apiPort),
			"swift-proxy-server on the public port": fmt.Sprintf("http://127.0.0.1:%d/healthcheck", publicPort),
			"arca-object-server":                    fmt.Sprintf("http://[::1]:%d/healthcheck", objBase),
			"arca-object-server 2":                  fmt.Sprintf("http://127.0.0.1:%d/healthcheck", objBase+10),
		} {
			if code := httpStatus(url); code != 200 {
				t.Errorf("%s: GET %s answered %d", name, url, code)
			}
		}
		checkDecisionSocket(t, sock, stack.gid)
		// Each runs as STACK_USER, as DevStack's run_process starts it.
		for _, svc := range []string{"arca-api", "arca-swift-filter", "arca-object", "arca-object-2"} {
			pid := strings.TrimSpace(readFile(t, filepath.Join(p.vars["SERVICE_DIR"], svc+".pid")))
			st, err := os.Stat(filepath.Join("/proc", pid))
			if err != nil {
				t.Errorf("%s (pid %s): %v", svc, pid, err)
			} else if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != stack.uid {
				t.Errorf("%s (pid %s) runs as %v, want STACK_USER (uid %d)", svc, pid, st.Sys(), stack.uid)
			}
		}
		demo := ks.OpenRC(testenv.UserDemo, region)
		name := "dstest-" + tag
		// A secret stored over HTTP, then listed by the CLI, which finds
		// arca-api in the private region of the catalog.
		token := ks.Token(t, testenv.UserDemo)
		body := fmt.Sprintf(`{"name":%q,"payload":"p-%s","payload_content_type":"text/plain"}`, name, tag)
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/secrets", apiPort), strings.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var created struct {
			Ref string `json:"secret_ref"`
		}
		err = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != 201 || err != nil {
			t.Fatalf("storing a secret: %d %v", resp.StatusCode, err)
		}
		list, err := testenv.Run(demo, "", "openstack", "secret", "list", "--name", name, "-f", "value", "-c", "Secret href")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(list) != created.Ref {
			t.Errorf("openstack secret list through the catalog: %q, want %q", list, created.Ref)
		}
		req, _ = http.NewRequest("DELETE", created.Ref, nil)
		req.Header.Set("X-Auth-Token", token)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
			t.Errorf("deleting the secret: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	})

	t.Run("swift through the pipeline", func(t *testing.T) {
		putEncrypted(t, storage, token, activeKey(t, apiPort, token, project), devices, devices2)

		work := t.TempDir()
		plain := bytes.Repeat([]byte("devstack plaintext "+tag+" "), 500)
		if err := os.WriteFile(filepath.Join(work, "obj.txt"), plain, 0o644); err != nil {
			t.Fatal(err)
		}
		cont := "dstest-" + tag
		swift := func(args ...string) {
			t.Helper()
			if _, err := testenv.Run(nil, work, "swift", append([]string{"--os-auth-token", token, "--os-storage-url", storage}, args...)...); err != nil {
				t.Fatal(err)
			}
		}
		swift("upload", cont, "obj.txt")
		defer func() {
			for _, path := range []string{"/obj.txt", ""} {
				req, _ := http.NewRequest("DELETE", storage+"/"+cont+path, nil)
				req.Header.Set("X-Auth-Token", token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
		swift("download", cont, "obj.txt", "-o", "back.txt")
		if back := readFile(t, filepath.Join(work, "back.txt")); back != string(plain) {
			t.Fatalf("downloaded object differs (%d bytes, want %d)", len(back), len(plain))
		}
		for _, root := range []string{devices, devices2} {
			files := dataFiles(t, root)
			if len(files) == 0 {
				t.Errorf("no .data file under %s: the object ring does not lead to arca-object-server", root)
			}
			for _, f := range files {
				if bytes.Contains([]byte(readFile(t, f)), []byte("plaintext "+tag)) {
					t.Errorf("plaintext on disk in %s", f)
				}
			}
		}
	})

	// DevStack's policy 1 (silver, object-1.ring.gz) end to end: a
	// container of that policy through the filter, its object stored by
	// arca-object-server in objects-1 of both nodes, encrypted, and read
	// back whole.
	t.Run("policy 1 through the filter", func(t *testing.T) {
		cont := "dstest-silver-" + tag
		plain := bytes.Repeat([]byte("silver plaintext "+tag+" "), 400)
		if code, _, _ := swiftDo(t, "PUT", storage+"/"+cont, token, map[string]string{"X-Storage-Policy": "silver"}, nil); code != 201 && code != 202 {
			t.Fatalf("PUT container with X-Storage-Policy silver: %d", code)
		}
		defer func() {
			swiftReq(t, "DELETE", storage+"/"+cont+"/o", token, nil)
			swiftReq(t, "DELETE", storage+"/"+cont, token, nil)
		}()
		if _, hdr, _ := swiftDo(t, "HEAD", storage+"/"+cont, token, nil, nil); hdr.Get("X-Storage-Policy") != "silver" {
			t.Fatalf("container's X-Storage-Policy %q, want silver", hdr.Get("X-Storage-Policy"))
		}
		before := map[string]bool{}
		for _, root := range []string{devices, devices2} {
			for _, f := range dataFiles(t, root) {
				before[f] = true
			}
		}
		if code, _, _ := swiftDo(t, "PUT", storage+"/"+cont+"/o", token, nil, plain); code != 201 {
			t.Fatalf("PUT object in the silver container: %d", code)
		}
		code, _, got := swiftDo(t, "GET", storage+"/"+cont+"/o", token, nil, nil)
		if code != 200 || !bytes.Equal(got, plain) {
			t.Fatalf("GET from the silver container: %d, %d bytes (want %d)", code, len(got), len(plain))
		}
		for _, root := range []string{devices, devices2} {
			var fresh []string
			for _, f := range dataFiles(t, root) {
				if !before[f] {
					fresh = append(fresh, f)
				}
			}
			if len(fresh) != 1 || !strings.Contains(fresh[0], string(filepath.Separator)+"objects-1"+string(filepath.Separator)) {
				t.Errorf("new .data files under %s: %q, want one replica in objects-1 (policy 1)", root, fresh)
			}
			for _, f := range fresh {
				if bytes.Contains([]byte(readFile(t, f)), []byte("plaintext "+tag)) {
					t.Errorf("plaintext on disk in %s", f)
				}
			}
		}
	})

	// ARCA_EC_POLICY end to end: a container of that policy through the
	// filter, its object in six fragment archives on the six devices,
	// encrypted under the project's key, read back whole and by range.
	t.Run("EC policy through the filter", func(t *testing.T) {
		checkECObject(t, storage, token, activeKey(t, apiPort, token, project), "dstest-ec", 2, devices, devices2)
	})

	// Swift's replicator of node 1 restores node 2's lost replica through
	// the rsync module of node 2's replication port (object{port}), then
	// arca-object-server of node 2 serves it while node 1's is down.
	t.Run("replication", func(t *testing.T) {
		cont := "dstest-repl-" + tag
		before := map[string]bool{}
		for _, f := range dataFiles(t, devices2) {
			before[f] = true
		}
		plain := bytes.Repeat([]byte("replicated plaintext "+tag+" "), 300)
		if code := swiftReq(t, "PUT", storage+"/"+cont, token, nil); code != 201 && code != 202 {
			t.Fatalf("PUT container: %d", code)
		}
		if code := swiftReq(t, "PUT", storage+"/"+cont+"/o", token, plain); code != 201 {
			t.Fatalf("PUT object: %d", code)
		}
		var replica string
		for _, f := range dataFiles(t, devices2) {
			if !before[f] {
				replica = f
			}
		}
		if replica == "" {
			t.Fatalf("no new replica under %s", devices2)
		}
		// Each object server encrypts its own replica: the restored one is
		// node 1's, byte for byte.
		rel, _ := filepath.Rel(filepath.Join(devices2, "sdb1", "objects"), replica)
		want := readFile(t, filepath.Join(devices, "sdb1", "objects", rel))
		// Node 2's partition is lost (a replaced disk).
		part := strings.Split(rel, string(filepath.Separator))[0]
		if err := os.RemoveAll(filepath.Join(devices2, "sdb1", "objects", part)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		repl := exec.CommandContext(ctx, "swift-object-replicator", filepath.Join(sw, "object-server", "1.conf"), "once", "-v", "--partitions", part)
		repl.Env = append(os.Environ(), swiftEnv...)
		stack.as(repl)
		bounded(repl)
		out, err := repl.CombinedOutput()
		if err != nil {
			t.Fatalf("swift-object-replicator: %v\n%s", err, out)
		}
		if got, err := os.ReadFile(replica); err != nil || string(got) != want {
			t.Fatalf("replica on node 2 not restored (%v):\n%s", err, out)
		}
		p.standin("stop_process arca-object")
		req, _ := http.NewRequest("GET", storage+"/"+cont+"/o", nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, plain) {
			t.Errorf("GET with node 1's arca-object-server down: %d, %d bytes (want %d)", resp.StatusCode, len(got), len(plain))
		}
		swiftReq(t, "DELETE", storage+"/"+cont+"/o", token, nil)
		swiftReq(t, "DELETE", storage+"/"+cont, token, nil)
	})

	p.phase("unstack")
	// A bootstrapped Go, STACK_USER's, read-only as module zips unpack.
	goDir := filepath.Join(p.vars["ARCA_GO_DIR"], "go1.0", "bin")
	if err := os.MkdirAll(goDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stack.own(t, p.vars["ARCA_GO_DIR"])
	if err := os.Chmod(goDir, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"arca-api", "arca-swift-filter", "arca-object", "arca-object-2"} {
		if _, err := os.Stat(filepath.Join(p.vars["SERVICE_DIR"], svc+".pid")); err == nil {
			t.Errorf("unstack left %s.pid", svc)
		}
	}
	for name, port := range map[string]int{"arca-api": apiPort, "arca-object-server 2": objBase + 10} {
		if code := httpStatus(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", port)); code != 0 {
			t.Errorf("%s still answers after unstack: %d", name, code)
		}
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Errorf("arca-swift-filter's decision socket %s still answers after unstack", sock)
	}
	// The reverse-proxy shape on the same stack: the key checks.
	t.Run("proxy shape", func(t *testing.T) {
		shape := *p // this subtest's: its failures end it, not the parent
		shape.t = t
		shape.runProxyShape(t, proxyShape{
			origProxyConf: origProxyConf, publicPort: publicPort, proxyPort: proxyPort, stackUID: stack.uid,
			swiftEnv: swiftEnv, token: token, storage: storage, project: project, apiPort: apiPort,
			devices: []string{devices, devices2},
		})
	})
	// The proxy is DevStack's (lib/swift stops it), here the test's.
	p.standin("ENABLED_SERVICES+=,s-object-2,rsyncd\nfor s in s-proxy s-container s-object s-object-2 rsyncd; do stop_process $s; done")
	pth := filepath.Join(sitePackages(t, swiftPython), "arca-swift.pth")
	if got, err := os.ReadFile(pth); err != nil || strings.TrimSpace(string(got)) != filepath.Join(p.repo, "swiftfilter", "python") {
		t.Errorf("%s: %q %v, want the repository's swiftfilter/python", pth, got, err)
	}
	p.phase("clean")
	if _, err := os.Stat(pth); !os.IsNotExist(err) {
		t.Errorf("clean left %s: %v", pth, err)
	}
	for _, d := range []string{p.vars["ARCA_CONF_DIR"], p.vars["ARCA_GO_DIR"]} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("clean left %s: %v", d, err)
		}
	}
	// Binaries the plugin did not build (ARCA_BUILD=False) stay.
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(p.vars["ARCA_BIN_DIR"], b)); err != nil {
			t.Errorf("clean removed ARCA_BIN_DIR's %s, which it did not build: %v", b, err)
		}
	}
}

// removeUser deletes the service user the plugin created in Keystone.
func removeUser(t *testing.T, ks *testenv.KeystoneEnv, userName string) {
	ic := ks.Client(t, testenv.UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pages, err := users.List(ic, users.ListOpts{Name: userName}).AllPages(ctx); err == nil {
		us, _ := users.ExtractUsers(pages)
		for _, u := range us {
			if err := users.Delete(ctx, ic, u.ID).ExtractErr(); err != nil {
				t.Errorf("cleanup: user %s: %v", u.Name, err)
			}
		}
	}
}

// standin runs a bash script with the stand-ins and DevStack's variables:
// what stack.sh itself does between the plugin's phases. It is bounded as
// a phase is: the proxy shape's part starts the services and configures the
// filter (Keystone calls through the openstack CLI), which took more than
// two minutes on a loaded machine.
func (p *plugin) standin(script string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), p.phaseTimeout())
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -o errexit\nsource \"$1\"\n"+script, "stack.sh", filepath.Join(p.repo, "devstack", "testdata", "standins.sh"))
	// The admin's OS_*: a script may run plugin functions that ask Keystone.
	cmd.Env = append(append(os.Environ(), p.env...), p.osAdmin...)
	if p.user != nil {
		p.user.as(cmd)
	}
	bounded(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("stack.sh's part: %v\n%s\n%s", err, script, out)
	}
}

// swiftDo sends one request with a token and headers and answers the
// status (0 on a transport error), the response's headers and body.
func swiftDo(t *testing.T, method, url, token string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Logf("%s %s: %v", method, url, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Logf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, got
}

// swiftReq sends one request with a token and answers the status (0 on a
// transport error).
func swiftReq(t *testing.T, method, url, token string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Logf("%s %s: %v", method, url, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// swiftReqRetried is swiftReq with python-swiftclient's retries, as
// Glance's Swift store makes them: a 5xx or a failed connection is tried
// again, up to 5 times, after 1, 2, 4, 8 and 16 s. The Swift servers the
// stand-in just started may still be opening their rings when the proxy
// already answers /info; DevStack's own upload comes minutes later.
func swiftReqRetried(t *testing.T, method, url, token string, body []byte) int {
	t.Helper()
	code := swiftReq(t, method, url, token, body)
	for try, wait := 0, time.Second; try < 5 && (code == 0 || code >= 500); try, wait = try+1, wait*2 {
		t.Logf("%s %s: %d, retried in %s as swiftclient does", method, url, code, wait)
		time.Sleep(wait)
		code = swiftReq(t, method, url, token, body)
	}
	return code
}

// writeSwiftConfigs lays out what DevStack's configure_swift and
// init_swift leave for two replicas, run by user: swift.conf with policies
// 0 and 1 (silver), object rings built as init_swift builds them (node N at
// its s-object port, object-1.ring.gz a copy of object.ring.gz, no
// builder), object-server/N.conf with lib/swift's rsync_module,
// rsyncd.conf's object{port} modules, a container ring and
// container-server/1.conf on node 1's device, the stack's account ring, and
// the stack's proxy config. Swift's hash comes from /etc/swift/swift.conf
// (the stack's account servers hash with it); rsyncd listens on a port of
// its own.
func writeSwiftConfigs(t *testing.T, swiftDir, sw, data, user string, proxyPort int, objPorts []int, containerPort, rsyncPort int) {
	t.Helper()
	for _, d := range []string{filepath.Join(sw, "object-server"), filepath.Join(sw, "container-server"), filepath.Join(data, "1", "sdb1"), filepath.Join(data, "2", "sdb1"), filepath.Join(data, "cache"), filepath.Join(data, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(swiftDir, "account.ring.gz"), filepath.Join(sw, "account.ring.gz"))
	hash := regexp.MustCompile(`(?m)^swift_hash_path_(suffix|prefix) *=.*$`).FindAllString(readFile(t, "/etc/swift/swift.conf"), -1)
	swiftConf := "[swift-hash]\n" + strings.Join(hash, "\n") +
		"\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n\n[storage-policy:1]\nname = silver\n"
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sw, "swift.conf"), swiftConf)
	write(filepath.Join(sw, "proxy-server.conf"), strings.Replace(testenv.SwiftProxyConfig(t, swiftDir, sw, proxyPort), "\nuser = root\n", "\nuser = "+user+"\n", 1))
	logAddr := regexp.MustCompile(`(?m)^log_address = .*$`).FindString(readFile(t, filepath.Join(swiftDir, "object-server.conf")))
	write(filepath.Join(sw, "container-server", "1.conf"), fmt.Sprintf(`[DEFAULT]
user = %s
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
swift_dir = %s
devices = %s/1
mount_check = false
log_name = container-server-1
%s
[pipeline:main]
pipeline = healthcheck recon container-server
[app:container-server]
use = egg:swift#container
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:recon]
use = egg:swift#recon
recon_cache_path = %s/cache
`, user, containerPort, sw, data, logAddr, data))
	// DevStack's rsyncd runs as root and switches to STACK_USER (uid, gid);
	// here it runs as that user already, which rsync keeps when not root.
	rsyncd := fmt.Sprintf("pid file = %s/run/rsyncd.pid\naddress = 127.0.0.1\n", data)
	ring := [][]string{{"create", "10", "2", "1"}}
	for i, port := range objPorts {
		n := i + 1
		write(filepath.Join(sw, "object-server", fmt.Sprintf("%d.conf", n)), fmt.Sprintf(`[DEFAULT]
user = %s
bind_ip = ::
bind_port = %d
workers = 0
swift_dir = %s
devices = %s/%d
mount_check = false
disable_fallocate = true
log_name = object-server-%d
%s
[pipeline:main]
pipeline = healthcheck recon object-server
[app:object-server]
use = egg:swift#object
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:recon]
use = egg:swift#recon
recon_cache_path = %s/cache
[object-replicator]
rsync_module = rsync://{replication_ip}:%d/object{replication_port}
recon_cache_path = %s/cache
`, user, port, sw, data, n, n, logAddr, data, rsyncPort, data))
		rsyncd += fmt.Sprintf("\n[object%d]\nmax connections = 25\npath = %s/%d/\nread only = false\nlock file = %s/run/object%d.lock\n", port, data, n, data, port)
		ring = append(ring, []string{"add", fmt.Sprintf("z%d-127.0.0.1:%d/sdb1", n, port), "1"})
	}
	write(filepath.Join(sw, "rsyncd.conf"), rsyncd)
	buildRing(t, filepath.Join(sw, "object.builder"), ring)
	buildRing(t, filepath.Join(sw, "container.builder"), [][]string{{"create", "10", "1", "1"}, {"add", fmt.Sprintf("z1-127.0.0.1:%d/sdb1", containerPort), "1"}})
	copyFile(t, filepath.Join(sw, "object.ring.gz"), filepath.Join(sw, "object-1.ring.gz"))
}

// buildRing runs swift-ring-builder on builder with each argument list,
// then rebalances.
func buildRing(t *testing.T, builder string, steps [][]string) {
	t.Helper()
	for _, args := range append(steps, []string{"rebalance", "42"}) {
		cmd := exec.Command("swift-ring-builder", append([]string{builder}, args...)...)
		// rebalance exits 1 with a warning (balance, min_part_hours).
		if out, err := cmd.CombinedOutput(); err != nil && !(args[0] == "rebalance" && cmd.ProcessState.ExitCode() == 1) {
			t.Fatalf("swift-ring-builder %s %v: %v\n%s", filepath.Base(builder), args, err, out)
		}
	}
}

// ringDevices lists a ring's devices as ip:port/replication_port/device.
func ringDevices(t *testing.T, ringFile string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", `
import sys
from swift.common.ring import RingData
r = RingData.load(sys.argv[1])
print(' '.join('%s:%d/%d/%s' % (d['ip'], d['port'], d['replication_port'], d['device']) for d in r.devs if d))
`, ringFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reading %s: %v %s", ringFile, err, out)
	}
	return strings.TrimSpace(string(out))
}

// dataFiles lists the .data files under a node's devices.
func dataFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".data") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return files
}
