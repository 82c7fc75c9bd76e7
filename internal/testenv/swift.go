package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/keystone"
)

// python is the interpreter Swift is installed for; its ring module writes
// the rings, so that they are exactly what Swift's daemons read.
const python = "/usr/bin/python3"

// buildObjectRing makes an object ring of 2^part_power partitions with one
// replica on each device: d1 on the first port given, d2 on the second...
// A seed of 0 lets the builder draw its placement at random, as
// swift-ring-builder does; any other seed makes the ring the same every
// time.
const buildObjectRing = `
import os, sys
from swift.common.ring import RingBuilder
part_power, seed, ports = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rb = RingBuilder(part_power, len(ports), 0)
for i, port in enumerate(ports):
    rb.add_dev({'id': i, 'region': 1, 'zone': i + 1, 'ip': '127.0.0.1', 'port': int(port),
                'replication_ip': '127.0.0.1', 'replication_port': int(port),
                'device': 'd%d' % (i + 1), 'weight': 100.0, 'meta': ''})
rb.rebalance(seed=seed or None)
rb.get_ring().save(os.path.join(sys.argv[1], 'object.ring.gz'))
`

// WriteRings fills ringDir (created if need be) with the stack's account
// and container rings from swiftDir, so that a private proxy reaches the
// stack's account and container servers, and an object ring of
// 2^partPower partitions with one replica on each object server listening
// on ports, device d<i> on the i-th.
func WriteRings(t testing.TB, swiftDir, ringDir string, partPower int, ports []int) {
	t.Helper()
	writeRings(t, swiftDir, ringDir, partPower, 0, ports)
}

// writeRings is WriteRings with the object ring's placement drawn from
// seed (0: at random).
func writeRings(t testing.TB, swiftDir, ringDir string, partPower, seed int, ports []int) {
	t.Helper()
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
	args := []string{"-c", buildObjectRing, ringDir, strconv.Itoa(partPower), strconv.Itoa(seed)}
	for _, p := range ports {
		args = append(args, strconv.Itoa(p))
	}
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		t.Fatalf("building the object ring: %v\n%s", err, out)
	}
}

var (
	bindPortLine = regexp.MustCompile(`(?m)^bind_port = .*$`)
	swiftDirLine = regexp.MustCompile(`(?m)^swift_dir = .*$`)
)

// SwiftProxyConfig is the stack's proxy-server.conf (in swiftDir) turned to the
// rings in ringDir and, unless port is 0, to that port. It runs as root:
// without a user option swift-proxy-server switches to user swift.
func SwiftProxyConfig(t testing.TB, swiftDir, ringDir string, port int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(swiftDir, "proxy-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	if port != 0 {
		conf = bindPortLine.ReplaceAllString(conf, "bind_port = "+strconv.Itoa(port))
	}
	return swiftDirLine.ReplaceAllString(conf, "swift_dir = "+ringDir+"\nuser = root")
}

// proxyConfig is SwiftProxyConfig, with Swift's own encryption when
// encryption is set.
func proxyConfig(t testing.TB, swiftDir, ringDir string, port int, encryption bool) string {
	t.Helper()
	conf := SwiftProxyConfig(t, swiftDir, ringDir, port)
	if encryption {
		conf = WithSwiftEncryption(t, conf)
	}
	return conf
}

// StartSwiftProxy starts a private swift-proxy-server from the stack's
// configuration on the rings in ringDir and a free port, its configuration
// written in work, and returns it with its URL. The caller waits for it
// (WaitHealthy on URL+"/healthcheck"), so that daemons start side by side.
func StartSwiftProxy(t testing.TB, swiftDir, ringDir, work string) (*Proc, string) {
	t.Helper()
	return startSwiftProxy(t, swiftDir, ringDir, work, false)
}

