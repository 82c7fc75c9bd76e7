package docs_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"opendev.org/x/arca/internal/testenv"
)

// TestInstallGuideRealStack runs docs/install.md as written on the real
// stack: every sh block in order, each in a fresh bash -e -o pipefail with
// the guide's variables block prepended, and ends with the guide's own
// verification (a secret stored with the openstack CLI through the
// catalog; an object uploaded through arca-swift-filter, its ciphertext on
// the device, read back).
//
// What the test provides is what the guide lists as prerequisites:
// Keystone (the stack's) with an admin openrc and a demo openrc whose
// region is the test's own; Swift's rings and a proxy on loopback (a private
// swift-proxy-server on the stack's account and container servers, with an
// object ring naming the one object server the guide starts); MariaDB's
// root; the binaries. The variables the guide reads from the environment
// point its paths at a temporary folder, its names at names with a random
// tag, its addresses at free loopback ports.
//
// PID 1 here is not systemd, so the test carries out the guide's systemctl
// lines itself: "enable --now" and "start" run the ExecStart= command line
// of the unit file the guide installed as the unit's User= and Group=
// (setpriv, with no new privileges and no capabilities; the rest of the
// sandbox is systemd's, verified by make lint), "stop" and "disable --now"
// stop it, and a unit the guide does not install (Swift's swift-object)
// has nothing running here to stop. The services' users are the guide's:
// ARCA_USER is one of the test's own, which the guide's useradd creates
// (removed afterwards), and SWIFT_USER is Debian's swift, who owns the
// devices as on any Swift storage node.
func TestInstallGuideRealStack(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "openstack", "swift", "swift-proxy-server", "mysql", "curl", "bash", "/usr/bin/python3",
		"setpriv", "useradd", "userdel")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	g := &guide{t: t, work: t.TempDir(), tag: testenv.RandomHex(t, 4), daemons: map[string]*testenv.Proc{}}
	g.env = map[string]string{
		"ARCA_SRC": root, "ARCA_BUILD": testenv.Binaries(t),
		"ARCA_BIN": filepath.Join(g.work, "bin"), "ARCA_ETC": filepath.Join(g.work, "etc/arca"),
		"ARCA_UNITS": filepath.Join(g.work, "units"), "ARCA_USER": "arca-guide-" + g.tag, "SWIFT_USER": "swift",
		"KEYSTONE_URL": ks.URL, "REGION": "arca-guide-" + g.tag, "ARCA_SERVICE_NAME": "arca-guide-" + g.tag,
		"ARCA_KS_USER": "arca-guide-" + g.tag, "FILTER_KS_USER": "arca-guide-filter-" + g.tag,
		"OBJECT_KS_USER":   "arca-guide-object-" + g.tag,
		"ARCA_KS_PASSWORD": testenv.RandomHex(t, 12), "FILTER_KS_PASSWORD": testenv.RandomHex(t, 12),
		"OBJECT_KS_PASSWORD": testenv.RandomHex(t, 12),
		"ARCA_DB_NAME":       "arca_guide_" + g.tag, "ARCA_DB_USER": "arca_guide_" + g.tag,
		"ARCA_DB_PASSWORD": testenv.RandomHex(t, 12),
		"API_BIND":         "127.0.0.1", "FILTER_BIND": "127.0.0.1", "STORAGE_BIND": "127.0.0.1",
		"STORAGE_NETWORK": "127.0.0.0/8", "MOUNT_CHECK": "false",
	}
	apiPort, filterPort, objectPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	g.env["API_PORT"], g.env["ARCA_API_URL"] = strconv.Itoa(apiPort), fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	g.env["FILTER_PORT"], g.env["FILTER_PUBLIC_URL"] = strconv.Itoa(filterPort), fmt.Sprintf("http://127.0.0.1:%d", filterPort)
	g.env["OBJECT_PORT"] = strconv.Itoa(objectPort)

	g.users()
	g.database()
	g.keystone(ks)
	g.swift(swiftDir, objectPort)

	blocks := fencedBlocks(t, "install.md")
	var vars string
	for _, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		if vars == "" {
			vars = b.text
			continue
		}
		for _, s := range steps(t, b) {
			if s.systemctl != nil {
				g.systemctl(s)
			} else {
				g.shell(s, vars)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

type guide struct {
	t       *testing.T
	work    string
	tag     string
	env     map[string]string
	daemons map[string]*testenv.Proc
}

// users makes the work folder reachable by the services' users (as /usr
// and /etc are: t.TempDir's folders are 0700) and removes ARCA_USER, which
// the guide creates, when the test ends.
func (g *guide) users() {
	t := g.t
	if _, err := user.Lookup(g.env["SWIFT_USER"]); err != nil {
		testenv.StackMissing(t, "no user "+g.env["SWIFT_USER"]+" (Debian's swift package makes it; tools/stack.sh install)")
	}
	if _, err := user.Lookup(g.env["ARCA_USER"]); err == nil {
		t.Fatalf("user %s exists before the guide creates it", g.env["ARCA_USER"])
	}
	for _, d := range []string{g.work, filepath.Dir(g.work)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, err := user.Lookup(g.env["ARCA_USER"]); err != nil {
			return
		}
		if out, err := exec.Command("userdel", g.env["ARCA_USER"]).CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel %s: %v\n%s", g.env["ARCA_USER"], err, out)
		}
	})
}

