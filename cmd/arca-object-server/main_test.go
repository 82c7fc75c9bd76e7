package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/metrics"
	"opendev.org/x/arca/internal/testenv"
)

// TestLogLevel runs the real binary with each log_level an operator may
// write (Swift's levels, in any case) and checks what reaches the log: the
// access line of a request at info and debug, nothing at warning or error.
func TestLogLevel(t *testing.T) {
	bin := filepath.Join(testenv.Binaries(t), "arca-object-server")
	for _, tc := range []struct {
		level      string
		accessLine bool
	}{
		{"info", true},
		{"DEBUG", true},
		{"warning", false},
		{"WARNING", false},
		{"error", false},
	} {
		t.Run(tc.level, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "node", "sda"), 0o755); err != nil {
				t.Fatal(err)
			}
			swiftConf := filepath.Join(dir, "swift.conf")
			if err := os.WriteFile(swiftConf, []byte("[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\ndefault = yes\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			port := testenv.FreePort(t)
			conf := filepath.Join(dir, "object-server.conf")
			// No encryption: the key service is never asked, so its URL
			// need not answer.
			text := fmt.Sprintf("[DEFAULT]\ndevices = %s/node\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = %d\n"+
				"swift_dir = %s\nswift_conf = %s\nlog_level = %s\n[app:object-server]\n[arca]\ncrypto_driver = none\n"+
				"key_service_url = http://127.0.0.1:1\nkey_service_noauth = true\n", dir, port, dir, swiftConf, tc.level)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			log := testenv.NewLog(t, "arca-object-server")
			p := testenv.StartProc(t, log, bin, "--config-file", conf)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			p.WaitHealthy(t, base+"/healthcheck")
			resp, err := http.Get(base + "/sda/0/a/c/missing")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET of a missing object: %d, want 404", resp.StatusCode)
			}
			p.Stop() // flushes the log
			got := strings.Contains(log.String(), "path=/sda/0/a/c/missing")
			if got != tc.accessLine {
				t.Fatalf("log_level = %s: access line logged = %v, want %v; log:\n%s", tc.level, got, tc.accessLine, log.Tail(2000))
			}
		})
	}
}

// startConf writes an object-server configuration (crypto_driver = none:
// no key service is asked) with the given [DEFAULT] bind_ip and [arca]
// lines, in a file of the given mode, and runs the real binary on it. It
// returns the port and, when the binary exits within a few seconds, its
// output and exit error; exited is false when it kept running (stopped
// by the test's cleanup).
func startConf(t *testing.T, bindIP, arcaLines string, mode os.FileMode) (port int, exited bool, out string, err error) {
	t.Helper()
	bin := filepath.Join(testenv.Binaries(t), "arca-object-server")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node", "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	swiftConf := filepath.Join(dir, "swift.conf")
	if err := os.WriteFile(swiftConf, []byte("[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\ndefault = yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port = testenv.FreePort(t)
	conf := filepath.Join(dir, "object-server.conf")
	text := fmt.Sprintf("[DEFAULT]\ndevices = %s/node\nmount_check = false\nbind_ip = %s\nbind_port = %d\n"+
		"swift_dir = %s\nswift_conf = %s\n[app:object-server]\n[arca]\ncrypto_driver = none\n"+
		"key_service_url = http://127.0.0.1:1\nkey_service_noauth = true\n%s\n", dir, bindIP, port, dir, swiftConf, arcaLines)
	if err := os.WriteFile(conf, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, mode); err != nil { // whatever the umask did
		t.Fatal(err)
	}
	log := testenv.NewLog(t, "arca-object-server")
	p := testenv.StartProc(t, log, bin, "--config-file", conf)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return port, true, log.String(), nil
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", port)); err == nil {
			resp.Body.Close()
			return port, false, log.String(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port, p.Exited(), log.String(), nil
}

// TestRefusesToListenBeyondLoopbackUntrusted: the
// server answers plaintext to whoever reaches its port, so it does not
// start on a non-loopback address unless trusted_networks says who may.
func TestRefusesToListenBeyondLoopbackUntrusted(t *testing.T) {
	for _, tc := range []struct {
		name, bindIP, arca string
		starts             bool
	}{
		{"0.0.0.0 without trusted_networks", "0.0.0.0", "", false},
		{"0.0.0.0 with trusted_networks", "0.0.0.0", "trusted_networks = 127.0.0.1/32, 10.1.0.0/24", true},
		{"loopback without trusted_networks", "127.0.0.1", "", true},
		{"invalid trusted_networks", "127.0.0.1", "trusted_networks = 10.1.0.0/33", false},
		{"empty trusted_networks", "127.0.0.1", "trusted_networks =", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, exited, out, _ := startConf(t, tc.bindIP, tc.arca, 0o600)
			if exited == tc.starts {
				t.Fatalf("exited = %v, want %v; log:\n%s", exited, !tc.starts, testenv.Tail(out, 2000))
			}
			if !tc.starts && !strings.Contains(out, "trusted_networks") {
				t.Fatalf("the error does not name trusted_networks:\n%s", testenv.Tail(out, 2000))
			}
		})
	}
}

// TestRefusesReadableCredentialFile: a configuration
// file holding the key service password is refused when its group or
// others have any access to it, as arca-api refuses its master key file;
// the error names the file and the fix.
func TestRefusesReadableCredentialFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password bool
		mode     os.FileMode
		starts   bool
	}{
		{"password, 0644", true, 0o644, false},
		{"password, 0640", true, 0o640, false},
		{"password, 0604", true, 0o604, false},
		{"password, 0600", true, 0o600, true},
		{"password, 0400", true, 0o400, true},
		{"no password, 0644", false, 0o644, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := ""
			if tc.password {
				lines = "password = s3cret-of-the-object-server"
			}
			_, exited, out, _ := startConf(t, "127.0.0.1", lines, tc.mode)
			if exited == tc.starts {
				t.Fatalf("exited = %v, want %v; log:\n%s", exited, !tc.starts, testenv.Tail(out, 2000))
			}
			if !tc.starts && (!strings.Contains(out, "object-server.conf") || !strings.Contains(out, "chmod 600")) {
				t.Fatalf("the error does not name the file and the fix:\n%s", testenv.Tail(out, 2000))
			}
			if strings.Contains(out, "s3cret-of-the-object-server") {
				t.Fatal("the password is in the log")
			}
		})
	}
}

