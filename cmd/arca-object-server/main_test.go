package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/internal/teststack"
)

// TestLogLevel runs the real binary with each log_level an operator may
// write (Swift's levels, in any case) and checks what reaches the log: the
// access line of a request at info and debug, nothing at warning or error.
func TestLogLevel(t *testing.T) {
	bin := filepath.Join(testapi.Binaries(t), "arca-object-server")
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
			port := testapi.FreePort(t)
			conf := filepath.Join(dir, "object-server.conf")
			// No encryption: the key service is never asked, so its URL
			// need not answer.
			text := fmt.Sprintf("[DEFAULT]\ndevices = %s/node\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = %d\n"+
				"swift_dir = %s\nswift_conf = %s\nlog_level = %s\n[app:object-server]\n[arca]\ncrypto_driver = none\n"+
				"key_service_url = http://127.0.0.1:1\nkey_service_noauth = true\n", dir, port, dir, swiftConf, tc.level)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			log := teststack.NewLog(t, "arca-object-server")
			p := teststack.Start(t, log, bin, "--config-file", conf)
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
