package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// Erasure-coded clusters. Swift's Python daemons read their storage
// policies only from /etc/swift/swift.conf (swift.common.utils
// SWIFT_CONF_FILE), which is the shared stack's: a test's EC policy lives
// in a swift.conf of its own, and the daemons that must see it (the
// private proxy, the reconstructor) are started by withSwiftConf, which
// points SWIFT_CONF_FILE at it before Swift loads its policies. The EC
// policy is policy 0, the one the stack's container servers know: they
// check that a container's policy index exists, not its type.

// ECPolicy is an erasure-coded policy 0 for a test cluster.
type ECPolicy struct {
	// Data and Parity fragments (ec_num_data_fragments,
	// ec_num_parity_fragments); the cluster has Data+Parity nodes.
	Data, Parity int
	// SegmentSize is ec_object_segment_size: small ones make several EC
	// segments of small objects.
	SegmentSize int
	// PythonNodes are the nodes (0-based) that run Swift's Python
	// swift-object-server instead of arca-object-server: a mixed ring.
	PythonNodes []int
}

var hashSection = regexp.MustCompile(`(?ms)^\[swift-hash\].*?(?:^\[|\z)`)

// WriteSwiftConf writes dir/swift.conf with the stack's hash path salt
// (from /etc/swift/swift.conf, so that objects hash as everywhere else)
// and p as policy 0, and returns its path.
func (p ECPolicy) WriteSwiftConf(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/etc/swift/swift.conf")
	if err != nil {
		StackMissing(t, "no /etc/swift/swift.conf: "+err.Error())
	}
	salt := hashSection.Find(b)
	if len(salt) > 0 && salt[len(salt)-1] == '[' {
		salt = salt[:len(salt)-1]
	}
	conf := fmt.Sprintf(`%s
[storage-policy:0]
name = Policy-0
default = yes
policy_type = erasure_coding
ec_type = liberasurecode_rs_vand
ec_num_data_fragments = %d
ec_num_parity_fragments = %d
ec_object_segment_size = %d
`, salt, p.Data, p.Parity, p.SegmentSize)
	path := filepath.Join(dir, "swift.conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withSwiftConf runs Python code (argv: swift.conf, then args) after
// pointing Swift at that swift.conf.
const withSwiftConf = `
import sys
from swift.common import utils
utils.SWIFT_CONF_FILE = sys.argv[1]
from swift.common.storage_policy import reload_storage_policies
reload_storage_policies()
del sys.argv[1]
`

// runProxy runs swift-proxy-server's main.
const runProxy = withSwiftConf + `
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(sys.argv[1], 'proxy-server', verbose=True))
`

// runReconstructorOnce runs one pass of swift-object-reconstructor.
const runReconstructorOnce = withSwiftConf + `
from swift.common.daemon import run_daemon
from swift.obj.reconstructor import ObjectReconstructor
run_daemon(ObjectReconstructor, sys.argv[1], once=True, verbose=True)
`

// startProxyWithConf is StartSwiftProxy with the storage policies of
// swiftConf (and Swift's own encryption when encryption is set).
func startProxyWithConf(t testing.TB, swiftDir, ringDir, work, swiftConf string, encryption bool) (*Proc, string) {
	t.Helper()
	port := FreePort(t)
	conf := filepath.Join(work, "proxy-server.conf")
	if err := os.WriteFile(conf, []byte(proxyConfig(t, swiftDir, ringDir, port, encryption)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := StartProc(t, NewLog(t, "swift-proxy-server"), python, "-c", runProxy, swiftConf, conf)
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// Reconstruct runs Swift's object reconstructor once over the i-th
// node's devices, with that node's configuration (an object-server.conf
// with an [object-reconstructor] section) and the cluster's swift.conf,
// and returns its output.
func (c *Cluster) Reconstruct(t testing.TB, i int) string {
	t.Helper()
	log := NewLog(t, "swift-object-reconstructor")
	p := StartProc(t, log, python, "-c", runReconstructorOnce, c.SwiftConf, c.Nodes[i].Config)
	select {
	case <-p.done:
	case <-time.After(5 * time.Minute):
		p.Stop()
		t.Fatalf("swift-object-reconstructor once did not end:\n%s", log.Tail(failureTail))
	}
	return log.String()
}

// Python runs Python code with the cluster's swift.conf loaded (its
// storage policies, as Swift's daemons here see them); args follow
// sys.argv[0]. It returns the combined output.
func (c *Cluster) Python(t testing.TB, code string, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"-c", withSwiftConf + code, c.SwiftConf}, args...)
	out, err := exec.Command(python, full...).CombinedOutput()
	return string(out), err
}

// runObjectServer runs swift-object-server's main.
const runObjectServer = withSwiftConf + `
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(sys.argv[1], 'object-server', verbose=True))
`

// startPython starts Swift's Python object server on the node's devices
// and port, with the cluster's swift.conf; it answers /healthcheck.
func (n *Node) startPython(t testing.TB, swiftConf, ringDir, work string) {
	t.Helper()
	n.Python = true
	conf := fmt.Sprintf(`[DEFAULT]
user = root
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
devices = %s
mount_check = false
swift_dir = %s
log_address = %s/no-syslog
[pipeline:main]
pipeline = healthcheck object-server
[filter:healthcheck]
use = egg:swift#healthcheck
[app:object-server]
use = egg:swift#object
[object-reconstructor]
interval = 1
`, n.Port, n.Devices, ringDir, work)
	if err := os.WriteFile(n.Config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Proc = StartProc(t, NewLog(t, "swift-object-server "+n.Device), python, "-c", runObjectServer, swiftConf, n.Config)
}
