package testenv_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/testenv"
)

func TestLogBufferConcurrentWrites(t *testing.T) {
	var l testenv.LogBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&l, "%d\n", i)
				_ = l.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(l.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	if got := l.Tail(2); len(got) != 2 || !strings.HasSuffix(got, "\n") {
		t.Fatalf("Tail(2) = %q", got)
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{{"abcdef", 3, "def"}, {"ab", 3, "ab"}, {"", 1, ""}} {
		if got := testenv.Tail(c.s, c.n); got != c.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// TestProcStopsItsProcessGroup: Stop ends the daemon and what it forked.
func TestProcStopsItsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p := testenv.StartProc(t, nil, "/bin/sh", "-c", `sleep 300 & echo $! > "$1"; echo started; wait`, "sh", pidFile)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p.WaitHealthy(t, srv.URL)
	var child string
	for ; !p.Exited() && child == ""; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			child = strings.TrimSpace(string(b))
		}
	}
	if p.Exited() {
		t.Fatalf("the shell exited: %s", p.Log.String())
	}
	p.Stop()
	if !p.Exited() {
		t.Fatal("Stop returned before the process ended")
	}
	// Gone, or a zombie that only its new parent has yet to reap.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + child + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forked sleep (pid %s) outlived Stop: %s", child, stat)
		}
	}
	if !strings.Contains(p.Log.String(), "started") {
		t.Fatalf("log %q lacks the process's output", p.Log.String())
	}
	p.Stop() // a second Stop does nothing
}

func TestRunReportsStderr(t *testing.T) {
	out, err := testenv.Run([]string{"ARCA_TESTENV=x"}, t.TempDir(), "/bin/sh", "-c", `echo "out $ARCA_TESTENV"; pwd >&2; exit 3`)
	if err == nil || out != "out x\n" {
		t.Fatalf("Run: %q, %v", out, err)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), os.TempDir()) {
		t.Fatalf("error lacks the status or stderr: %v", err)
	}
}

func TestObjectServerConfig(t *testing.T) {
	c := testenv.ObjectServerConfig{
		Devices: "/srv/node", Port: 6200, RingDir: "/etc/swift",
		Keystone: keystone.Config{Credentials: keystone.Credentials{AuthURL: "http://ks/v3", Username: "arca", Password: "pw",
			ProjectName: "service", UserDomainName: "Default", ProjectDomainName: "Default"}, RegionName: "R1"},
		DefaultOptions: "user = root", Sections: "[object-updater]\ninterval = 1\n",
	}
	got := c.String()
	for _, want := range []string{
		"[DEFAULT]\n", "devices = /srv/node\n", "bind_port = 6200\n", "swift_dir = /etc/swift\n",
		"user = root\n[app:object-server]\n[object-updater]\ninterval = 1\n[arca]\n",
		"region_name = R1\n", "active_key_cache_ttl = 1\n", "key_cache_ttl = 1\n", "error_cache_ttl = 1\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "key_service_url") {
		t.Errorf("key_service_url without KeyServiceURL:\n%s", got)
	}
	c.KeyServiceURL, c.CacheTTL = "http://127.0.0.1:9311", 7
	if got := c.String(); !strings.Contains(got, "key_service_url = http://127.0.0.1:9311\n") || !strings.Contains(got, "key_cache_ttl = 7\n") {
		t.Errorf("KeyServiceURL or CacheTTL missing:\n%s", got)
	}
}

// TestRingsRealStack builds rings and a proxy configuration from the
// stack's and reads the object ring back with Swift's own code.
func TestRingsRealStack(t *testing.T) {
	swiftDir := testenv.SwiftDir(t)
	testenv.RequireTools(t, "/usr/bin/python3")
	ringDir := filepath.Join(t.TempDir(), "rings")
	testenv.WriteRings(t, swiftDir, ringDir, 6, []int{6011, 6012})
	out, err := exec.Command("/usr/bin/python3", "-c", `
import sys
from swift.common.ring import Ring
r = Ring(sys.argv[1], ring_name='object')
print(r.replica_count, r.partition_count, ' '.join('%d/%s' % (d['port'], d['device']) for d in r.devs if d))
`, ringDir).CombinedOutput()
	if err != nil {
		t.Fatalf("reading the object ring: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "2.0 64 6011/d1 6012/d2"; got != want {
		t.Errorf("object ring %q, want %q", got, want)
	}
	for _, r := range []string{"account.ring.gz", "container.ring.gz"} {
		if _, err := os.Stat(filepath.Join(ringDir, r)); err != nil {
			t.Error(err)
		}
	}
	conf := testenv.SwiftProxyConfig(t, swiftDir, ringDir, 6999)
	for _, want := range []string{"\nbind_port = 6999\n", "\nswift_dir = " + ringDir + "\nuser = root\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("proxy config lacks %q:\n%s", want, conf)
		}
	}
}