// database points the guide at the stack's MariaDB and drops what the
// guide creates there when the test ends.
func (g *guide) database() {
	t := g.t
	dsn := os.Getenv("ARCA_TEST_MYSQL_DSN")
	if dsn == "" {
		testenv.StackMissing(t, "ARCA_TEST_MYSQL_DSN is not set")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "root" || cfg.Passwd != "" {
		testenv.StackMissing(t, "the guide's database block logs in as root without a password; the stack's DSN user is "+cfg.User)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	g.env["DB_HOST"], g.env["DB_PORT"] = host, port
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := g.env["ARCA_DB_NAME"]
	t.Cleanup(func() {
		defer db.Close()
		for _, q := range []string{
			"DROP DATABASE IF EXISTS `" + name + "`",
			"DROP USER IF EXISTS '" + name + "'@'localhost'",
			"DROP USER IF EXISTS '" + name + "'@'%'",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Errorf("cleanup: %s: %v", q, err)
			}
		}
	})
}

// keystone writes the admin and demo openrc files for the test's region,
// holds the key-manager lock shared (the guide registers a key-manager
// service of its own name) and removes the region's catalog entries and
// the guide's users when the test ends.
func (g *guide) keystone(ks *testenv.KeystoneEnv) {
	t := g.t
	region := g.env["REGION"]
	// The admin's openrc names the stack's region (the guide names REGION
	// where it needs it: its identity endpoints are not in the test's); the
	// user's names the test's, where the guide's services are in the catalog.
	for who, file := range map[string]string{testenv.UserAdmin: "admin-openrc", testenv.UserDemo: "demo-openrc"} {
		rcRegion := region
		if who == testenv.UserAdmin {
			rcRegion = ks.Region
		}
		var b strings.Builder
		for _, kv := range ks.OpenRC(who, rcRegion) {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, "export %s='%s'\n", k, v)
		}
		path := filepath.Join(g.work, file)
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		g.env[strings.ToUpper(who)+"_OPENRC"] = path
	}
	ks.ShareKeyManagers(t)
	t.Cleanup(func() { ks.RemoveRegion(t, region, g.env["ARCA_SERVICE_NAME"]) })
	t.Cleanup(func() {
		ic := ks.Client(t, testenv.UserAdmin)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range []string{g.env["ARCA_KS_USER"], g.env["FILTER_KS_USER"], g.env["OBJECT_KS_USER"]} {
			pages, err := users.List(ic, users.ListOpts{Name: name}).AllPages(ctx)
			if err != nil {
				t.Errorf("cleanup: listing user %s: %v", name, err)
				continue
			}
			found, _ := users.ExtractUsers(pages)
			for _, u := range found {
				if err := users.Delete(ctx, ic, u.ID).ExtractErr(); err != nil {
					t.Errorf("cleanup: user %s: %v", name, err)
				}
			}
		}
	})
}