// TestMetricsListener: /metrics is on a loopback listener of its own
// (metrics.DefaultBind of the service port), never on the object-server
// port that the proxies reach, unless [metrics] bind is set empty.
func TestMetricsListener(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("default", func(t *testing.T) {
		port, exited, out, _ := startConf(t, "127.0.0.1", "", 0o600)
		if exited {
			t.Fatalf("exited:\n%s", out)
		}
		if code, body := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); code == http.StatusOK || strings.Contains(body, "arca_") {
			t.Fatalf("service port answered /metrics: %d", code)
		}
		var code int
		var body string
		for range 50 { // the metrics listener starts beside the service
			if code, body = get("http://" + metrics.DefaultBind(port) + "/metrics"); code == http.StatusOK {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code != http.StatusOK || !strings.Contains(body, "arca_http_requests_total") {
			t.Fatalf("metrics listener %s: %d", metrics.DefaultBind(port), code)
		}
	})
	t.Run("bind empty", func(t *testing.T) {
		port, exited, out, _ := startConf(t, "127.0.0.1", "[metrics]\nbind =", 0o600)
		if exited {
			t.Fatalf("exited:\n%s", out)
		}
		if code, body := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); code != http.StatusOK || !strings.Contains(body, "arca_") {
			t.Fatalf("service port /metrics with bind empty: %d", code)
		}
	})
}

// TestGCPercent: the server collects at GOGC=400 (defaultGCPercent) unless
// the GOGC environment variable says otherwise, as its Go collector
// metric shows.
func TestGCPercent(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "400"},
		{"150", "150"},
	} {
		t.Run("GOGC="+tc.env, func(t *testing.T) {
			t.Setenv("GOGC", tc.env) // the binary inherits the environment
			port, exited, out, _ := startConf(t, "127.0.0.1", "", 0o600)
			if exited {
				t.Fatalf("exited:\n%s", testenv.Tail(out, 2000))
			}
			var got string
			for range 50 { // the metrics listener starts beside the service
				if got = gogcMetric(t, "http://"+metrics.DefaultBind(port)+"/metrics"); got != "" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != tc.want {
				t.Fatalf("go_gc_gogc_percent = %q, want %s", got, tc.want)
			}
		})
	}
}

// gogcMetric is the value of go_gc_gogc_percent at url, "" when it does
// not answer it.
func gogcMetric(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "go_gc_gogc_percent "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