// startSwiftProxy is StartSwiftProxy, with Swift's own encryption when
// encryption is set.
func startSwiftProxy(t testing.TB, swiftDir, ringDir, work string, encryption bool) (*Proc, string) {
	t.Helper()
	port := FreePort(t)
	conf := filepath.Join(work, "proxy-server.conf")
	if err := os.WriteFile(conf, []byte(proxyConfig(t, swiftDir, ringDir, port, encryption)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := StartProc(t, nil, "swift-proxy-server", conf, "-v")
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// ObjectServerConfig is an arca-object-server configuration
// (object-server.conf with an [arca] section) on loopback.
type ObjectServerConfig struct {
	// Devices is Swift's devices folder; mount_check is off.
	Devices string
	Port    int
	// RingDir is swift_dir: where the rings are.
	RingDir string
	// Keystone is the service user arca-object-server authenticates as
	// (KeystoneEnv.ServiceConfig); its RegionName is the catalog region
	// where the key service is looked up.
	Keystone keystone.Config
	// KeyServiceURL is arca-api's URL; empty, the key service is found in
	// the catalog (its internal interface, the default).
	KeyServiceURL string
	// CacheTTL is the seconds of every key cache (active key id, key
	// material, errors); 0 means 1, so that tests see rotations quickly.
	CacheTTL int
	// DefaultOptions are more lines for [DEFAULT] and Sections more
	// sections, for Swift's Python daemons that read the same file.
	DefaultOptions, Sections string
}

// String is the configuration file's text.
func (c ObjectServerConfig) String() string {
	ttl := c.CacheTTL
	if ttl <= 0 {
		ttl = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[DEFAULT]
devices = %s
mount_check = false
bind_ip = 127.0.0.1
bind_port = %d
swift_dir = %s
container_update_timeout = 2
%s%s[app:object-server]
%s[arca]
crypto_protocol = aes_256_cbc
`, c.Devices, c.Port, c.RingDir, LogEveryLine, withNewline(c.DefaultOptions), withNewline(c.Sections))
	if c.KeyServiceURL != "" {
		fmt.Fprintf(&b, "key_service_url = %s\n", c.KeyServiceURL)
	}
	b.WriteString(PasswordOptions(c.Keystone))
	fmt.Fprintf(&b, "active_key_cache_ttl = %[1]d\nkey_cache_ttl = %[1]d\nerror_cache_ttl = %[1]d\n", ttl)
	return b.String()
}

// Write writes the configuration to path (mode 0600: it holds a password).
func (c ObjectServerConfig) Write(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// clusterNodes is how many arca-object-servers a Cluster has, and so how
// many replicas its object ring keeps, unless ClusterOptions say.
const clusterNodes = 2

// Cluster is a private Swift object tier: arca-object-servers (two unless
// ClusterOptions.Nodes says), each on a devices folder of its own, behind a
// private swift-proxy-server whose object ring has one replica on each;
// accounts and containers are the stack's.
type Cluster struct {
	RingDir string
	// SwiftConf is the cluster's own swift.conf (ClusterOptions.EC), or
	// empty: the stack's.
	SwiftConf string
	Nodes     []Node
	Proxy     *Proc
	ProxyURL  string
}

// Node is one arca-object-server of a Cluster.
type Node struct {
	// Devices is its devices folder and Device (d1, d2) the one device in it.
	Devices, Device string
	Port            int
	URL             string
	// Config is its configuration file.
	Config string
	Proc   *Proc
	// Python: the node runs Swift's Python object server (ECPolicy.PythonNodes).
	Python bool
}

// ClusterOptions describe a Cluster.
type ClusterOptions struct {
	// Work is the folder for the devices, rings and configurations.
	Work string
	// PartPower is the object ring's: 2^PartPower partitions.
	PartPower int
	// Object is every node's configuration; StartCluster sets Devices, Port
	// and RingDir.
	Object ObjectServerConfig
	// Nodes is how many object servers (and replicas); 0 means two.
	Nodes int
	// Binaries is the folder of the arca-object-server to run
	// (ReleaseBinaries for an earlier release's); empty, this checkout's.
	Binaries string
	// EC, when set, makes policy 0 of the cluster erasure-coded (a
	// swift.conf of its own; ec.go): Nodes is then Data+Parity.
	EC *ECPolicy
	// SwiftEncryption puts Swift's own encryption (keymaster and
	// encryption, WithSwiftEncryption) in the proxy's pipeline: with
	// Python nodes, the object tier Swift's own encryption makes.
	SwiftEncryption bool
	// RingSeed, when not 0, fixes the object ring's placement, for a test
	// that needs a given order of nodes. With one replica per device the
	// builder gives every partition the same order of devices, so more
	// partitions do not make an order more likely: only the seed decides.
	RingSeed int
}

// StartCluster starts a Cluster on the stack in swiftDir and waits until
// its object servers and proxy answer their health checks.
func StartCluster(t testing.TB, swiftDir string, o ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{RingDir: filepath.Join(o.Work, "rings")}
	if o.Nodes <= 0 {
		o.Nodes = clusterNodes
	}
	if o.Binaries == "" {
		o.Binaries = Binaries(t)
	}
	if o.EC != nil {
		o.Nodes = o.EC.Data + o.EC.Parity
		c.SwiftConf = o.EC.WriteSwiftConf(t, filepath.Join(o.Work, "swift"))
		o.Object.DefaultOptions = "swift_conf = " + c.SwiftConf + "\n" + withNewline(o.Object.DefaultOptions)
	}
	var ports []int
	for i := 1; i <= o.Nodes; i++ {
		n := Node{Devices: filepath.Join(o.Work, fmt.Sprintf("node%d", i)), Device: fmt.Sprintf("d%d", i), Port: FreePort(t)}
		if err := os.MkdirAll(filepath.Join(n.Devices, n.Device), 0o755); err != nil {
			t.Fatal(err)
		}
		n.URL = fmt.Sprintf("http://127.0.0.1:%d", n.Port)
		n.Config = filepath.Join(o.Work, fmt.Sprintf("object-server-%d.conf", i))
		conf := o.Object
		conf.Devices, conf.Port, conf.RingDir = n.Devices, n.Port, c.RingDir
		if o.EC != nil && slices.Contains(o.EC.PythonNodes, i-1) {
			n.startPython(t, c.SwiftConf, c.RingDir, o.Work)
		} else {
			conf.Write(t, n.Config)
			n.start(t, o.Binaries)
		}
		c.Nodes = append(c.Nodes, n)
		ports = append(ports, n.Port)
	}
	// The object ring names the servers' ports, so it is built once they
	// are chosen, while the servers start.
	writeRings(t, swiftDir, c.RingDir, o.PartPower, o.RingSeed, ports)
	if c.SwiftConf != "" {
		c.Proxy, c.ProxyURL = startProxyWithConf(t, swiftDir, c.RingDir, o.Work, c.SwiftConf, o.SwiftEncryption)
	} else {
		c.Proxy, c.ProxyURL = startSwiftProxy(t, swiftDir, c.RingDir, o.Work, o.SwiftEncryption)
	}
	for _, n := range c.Nodes {
		n.Proc.WaitHealthy(t, n.URL+"/healthcheck")
	}
	c.Proxy.WaitHealthy(t, c.ProxyURL+"/healthcheck")
	return c
}

// Restart stops the i-th node's object server (SIGTERM: it drains its
// requests) and starts the one in bins on the same configuration, devices
// and port, as an operator upgrading the node does; it returns once the new
// server answers its health check.
func (c *Cluster) Restart(t testing.TB, i int, bins string) {
	t.Helper()
	n := &c.Nodes[i]
	n.Proc.Stop()
	n.start(t, bins)
	n.Proc.WaitHealthy(t, n.URL+"/healthcheck")
}

func (n *Node) start(t testing.TB, bins string) {
	t.Helper()
	n.Proc = StartProc(t, NewLog(t, "arca-object-server "+n.Device), filepath.Join(bins, "arca-object-server"), "--config-file", n.Config)
}
