package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
)

// Tests of the arca-swift-filter binary itself, built once per test run and
// configured as an operator would, with the stack's Keystone and the
// filter's own service user (arca-filter).

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds arca-swift-filter (only this command, so that another
// command failing to build does not block these tests).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arca-swift-filter-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "arca-swift-filter"), ".")
		cmd.Dir = filepath.Dir(file)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = filepath.Join(dir, "arca-swift-filter")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePorts returns a loopback port that is free, and whose default metrics
// port (metrics.DefaultBind) is free too.
func freePorts(t *testing.T) (port int, metricsAddr string) {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		metricsAddr = metrics.DefaultBind(port)
		mln, err := net.Listen("tcp", metricsAddr)
		ln.Close()
		if err == nil {
			mln.Close()
			return port, metricsAddr
		}
	}
	t.Fatal("no free port pair for the service and its metrics")
	return 0, ""
}

// recorder is a stand-in Swift proxy that records the paths it is asked.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		w.Header().Set("X-Upstream", "swift")
		w.WriteHeader(http.StatusPreconditionFailed) // Swift's answer to GET /metrics
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) saw(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.paths {
		if p == path {
			return true
		}
	}
	return false
}

// filterConf is a swift-filter.conf for arca-filter; secrets are its
// credential lines (kept separate so a test can put them in another file).
func filterConf(ks *testenv.KeystoneEnv, port int, upstream string) (main, secrets string) {
	c := ks.UserConfig(testenv.UserArcaFilter)
	main = fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d

[upstream]
url = %s

[keystone_authtoken]
www_authenticate_uri = %s
auth_type = password
auth_url = %s
username = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
region_name = %s

[key_service]
endpoint = http://127.0.0.1:9/
`, port, upstream, c.WWWAuthenticateURI, c.AuthURL, c.Username, c.ProjectName, c.UserDomainName, c.ProjectDomainName, c.RegionName)
	return main, "[keystone_authtoken]\npassword = " + c.Password + "\n"
}

// writeFile writes body with mode exactly (chmod after the write: the umask
// does not apply).
func writeFile(t *testing.T, path, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// configArgs is the --config-file list of files.
func configArgs(files []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "--config-file", f)
	}
	return args
}

// start runs the binary with the given --config-file list until the test
// ends (testenv.Proc: its own process group, output shown on failure).
func start(t *testing.T, files ...string) *testenv.Proc {
	t.Helper()
	return testenv.StartProc(t, nil, binary(t), configArgs(files)...)
}

// runToExit runs the binary, which must end by itself (a refused start),
// and returns its combined output and exit error.
func runToExit(t *testing.T, files ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t), configArgs(files)...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("arca-swift-filter still running after 20 s:\n%s", out)
	}
	return string(out), err
}

// healthURL is the filter's /healthcheck on port.
func healthURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/healthcheck", port) }

// TestCredentialFileMode: arca-swift-filter refuses to start when a
// configuration file that holds its service user's password (or an
// application credential secret) is open to group or others, names the file,
// the option and the fix, and never prints the secret. A readable file
// without credentials beside a private one with them is fine.
func TestCredentialFileMode(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	up := newRecorder(t)
	password := ks.UserConfig(testenv.UserArcaFilter).Password
	cases := []struct {
		name    string
		files   func(dir, main, secrets string) []string
		refused string // the file the error must name; "" starts
		option  string
	}{
		{"one file 0644", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "f.conf"), main+secrets, 0o644)}
		}, "f.conf", "[keystone_authtoken] password"},
		{"one file 0640", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "f.conf"), main+secrets, 0o640)}
		}, "f.conf", "[keystone_authtoken] password"},
		{"one file 0604", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "f.conf"), main+secrets, 0o604)}
		}, "f.conf", "[keystone_authtoken] password"},
		{"one file 0620 (group may write)", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "f.conf"), main+secrets, 0o620)}
		}, "f.conf", "[keystone_authtoken] password"},
		{"key service secret in a readable second file", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "main.conf"), main+secrets, 0o600),
				writeFile(t, filepath.Join(dir, "keys.conf"), "[key_service]\napplication_credential_secret = "+password+"\n", 0o644)}
		}, "keys.conf", "[key_service] application_credential_secret"},
		{"one file 0600", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "f.conf"), main+secrets, 0o600)}
		}, "", ""},
		{"readable shared file, private credentials", func(dir, main, secrets string) []string {
			return []string{writeFile(t, filepath.Join(dir, "shared.conf"), main, 0o644),
				writeFile(t, filepath.Join(dir, "secret.conf"), secrets, 0o600)}
		}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			port, _ := freePorts(t)
			main, secrets := filterConf(ks, port, up.URL)
			if c.refused == "" {
				start(t, c.files(dir, main, secrets)...).WaitHealthy(t, healthURL(port))
				return
			}
			out, err := runToExit(t, c.files(dir, main, secrets)...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1", err)
			}
			path := filepath.Join(dir, c.refused)
			for _, want := range []string{path, c.option, "chmod 600 " + path, "group and others"} {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, password) {
				t.Error("the refusal prints the password")
			}
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				t.Error("the service port was opened")
			}
		})
	}
}
