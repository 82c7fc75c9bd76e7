package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PythonObjectServer describes a Debian swift-object-server (Swift 2.30)
// a test runs beside arca-object-server: the reference the object server
// is measured and compared against.
type PythonObjectServer struct {
	// Devices is Swift's devices folder (mount_check is off) and Device
	// the one device made in it; Devices defaults to a temporary folder,
	// Device to sda.
	Devices, Device string
	// RingDir is swift_dir (rings); empty, the server runs without rings,
	// which a lone object server does not need.
	RingDir string
	// Workers is the number of worker processes; 0 serves in the one
	// process.
	Workers int
	// LogLevel is log_level (default WARNING).
	LogLevel string
	// Extra is more lines for [app:object-server].
	Extra string
	// SwiftConf, when set, is the swift.conf whose storage policies the
	// server loads (an ECPolicy's); else Swift's own /etc/swift/swift.conf.
	SwiftConf string
}

// PythonObjectServerProc is a running swift-object-server.
type PythonObjectServerProc struct {
	*Proc
	URL    string
	Port   int
	Config string
}

// StartPythonObjectServer starts swift-object-server as root, as the stack
// installs it, with the stack's /etc/swift/swift.conf (or o.SwiftConf, set
// before Swift loads its policies), on a free port, and waits until it
// answers.
func StartPythonObjectServer(t testing.TB, o PythonObjectServer) *PythonObjectServerProc {
	t.Helper()
	RequireTools(t, "swift-object-server")
	work := t.TempDir()
	if o.Devices == "" {
		o.Devices = filepath.Join(work, "node")
	}
	if o.Device == "" {
		o.Device = "sda"
	}
	if o.LogLevel == "" {
		o.LogLevel = "WARNING"
	}
	if err := os.MkdirAll(filepath.Join(o.Devices, o.Device), 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	swiftDir := ""
	if o.RingDir != "" {
		swiftDir = "swift_dir = " + o.RingDir + "\n"
	}
	// log_address names no socket: Swift then logs to stdout with -v
	// rather than to a syslog the machine may not have.
	conf := fmt.Sprintf(`[DEFAULT]
user = root
bind_ip = 127.0.0.1
bind_port = %d
workers = %d
devices = %s
mount_check = false
%slog_address = %s/no-syslog
log_level = %s
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
%s`, port, o.Workers, o.Devices, swiftDir, work, o.LogLevel, withNewline(o.Extra))
	p := &PythonObjectServerProc{Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Config: filepath.Join(work, "object-server.conf")}
	if err := os.WriteFile(p.Config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if o.SwiftConf != "" {
		p.Proc = StartProc(t, nil, python, "-c", runObjectServer, o.SwiftConf, p.Config)
	} else {
		p.Proc = StartProc(t, nil, "swift-object-server", p.Config, "-v")
	}
	// Without a healthcheck middleware in the pipeline, OPTIONS is the
	// object server's own answer.
	deadline := time.Now().Add(healthTimeout)
	for {
		req, err := http.NewRequest(http.MethodOptions, p.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("swift-object-server did not start:\n%s", p.Log.Tail(failureTail))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
