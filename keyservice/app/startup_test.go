package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testapi"
)

// TestRefusesToStart checks that arca-api exits with a message that says
// what is wrong and how to fix it, instead of serving with unsafe keys or a
// stale schema.
func TestRefusesToStart(t *testing.T) {
	bin := testapi.Binaries(t)
	good := "mk1 " + strings.Repeat("QUFB", 10) + "QUE=\n" // 32 bytes of 'A'
	short := "mk1 QUFBQUFBQUFBQUFBQUFBQQ==\n"              // 16 bytes
	tests := []struct {
		name      string
		keyFile   string // content; "" = absent
		mode      os.FileMode
		migrate   bool
		wantParts []string
	}{
		{name: "key file missing", migrate: true, wantParts: []string{"master key file does not exist", "arca-manage kek rotate"}},
		{name: "key file world readable", keyFile: good, mode: 0o644, migrate: true, wantParts: []string{"mode 0644", "chmod 600"}},
		{name: "key too short", keyFile: short, mode: 0o600, migrate: true, wantParts: []string{`"mk1" is 16 bytes`, "32 bytes"}},
		{name: "schema missing", keyFile: good, mode: 0o600, wantParts: []string{"arca-manage db upgrade"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "master.key")
			if tt.keyFile != "" {
				if err := os.WriteFile(keyPath, []byte(tt.keyFile), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(keyPath, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			conf := filepath.Join(dir, "arca.conf")
			content := fmt.Sprintf("[DEFAULT]\nauth_strategy = noauth\nbind_port = %d\n[database]\nconnection = sqlite:///%s/arca.sqlite\n[crypto]\nmaster_key_file = %s\n",
				testapi.FreePort(t), dir, keyPath)
			if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.migrate {
				if out, err := testapi.Manage(t, conf, "db", "upgrade"); err != nil {
					t.Fatalf("db upgrade: %v %s", err, out)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stdout, stderr, err := testapi.Run(ctx, nil, filepath.Join(bin, "arca-api"), "--config-file", conf)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("arca-api started (err %v); stdout %s", err, stdout)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(stderr, part) {
					t.Errorf("stderr %q does not say %q", stderr, part)
				}
			}
		})
	}
}
