package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"opendev.org/x/arca/internal/testenv"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// TestShellcheck keeps the plugin and the stand-ins shellcheck-clean.
func TestShellcheck(t *testing.T) {
	testenv.RequireTools(t, "shellcheck")
	cmd := exec.Command("shellcheck", "-x", "devstack/plugin.sh", "devstack/settings", "devstack/testdata/standins.sh")
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
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, "phase", filepath.Join(p.repo, "devstack", "testdata", "standins.sh")}, args...)...)
	cmd.Env = append(append(os.Environ(), p.env...), p.osAdmin...)
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
		p.t.Fatalf("plugin.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
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
// MariaDB, a private Swift proxy and object ring derived from the stack's,
// and real processes. Then the catalog, the configs and the services.
func TestRealStackDevStackPlugin(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "openstack", "swift", "swift-proxy-server", "swift-ring-builder", "mysql", "curl", "setsid", "/usr/bin/python3")
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
	dir := t.TempDir()
	p := &plugin{t: t, repo: repoRoot(t), dir: dir}
	admin := ks.OpenRC(testenv.UserAdmin, ks.Region)
	p.osAdmin = admin
	region := "arca-dstest-" + tag
	svcUser := "arca-dstest-" + tag
	objUser, filterUser := "arca-dstest-obj-"+tag, "arca-dstest-flt-"+tag
	dbName := "arca_dstest_" + tag
	keystoneURI := strings.TrimSuffix(strings.TrimSuffix(ks.URL, "/"), "/v3")
	apiPort, filterPort, proxyPort, objBase := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	p.vars = map[string]string{
		"DEST": filepath.Join(dir, "opt"), "DATA_DIR": filepath.Join(dir, "data"), "STACK_USER": "root",
		"SERVICE_DIR": filepath.Join(dir, "status"), "LOGDIR": filepath.Join(dir, "logs"),
		"SERVICE_HOST": "127.0.0.1", "SERVICE_LISTEN_ADDRESS": "127.0.0.1", "SERVICE_PROTOCOL": "http",
		"SERVICE_PASSWORD": "Dst-" + testenv.RandomHex(t, 8), "SERVICE_PROJECT_NAME": ks.Users[testenv.UserArca].Project,
		"SERVICE_DOMAIN_NAME": ks.UserDomain, "KEYSTONE_SERVICE_URI": keystoneURI, "REGION_NAME": ks.Region,
		"SSL_BUNDLE_FILE": "", "MEMCACHE_SERVERS": "",
		"DATABASE_TYPE": "mysql", "DATABASE_HOST": dbHost, "DATABASE_PORT": dbPort, "DATABASE_USER": mcfg.User,
		"DATABASE_PASSWORD": mcfg.Passwd,
		"SWIFT_CONF_DIR":    filepath.Join(dir, "swift"), "SWIFT_DEFAULT_BIND_PORT": strconv.Itoa(filterPort),
		"SWIFT_DEFAULT_BIND_PORT_INT": strconv.Itoa(proxyPort), "SWIFT_SERVICE_LISTEN_ADDRESS": "127.0.0.1",
		"ENABLED_SERVICES": "key,mysql,s-proxy,s-account,s-container",
		// The plugin's own knobs: a private region, user, database, ports.
		"ARCA_DIR": p.repo, "ARCA_BIN_DIR": filepath.Join(dir, "bin"), "ARCA_CONF_DIR": filepath.Join(dir, "etc", "arca"),
		"ARCA_REGION_NAME": region, "ARCA_SERVICE_USER": svcUser, "ARCA_DB_NAME": dbName,
		"ARCA_OBJECT_SERVICE_USER": objUser, "ARCA_FILTER_SERVICE_USER": filterUser,
		// Another storage node's address, for trusted_networks.
		"SWIFT_STORAGE_IPS": "127.0.0.2",
		"ARCA_API_PORT":     strconv.Itoa(apiPort), "ARCA_OBJECT_PORT_BASE": strconv.Itoa(objBase),
		"ARCA_SERVICE_TIMEOUT": "60", "ARCA_DEBUG": "False",
		// The Go running this test builds, with its warm cache: DevStack's
		// default, go.mod's toolchain line (a cold build of its own, minutes
		// on a loaded machine), is installgo_test.go's subject.
		"ARCA_GOTOOLCHAIN": "local",
	}
	for k, v := range p.vars {
		p.set(k, v)
	}

	// A DevStack-shaped Swift config dir from the stack's: rings (the
	// object builder with the stack's one device), proxy-server.conf and
	// object-server/1.conf on devices of our own.
	sw := p.vars["SWIFT_CONF_DIR"]
	devices := filepath.Join(dir, "data", "swift", "1")
	for _, d := range []string{filepath.Join(sw, "object-server"), filepath.Join(devices, "d1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"account.ring.gz", "container.ring.gz", "object.builder", "object.ring.gz"} {
		copyFile(t, filepath.Join(swiftDir, f), filepath.Join(sw, f))
	}
	proxyConf := testenv.SwiftProxyConfig(t, swiftDir, sw, 0)
	if err := os.WriteFile(filepath.Join(sw, "proxy-server.conf"), []byte(proxyConf), 0o600); err != nil {
		t.Fatal(err)
	}
	objConf := readFile(t, filepath.Join(swiftDir, "object-server.conf"))
	objConf = regexp.MustCompile(`(?m)^devices = .*$`).ReplaceAllString(objConf, "devices = "+devices)
	objConf = regexp.MustCompile(`(?m)^swift_dir = .*$`).ReplaceAllString(objConf, "swift_dir = "+sw)
	if err := os.WriteFile(filepath.Join(sw, "object-server", "1.conf"), []byte(objConf), 0o600); err != nil {
		t.Fatal(err)
	}
	oldObjPort := regexp.MustCompile(`(?m)^bind_port = (\d+)`).FindStringSubmatch(objConf)
	if oldObjPort == nil {
		t.Fatalf("no bind_port in the stack's object-server.conf")
	}

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
	p.set("ENABLED_SERVICES", p.vars["ENABLED_SERVICES"]) // settings enables arca-*
	// A second region is created by the operator in DevStack's multi-region
	// set-ups; Keystone wants it to exist before endpoints name it.
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	if _, err := regions.Create(rctx, ic, regions.CreateOpts{ID: region}).Extract(); err != nil {
		t.Fatal(err)
	}

	p.phase("stack", "install")
	for _, b := range []string{"arca-api", "arca-manage", "arca-swift-filter", "arca-object-server"} {
		if _, err := os.Stat(filepath.Join(p.vars["ARCA_BIN_DIR"], b)); err != nil {
			t.Fatalf("stack install did not build %s: %v", b, err)
		}
	}
	p.phase("stack", "post-config")

	// What DevStack's start_swift does next: the proxy from its (moved)
	// config, then a wait for /info on the public port, i.e. through the filter.
	conf := readFile(t, filepath.Join(sw, "proxy-server.conf"))
	if !strings.Contains(conf, "bind_port = "+strconv.Itoa(proxyPort)) {
		t.Fatalf("proxy-server.conf not moved to the internal port %d:\n%s", proxyPort, conf)
	}
	startSwift := fmt.Sprintf(`source "$1"; ENABLED_SERVICES=s-proxy
run_process s-proxy "swift-proxy-server %s/proxy-server.conf -v"
wait_for_service 60 http://127.0.0.1:%d/info`, sw, filterPort)
	cmd := exec.Command("bash", "-c", startSwift, "start_swift", filepath.Join(p.repo, "devstack", "testdata", "standins.sh"))
	cmd.Env = append(os.Environ(), p.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting the Swift proxy behind the filter: %v\n%s\nproxy log:\n%s", err, out,
			readFile(t, filepath.Join(p.vars["LOGDIR"], "s-proxy.log")))
	}
	p.phase("stack", "extra")

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
			"bind_port = " + strconv.Itoa(filterPort),
			fmt.Sprintf("url = http://127.0.0.1:%d", proxyPort),
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
		// The object ring's device now names arca-object-server's port.
		ring := exec.Command("/usr/bin/python3", "-c", `
import sys
from swift.common.ring import Ring
r = Ring(sys.argv[1], ring_name='object')
print(' '.join('%s:%d/%s' % (d['ip'], d['port'], d['device']) for d in r.devs if d))
`, sw)
		out, err := ring.CombinedOutput()
		if err != nil {
			t.Fatalf("reading the object ring: %v %s", err, out)
		}
		if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("127.0.0.1:%d/d1", objBase); got != want {
			t.Errorf("object ring devices %q, want %q (was port %s)", got, want, oldObjPort[1])
		}
	})

	// Each service's credentials are its own user's, in a file only the
	// DevStack user (root here, STACK_USER) can read or write.
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
			if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Getuid() {
				t.Errorf("%s: owner %v, want uid %d (STACK_USER)", file, st.Sys(), os.Getuid())
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
			"arca-api":           fmt.Sprintf("http://127.0.0.1:%d/healthcheck", apiPort),
			"arca-swift-filter":  fmt.Sprintf("http://127.0.0.1:%d/healthcheck", filterPort),
			"arca-object-server": fmt.Sprintf("http://127.0.0.1:%d/healthcheck", objBase),
		} {
			if code := httpStatus(url); code != 200 {
				t.Errorf("%s: GET %s answered %d", name, url, code)
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

	t.Run("swift through the filter", func(t *testing.T) {
		token, project := ks.ScopedToken(t, testenv.UserDemo)
		storage := fmt.Sprintf("http://127.0.0.1:%d/v1/AUTH_%s", filterPort, project)
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
		found := 0
		werr := filepath.WalkDir(devices, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".data") {
				return nil
			}
			found++
			if bytes.Contains([]byte(readFile(t, path)), []byte("plaintext "+tag)) {
				t.Errorf("plaintext on disk in %s", path)
			}
			return nil
		})
		if werr != nil {
			t.Errorf("walking %s: %v", devices, werr)
		}
		if found == 0 {
			t.Errorf("no .data file under %s: the object ring does not lead to arca-object-server", devices)
		}
	})

	p.phase("unstack")
	for _, svc := range []string{"arca-api", "arca-swift-filter", "arca-object"} {
		if _, err := os.Stat(filepath.Join(p.vars["SERVICE_DIR"], svc+".pid")); err == nil {
			t.Errorf("unstack left %s.pid", svc)
		}
	}
	if code := httpStatus(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", apiPort)); code != 0 {
		t.Errorf("arca-api still answers after unstack: %d", code)
	}
	// The proxy is DevStack's (lib/swift stops it), here the test's.
	stop := exec.Command("bash", "-c", `source "$1"; stop_process s-proxy`, "stop", filepath.Join(p.repo, "devstack", "testdata", "standins.sh"))
	stop.Env = append(os.Environ(), p.env...)
	_ = stop.Run()
	p.phase("clean")
	if _, err := os.Stat(p.vars["ARCA_CONF_DIR"]); !os.IsNotExist(err) {
		t.Errorf("clean left %s: %v", p.vars["ARCA_CONF_DIR"], err)
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