// swift is the Swift the guide finds: rings in SWIFT_DIR whose object ring
// has one device (d1 in SWIFT_DEVICES) on the port the guide's object
// server will take, and a proxy on loopback in front of them.
func (g *guide) swift(stackSwiftDir string, objectPort int) {
	t := g.t
	rings, devices := filepath.Join(g.work, "swift"), filepath.Join(g.work, "node")
	if err := os.MkdirAll(filepath.Join(devices, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Swift's devices belong to its user, as on any storage node.
	if out, err := exec.Command("chown", "-R", g.env["SWIFT_USER"]+":", devices).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v\n%s", devices, err, out)
	}
	testenv.WriteRings(t, stackSwiftDir, rings, 6, []int{objectPort})
	proxy, url := testenv.StartSwiftProxy(t, stackSwiftDir, rings, g.work)
	proxy.WaitHealthy(t, url+"/healthcheck")
	g.env["SWIFT_DIR"], g.env["SWIFT_DEVICES"], g.env["PROXY_URL"] = rings, devices, url
}

// environ is the test's environment without OpenStack credentials (the
// guide sources its openrc files) and with the guide's variables.
func (g *guide) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+g.work)
	for k, v := range g.env {
		env = append(env, k+"="+v)
	}
	return env
}

// shell runs one piece of a block after the variables block.
func (g *guide) shell(s step, vars string) {
	t := g.t
	// Generous: the Keystone block is nine openstack commands, seconds each
	// on a loaded machine (3 minutes were once not enough at a load of 35).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", vars+"\n"+s.script)
	cmd.Dir, cmd.Env = g.work, g.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("docs/install.md:%d: %v\n--- block ---\n%s--- output ---\n%s", s.line, err, s.script, out)
		return
	}
	t.Logf("docs/install.md:%d: ok\n%s", s.line, testenv.Tail(string(out), 2000))
}

// systemctl carries out one systemctl line of the guide.
func (g *guide) systemctl(s step) {
	t := g.t
	verb, rest := s.systemctl[0], s.systemctl[1:]
	now := false
	var units []string
	for _, w := range rest {
		if w == "--now" {
			now = true
		} else {
			units = append(units, strings.TrimSuffix(w, ".service"))
		}
	}
	for _, u := range units {
		switch {
		case verb == "start" || verb == "enable" && now:
			g.start(s.line, u)
		case verb == "stop" || verb == "disable" && now:
			g.stop(s.line, u)
		case verb == "restart":
			g.stop(s.line, u)
			g.start(s.line, u)
		case verb == "enable" || verb == "disable":
		default:
			t.Errorf("docs/install.md:%d: systemctl %s: the test does not know this verb", s.line, verb)
		}
	}
	if verb == "daemon-reload" && len(units) != 0 {
		t.Errorf("docs/install.md:%d: systemctl daemon-reload takes no unit", s.line)
	}
}

func (g *guide) start(line int, unit string) {
	t := g.t
	file := filepath.Join(g.env["ARCA_UNITS"], unit+".service")
	if _, err := os.Stat(file); err != nil {
		t.Errorf("docs/install.md:%d: systemctl starts %s, which the guide did not install: %v", line, unit, err)
		return
	}
	if g.daemons[unit] != nil {
		return // already running, as systemctl start leaves it
	}
	// The stand-in ignores the sandbox; what it would refuse is checked
	// here: under ProtectSystem=strict a service writes only its
	// ReadWritePaths=, and the object server writes the devices the guide
	// configured (SWIFT_DEVICES), wherever they are.
	if unit == "arca-object-server" {
		requireWritable(t, file, g.env["SWIFT_DEVICES"])
	}
	words := execStart(t, file)
	u, gr := serviceValues(t, file, "User"), serviceValues(t, file, "Group")
	if len(u) != 1 || len(gr) != 1 {
		t.Errorf("docs/install.md:%d: %s has User=%q and Group=%q, not one of each", line, unit, u, gr)
		return
	}
	args := append([]string{"--reuid=" + u[0], "--regid=" + gr[0], "--init-groups",
		"--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"}, words...)
	g.daemons[unit] = testenv.StartProc(t, testenv.NewLog(t, unit), "setpriv", args...)
	t.Logf("docs/install.md:%d: started %s as %s:%s: %s", line, unit, u[0], gr[0], strings.Join(words, " "))
}

func (g *guide) stop(line int, unit string) {
	p := g.daemons[unit]
	if p == nil {
		if _, err := os.Stat(filepath.Join(g.env["ARCA_UNITS"], unit+".service")); err != nil {
			g.t.Logf("docs/install.md:%d: %s is not a unit of the guide; nothing runs it here", line, unit)
		}
		return
	}
	p.Stop()
	delete(g.daemons, unit)
}
