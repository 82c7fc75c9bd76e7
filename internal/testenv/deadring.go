package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// buildDeadReplicaRing writes a container ring of the stack's container
// devices plus one more replica on a port nothing listens on, with the
// stack ring's partition power (so partitions, hence databases, are the
// same): one replica per device, so every container has one.
const buildDeadReplicaRing = `
import os, sys
from swift.common.ring import RingBuilder, RingData
src, dst, dead = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = RingData.load(src)
devs = [d for d in r.devs if d]
rb = RingBuilder(32 - r._part_shift, len(devs) + 1, 0)
for i, d in enumerate(devs):
    rb.add_dev({'id': i, 'region': 1, 'zone': i + 1, 'ip': d['ip'], 'port': d['port'],
                'replication_ip': d.get('replication_ip', d['ip']), 'replication_port': d.get('replication_port', d['port']),
                'device': d['device'], 'weight': 100.0, 'meta': ''})
rb.add_dev({'id': len(devs), 'region': 1, 'zone': len(devs) + 1, 'ip': '127.0.0.1', 'port': dead,
            'replication_ip': '127.0.0.1', 'replication_port': dead, 'device': 'unreachable', 'weight': 100.0, 'meta': ''})
rb.rebalance()
rb.get_ring().save(dst)
`

// UnreachableContainerRing fills ringDir with the account and object
// rings of c and a container ring whose containers have one more replica,
// on a container server that cannot be reached (a free port nothing
// listens on). A proxy on these rings still reads and lists containers
// (from the stack's replicas), while the object server told to update the
// unreachable replica writes an async pending for swift-object-updater,
// as Swift's own object server does when a container server is down.
func UnreachableContainerRing(t testing.TB, swiftDir string, c *Cluster, ringDir string) {
	t.Helper()
	if err := os.MkdirAll(ringDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"account.ring.gz", "object.ring.gz"} {
		b, err := os.ReadFile(filepath.Join(c.RingDir, r))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ringDir, r), b, 0o644); err != nil { //nolint:gosec // G306: rings are read by the proxy's user
			t.Fatal(err)
		}
	}
	dead := FreePort(t)
	out, err := exec.Command(python, "-c", buildDeadReplicaRing, filepath.Join(swiftDir, "container.ring.gz"),
		filepath.Join(ringDir, "container.ring.gz"), strconv.Itoa(dead)).CombinedOutput()
	if err != nil {
		t.Fatalf("building the container ring with an unreachable replica: %v\n%s", err, out)
	}
}
