package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/app"
)

// TestNoAuthBindsLoopbackOnly: auth_strategy = noauth believes whatever
// project and roles a caller's headers claim, so it may listen on loopback
// only; any other bind_host needs the operator to say
// allow_insecure_noauth_bind = true. Keystone mode is not restricted.
func TestNoAuthBindsLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		strategy, bindHost string
		allow              bool
		wantErr            bool
	}{
		{"noauth", "127.0.0.1", false, false},
		{"noauth", "127.9.9.9", false, false},
		{"noauth", "::1", false, false},
		{"noauth", "[::1]", false, false},
		{"noauth", "localhost", false, false},
		{"noauth", "::ffff:127.0.0.1", false, false},
		{"noauth", "0.0.0.0", false, true},
		{"noauth", "::", false, true},
		{"noauth", "", false, true},
		{"noauth", "192.0.2.10", false, true},
		{"noauth", "::ffff:192.0.2.10", false, true},
		{"noauth", "fe80::1", false, true},
		// A name is not resolved: what it points at can change later.
		{"noauth", "api.example.org", false, true},
		{"noauth", "localhost.example.org", false, true},
		{"noauth", "0.0.0.0", true, false},
		{"noauth", "192.0.2.10", true, false},
		{"keystone", "0.0.0.0", false, false},
	} {
		name := fmt.Sprintf("%s bind_host=%q allow=%v", tc.strategy, tc.bindHost, tc.allow)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			conf := fmt.Sprintf("[DEFAULT]\nauth_strategy = %s\nbind_host = %s\n", tc.strategy, tc.bindHost)
			if tc.allow {
				conf += "allow_insecure_noauth_bind = true\n"
			}
			conf += fmt.Sprintf("[database]\nconnection = sqlite:///%s/arca.sqlite\n[crypto]\nmaster_key_file = %s/master.key\n", dir, dir)
			path := filepath.Join(dir, "arca.conf")
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := app.LoadConfig(path)
			if err != nil {
				t.Fatalf("LoadConfig: %v (arca-manage reads this file too: only arca-api refuses it)", err)
			}
			err = cfg.CheckNoAuthBind()
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "allow_insecure_noauth_bind") {
					t.Fatalf("CheckNoAuthBind: %v, want a refusal naming allow_insecure_noauth_bind", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckNoAuthBind: %v", err)
			}
			if cfg.AllowInsecureNoAuthBind != tc.allow {
				t.Errorf("AllowInsecureNoAuthBind = %v, want %v", cfg.AllowInsecureNoAuthBind, tc.allow)
			}
		})
	}
}

// TestNoAuthAnyAddressRefusedByBinary runs the real arca-api in no-auth
// mode on 0.0.0.0: it must exit with the reason before listening.
func TestNoAuthAnyAddressRefusedByBinary(t *testing.T) {
	bin := testenv.Binaries(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "arca.conf")
	content := fmt.Sprintf("[DEFAULT]\nauth_strategy = noauth\nbind_host = 0.0.0.0\nbind_port = %d\n[database]\nconnection = sqlite:///%s/arca.sqlite\n[crypto]\nmaster_key_file = %s/master.key\n",
		port, dir, dir)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := testenv.Manage(t, conf, "kek", "rotate"); err != nil {
		t.Fatalf("kek rotate: %v %s", err, out)
	}
	if out, err := testenv.Manage(t, conf, "db", "upgrade"); err != nil {
		t.Fatalf("db upgrade: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stdout, stderr, err := testenv.RunOutputs(ctx, nil, filepath.Join(bin, "arca-api"), "--config-file", conf)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("arca-api in no-auth mode kept running on 0.0.0.0:%d (err %v); stdout %s", port, err, stdout)
	}
	for _, part := range []string{`bind_host "0.0.0.0" is not a loopback address`, "allow_insecure_noauth_bind = true"} {
		if !strings.Contains(stderr, part) {
			t.Errorf("stderr %q does not say %q", stderr, part)
		}
	}
}
