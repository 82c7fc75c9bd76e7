package devstack_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestDevStackRefuses: set-ups the plugin cannot serve stop stack.sh at
// its first phase, saying which setting is at fault, before anything is
// built or configured.
func TestDevStackRefuses(t *testing.T) {
	const swift = "key,mysql,s-proxy,s-object,s-account,s-container"
	for _, tc := range []struct {
		name, services, disabled, fails string
		env                             map[string]string
	}{
		{name: "tls-proxy", services: swift + ",tls-proxy", fails: "tls-proxy is enabled"},
		{name: "beside Barbican", services: swift + ",barbican", fails: "Barbican is enabled beside arca-api"},
		{name: "PostgreSQL", services: "key,postgresql", env: map[string]string{"DATABASE_TYPE": "postgresql"}, fails: "DATABASE_TYPE=postgresql"},
		{name: "subnode", services: "n-cpu,s-object", fails: "without the mysql service"},
		{name: "mod_wsgi", services: swift, env: map[string]string{"SWIFT_USE_MOD_WSGI": "True"}, fails: "SWIFT_USE_MOD_WSGI=True"},
		{name: "filter without s-proxy", services: "key,mysql,arca-swift-filter", fails: "arca-swift-filter is enabled without s-proxy"},
		{name: "object servers without s-object", services: "key,mysql,arca-object", fails: "arca-object is enabled without s-object"},
		{name: "unknown Swift shape", services: swift, env: map[string]string{"ARCA_SWIFT_SHAPE": "sidecar"}, fails: "ARCA_SWIFT_SHAPE=sidecar"},
		{name: "EC policy without object servers", services: "key,mysql,s-proxy", env: map[string]string{"ARCA_EC_POLICY": "ec42"}, fails: "ARCA_EC_POLICY=ec42 without arca-object"},
		{name: "EC policy name", services: swift, env: map[string]string{"ARCA_EC_POLICY": "ec 42"}, fails: "a storage policy's name is letters, digits and dashes"},
		{name: "EC fragments", services: swift, env: map[string]string{"ARCA_EC_POLICY": "ec", "ARCA_EC_PARITY_FRAGMENTS": "two"}, fails: "ARCA_EC_PARITY_FRAGMENTS=two"},
		{name: "EC policy index", services: swift, env: map[string]string{"ARCA_EC_POLICY": "ec", "ARCA_EC_POLICY_INDEX": "-1"}, fails: "ARCA_EC_POLICY_INDEX=-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := &plugin{t: t, repo: repoRoot(t), dir: dir}
			for k, v := range map[string]string{
				"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "ARCA_BIN_DIR": filepath.Join(dir, "bin"),
				"ENABLED_SERVICES": tc.services, "DISABLED_SERVICES": tc.disabled, "DATABASE_TYPE": "mysql",
				"SWIFT_USE_MOD_WSGI": "False",
			} {
				p.set(k, v)
			}
			for k, v := range tc.env {
				p.set(k, v)
			}
			out, err := p.run("stack", "pre-install")
			if err == nil || !strings.Contains(out, tc.fails) {
				t.Fatalf("stack pre-install: %v, want a failure saying %q:\n%s", err, tc.fails, out)
			}
		})
	}

	// Erasure-coded policies arca-object-server cannot serve alone are
	// refused by name, before Keystone is asked for anything.
	testenv.RequireTools(t, "/usr/bin/python3", "swift-ring-builder")
	ecConf := "[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:2]\nname = deepfreeze\npolicy_type = erasure_coding\n" +
		"ec_type = %s\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n"
	six := []string{"z1-127.0.0.1:6613/sdb1", "z1-127.0.0.1:6613/sdb2", "z1-127.0.0.1:6613/sdb3", "z1-127.0.0.1:6613/sdb4", "z1-127.0.0.1:6613/sdb5", "z1-127.0.0.1:6613/sdb6"}
	for _, tc := range []struct {
		name, ecType string
		devs         []string // of object-2.builder (6 replicas); nil: no ring
		env          map[string]string
		fails        []string
	}{
		{name: "EC policy without a ring", ecType: "liberasurecode_rs_vand", fails: []string{"storage policy 2 (deepfreeze) is erasure-coded and has no ring"}},
		{name: "EC ring with fewer devices than fragments", ecType: "liberasurecode_rs_vand", devs: six[:2],
			fails: []string{"storage policy 2 (deepfreeze) is erasure-coded 4+2", "its 6 fragments need as many devices", "has 2"}},
		// Five devices on node 1, one on another host's object server.
		{name: "EC ring mixing object servers", ecType: "liberasurecode_rs_vand", devs: append(slices.Clone(six[:5]), "z2-127.0.0.2:6200/sdb1"),
			fails: []string{"storage policy 2 (deepfreeze)", "puts fragments on 127.0.0.2:6200", "mixing arca-object-server with other object servers"}},
		// pyeclib refuses the scheme; the plugin tries python3-pyeclib
		// (which this test's install_package lacks) and names the policy.
		{name: "EC type pyeclib lacks", ecType: "liberasurecode_rs_nosuch", devs: six,
			fails: []string{"storage policy 2 (deepfreeze): Swift's python /usr/bin/python3 cannot encode liberasurecode_rs_nosuch 4+2 with pyeclib"}},
		// ARCA_EC_POLICY's scheme, checked in Swift's python before
		// anything is written.
		{name: "ARCA_EC_POLICY without pyeclib", env: map[string]string{"ARCA_EC_POLICY": "ec", "ARCA_EC_TYPE": "isa_l_rs_nosuch"},
			fails: []string{"ARCA_EC_POLICY=ec: Swift's python /usr/bin/python3 cannot encode isa_l_rs_nosuch 4+2 with pyeclib"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sw := filepath.Join(dir, "swift")
			if err := os.MkdirAll(filepath.Join(sw, "object-server"), 0o755); err != nil {
				t.Fatal(err)
			}
			conf := "[storage-policy:0]\nname = gold\ndefault = yes\n"
			if tc.ecType != "" {
				conf = fmt.Sprintf(ecConf, tc.ecType)
			}
			if err := os.WriteFile(filepath.Join(sw, "swift.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sw, "object-server", "1.conf"), []byte("[DEFAULT]\nbind_port = 6613\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.devs != nil {
				writeBuilder(t, filepath.Join(sw, "object-2.builder"), 6, tc.devs)
			}
			log := filepath.Join(dir, "standin.log")
			p := &plugin{t: t, repo: repoRoot(t), dir: dir}
			for k, v := range map[string]string{
				"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "SWIFT_CONF_DIR": sw,
				"ENABLED_SERVICES": "s-object", "DISABLED_SERVICES": "arca-api",
				"ARCA_SWIFT_PYTHON": "/usr/bin/python3", "STANDIN_LOG": log,
			} {
				p.set(k, v)
			}
			for k, v := range tc.env {
				p.set(k, v)
			}
			out, err := p.run("stack", "post-config")
			for _, want := range tc.fails {
				if err == nil || !strings.Contains(out, want) {
					t.Fatalf("stack post-config: %v, want a refusal saying %q:\n%s", err, want, out)
				}
			}
			if strings.Contains(tc.name, "pyeclib") {
				if b, _ := os.ReadFile(log); !strings.Contains(string(b), "install_package python3-pyeclib") {
					t.Errorf("python3-pyeclib was not tried before the refusal: %q", b)
				}
			}
		})
	}
}

// writeBuilder writes a ring builder of 2^6 partitions and replicas
// replicas with the devices given (zZONE-IP:PORT/DEVICE), not rebalanced:
// what the plugin reads of it is its devices and replica count.
func writeBuilder(t *testing.T, path string, replicas int, devs []string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", `
import sys
from swift.common.ring import RingBuilder
rb = RingBuilder(6, int(sys.argv[2]), 1)
for v in sys.argv[3:]:
    zone, rest = v[1:].split('-', 1)
    addr, dev = rest.split('/', 1)
    ip, port = addr.rsplit(':', 1)
    rb.add_dev({'region': 1, 'zone': int(zone), 'ip': ip, 'port': int(port), 'replication_ip': ip,
                'replication_port': int(port), 'device': dev, 'weight': 1.0, 'meta': ''})
rb.save(sys.argv[1])
`, path, strconv.Itoa(replicas)}, devs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("writing %s: %v\n%s", path, err, out)
	}
}

// TestDevStackECRings: the plugin's ring work for erasure-coded policies,
// on rings as DevStack leaves them for one node (SWIFT_REPLICAS=1, sdb1 on
// Swift's port): a policy of swift.conf whose ring is that node's moves
// to arca-object-server's port for service and replication (Swift's
// reconstructor sends fragments over SSYNC to the replication port), and
// ARCA_EC_POLICY (2+1 here) becomes the next policy, its ring three
// devices of that node, the two beyond sdb1 created beside it.
func TestDevStackECRings(t *testing.T) {
	testenv.RequireTools(t, "/usr/bin/python3", "swift-ring-builder", "sudo")
	dir := t.TempDir()
	sw, devices := filepath.Join(dir, "swift"), filepath.Join(dir, "data", "1")
	for _, d := range []string{filepath.Join(sw, "object-server"), filepath.Join(devices, "sdb1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := "[storage-policy:0]\nname = Policy-0\ndefault = yes\n\n[storage-policy:1]\nname = silver\n\n" +
		"[storage-policy:2]\nname = deepfreeze\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\n" +
		"ec_num_data_fragments = 2\nec_num_parity_fragments = 1\n"
	if err := os.WriteFile(filepath.Join(sw, "swift.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sw, "object-server", "1.conf"), []byte("[DEFAULT]\nbind_port = 6613\ndevices = "+devices+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	buildRing(t, filepath.Join(sw, "object.builder"), [][]string{{"create", "6", "1", "1"}, {"add", "z1-127.0.0.1:6613/sdb1", "1"}})
	copyFile(t, filepath.Join(sw, "object.ring.gz"), filepath.Join(sw, "object-1.ring.gz"))
	buildRing(t, filepath.Join(sw, "object-2.builder"), [][]string{{"create", "6", "3", "1"},
		{"add", "z1-127.0.0.1:6613/sdb1", "1"}, {"add", "z1-127.0.0.1:6613/sdb2", "1"}, {"add", "z1-127.0.0.1:6613/sdb3", "1"}})
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// Some thirty Python starts (swift-ring-builder, the stand-in iniset):
	// minutes on a loaded machine.
	p := &plugin{t: t, repo: repoRoot(t), dir: dir, timeout: 15 * time.Minute}
	for k, v := range map[string]string{
		"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "SWIFT_CONF_DIR": sw, "STACK_USER": me.Username,
		"ENABLED_SERVICES": "", "ARCA_SWIFT_PYTHON": "/usr/bin/python3", "ARCA_OBJECT_PORT_BASE": "6680",
		"ARCA_EC_POLICY": "arca-ec", "ARCA_EC_DATA_FRAGMENTS": "2", "ARCA_EC_PARITY_FRAGMENTS": "1", "ARCA_EC_SEGMENT_SIZE": "65536",
	} {
		p.set(k, v)
	}
	// configure_arca_object's ring part, without its Keystone user.
	p.standin(`source "$ARCA_DIR/devstack/settings"
source "$ARCA_DIR/devstack/plugin.sh"
rings=$(_arca_object_rings)
while read -r idx type name; do _arca_repoint_ring "$idx" "$type" "$name"; done <<<"$rings"
_arca_add_ec_policy`)
	for ring, want := range map[string]string{
		// Replicated: the service port only (rsync's module stays).
		"object.ring.gz": "127.0.0.1:6680/6613/sdb1", "object-1.ring.gz": "127.0.0.1:6680/6613/sdb1",
		"object-2.ring.gz": "127.0.0.1:6680/6680/sdb1 127.0.0.1:6680/6680/sdb2 127.0.0.1:6680/6680/sdb3",
		"object-3.ring.gz": "127.0.0.1:6680/6680/sdb1 127.0.0.1:6680/6680/sdb1-ec1 127.0.0.1:6680/6680/sdb1-ec2",
	} {
		if got := ringDevices(t, filepath.Join(sw, ring)); got != want {
			t.Errorf("%s devices (ip:port/replication port/device) %q, want %q", ring, got, want)
		}
	}
	swiftConf := readFile(t, filepath.Join(sw, "swift.conf"))
	if want := "[storage-policy:3]\nname = arca-ec\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\n" +
		"ec_num_data_fragments = 2\nec_num_parity_fragments = 1\nec_object_segment_size = 65536\n"; !strings.Contains(swiftConf, want) {
		t.Errorf("swift.conf lacks %q:\n%s", want, swiftConf)
	}
	for _, d := range []string{"sdb1-ec1", "sdb1-ec2"} {
		if st, err := os.Stat(filepath.Join(devices, d)); err != nil || !st.IsDir() {
			t.Errorf("device %s of the EC policy not made: %v", d, err)
		}
	}
	// A second post-config finds the policy there and leaves it.
	p.standin(`source "$ARCA_DIR/devstack/settings"
source "$ARCA_DIR/devstack/plugin.sh"
_arca_object_rings >/dev/null
_arca_add_ec_policy | grep -q "Storage policy 3 (arca-ec) is already in"`)
	if got := readFile(t, filepath.Join(sw, "swift.conf")); got != swiftConf {
		t.Errorf("a second run changed swift.conf:\n%s", got)
	}
}

// TestDevStackSettingsServices: settings enables the filter only with
// s-proxy, the object servers only with s-object, and one object service
// per node up to SWIFT_REPLICAS (unstack.sh reads settings again: each is
// stopped there).
func TestDevStackSettingsServices(t *testing.T) {
	repo := repoRoot(t)
	for _, tc := range []struct{ services, replicas, want string }{
		{"key,mysql", "", "key,mysql,arca-api"},
		{"key,mysql,s-proxy", "3", "key,mysql,s-proxy,arca-api,arca-swift-filter"},
		{"key,mysql,s-proxy,s-object", "3", "key,mysql,s-proxy,s-object,arca-api,arca-swift-filter,arca-object,arca-object-2,arca-object-3"},
	} {
		script := `source "$1"; source "$2/devstack/settings"; echo "$ENABLED_SERVICES"`
		cmd := exec.Command("bash", "-c", script, "s", filepath.Join(repo, "devstack", "testdata", "standins.sh"), repo)
		cmd.Env = append(os.Environ(), "ENABLED_SERVICES="+tc.services, "SWIFT_REPLICAS="+tc.replicas, "DISABLED_SERVICES=")
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("ENABLED_SERVICES=%s SWIFT_REPLICAS=%s: %q %v, want %q", tc.services, tc.replicas, got, err, tc.want)
		}
	}
}
