// StartAPI runs real arca-api processes for tests: it builds the
// binaries once per test binary, writes a configuration, creates the master
// key and schema with arca-manage exactly as an operator would, starts the
// server on a free loopback port and stops it when the test ends.

package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// repoRoot finds the module root from this file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binaries builds every command under cmd/ once and returns their folder.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arca-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/...")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
			return
		}
		binDir = dir
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// APIOptions describe the arca-api to start.
type APIOptions struct {
	// DatabaseURL is the [database] connection; empty: a fresh SQLite file.
	DatabaseURL string
	// Extra is appended to the configuration file verbatim (more sections).
	Extra string
	// AuthStrategy defaults to noauth.
	AuthStrategy string
	// MasterKeyFile reuses an existing key file (several servers sharing
	// one database must share their master keys).
	MasterKeyFile string
	// SkipMigrations leaves the schema alone (to test refusal to start).
	SkipMigrations bool
	// LogFlushInterval is [DEFAULT] log_flush_interval; empty: 0
	// (LogEveryLine).
	LogFlushInterval string
	// Binaries is the folder of the arca-api and arca-manage to run
	// (ReleaseBinaries for an earlier release's); empty, this checkout's.
	Binaries string
}

// API is a running arca-api.
type API struct {
	URL        string
	ConfigFile string
	KeyFile    string
	Dir        string
	bins       string
	cmd        *exec.Cmd
	exited     chan error
	logs       *LogBuffer
}

// Logs returns everything the server logged so far.
func (s *API) Logs() string { return s.logs.String() }

// Manage runs the server's own release of arca-manage against its
// configuration.
func (s *API) Manage(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return manage(s.bins, s.ConfigFile, args...)
}

// Manage runs this checkout's arca-manage with a configuration file.
func Manage(t testing.TB, configFile string, args ...string) (string, error) {
	t.Helper()
	return manage(Binaries(t), configFile, args...)
}

func manage(bins, configFile string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bins, "arca-manage"), append([]string{"--config-file", configFile}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StartAPI writes a configuration, prepares keys and schema and starts
// arca-api; it is stopped (SIGTERM, then SIGKILL) when the test ends.
func StartAPI(t testing.TB, opts APIOptions) *API {
	t.Helper()
	dir := t.TempDir()
	port := freeAPIPort(t)
	s := &API{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, bins: opts.Binaries, logs: &LogBuffer{}}
	if s.bins == "" {
		s.bins = Binaries(t)
	}
	s.ConfigFile = filepath.Join(dir, "arca.conf")
	s.KeyFile = opts.MasterKeyFile
	if s.KeyFile == "" {
		s.KeyFile = filepath.Join(dir, "master.key")
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = "sqlite:///" + filepath.Join(dir, "arca.sqlite")
	}
	if opts.AuthStrategy == "" {
		opts.AuthStrategy = "noauth"
	}
	logFlush := LogEveryLine
	if opts.LogFlushInterval != "" {
		logFlush = "log_flush_interval = " + opts.LogFlushInterval + "\n"
	}
	conf := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
host_href = %s
auth_strategy = %s
debug = true
%s
[database]
connection = %s

[crypto]
master_key_file = %s
%s`, port, s.URL, opts.AuthStrategy, logFlush, opts.DatabaseURL, s.KeyFile, opts.Extra)
	if err := os.WriteFile(s.ConfigFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.KeyFile); os.IsNotExist(err) {
		if out, err := s.Manage(t, "kek", "rotate"); err != nil {
			t.Fatalf("arca-manage kek rotate: %v\n%s", err, out)
		}
	}
	if !opts.SkipMigrations {
		if out, err := s.Manage(t, "db", "upgrade"); err != nil {
			t.Fatalf("arca-manage db upgrade: %v\n%s", err, out)
		}
	}
	s.cmd = exec.Command(filepath.Join(s.bins, "arca-api"), "--config-file", s.ConfigFile)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting arca-api: %v", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() { s.Stop(t) })
	if err := waitHealthy(s.URL, s.exited, 20*time.Second); err != nil {
		t.Fatalf("arca-api did not become healthy: %v\nlogs:\n%s", err, s.Logs())
	}
	return s
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *API) Kill() { _ = s.cmd.Process.Kill() }

// Stop ends the server as an init system would: SIGTERM, which it answers
// by draining its requests, and SIGKILL (an error of the test) if it is
// still there 10 s later. Stopping a stopped server does nothing.
func (s *API) Stop(t testing.TB) {
	t.Helper()
	// After Kill the process may be gone already: signalling it then fails
	// harmlessly and exited reports its end. (Reading cmd.ProcessState here
	// would race with the Wait goroutine.)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err // for the next Stop
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		s.exited <- <-s.exited
		t.Errorf("arca-api did not stop on SIGTERM within 10s")
	}
	if t.Failed() {
		t.Logf("arca-api logs:\n%s", s.Logs())
	}
}

func waitHealthy(url string, exited chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("process exited: %v", err)
		default:
		}
		resp, err := client.Get(url + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from %s/healthcheck within %s", url, timeout)
}

// freeAPIPort returns a free loopback port whose default metrics port
// (metrics.DefaultBind: the port ± 10000, often in the ephemeral range
// other tests' connections use) is free too, so an arca-api without a
// [metrics] bind of its own does not fail to start on a taken one.
func freeAPIPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := FreePort(t)
		// metrics.DefaultBind's rule, restated: package metrics imports
		// keyclient, whose tests import this package.
		mp := port + 10000
		if mp > 65535 {
			mp = port - 10000
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", mp)); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port whose metrics port is free too")
	return 0
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Do sends one request with the given headers (those with an empty value
// are left out; a JSON Content-Type goes with a non-empty body) and returns
// the status and the whole answer body.
func Do(t testing.TB, method, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	resp, b := DoResponse(t, method, url, body, header)
	return resp.StatusCode, b
}

// DoResponse is Do for a test that reads the answer's headers too: it
// returns the response (its body already read and closed) and the body.
func DoResponse(t testing.TB, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp, b
}
