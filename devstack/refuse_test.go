package devstack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevStackRefuses: set-ups the plugin cannot serve stop stack.sh at
// its first phase, saying which setting is at fault, before anything is
// built or configured.
func TestDevStackRefuses(t *testing.T) {
	const swift = "key,mysql,s-proxy,s-object,s-account,s-container"
	for _, tc := range []struct {
		name, services, disabled, fails string
		env                             map[string]string
	}{
		{name: "tls-proxy", services: swift + ",tls-proxy", fails: "tls-proxy is enabled"},
		{name: "beside Barbican", services: swift + ",barbican", fails: "Barbican is enabled beside arca-api"},
		{name: "PostgreSQL", services: "key,postgresql", env: map[string]string{"DATABASE_TYPE": "postgresql"}, fails: "DATABASE_TYPE=postgresql"},
		{name: "subnode", services: "n-cpu,s-object", fails: "without the mysql service"},
		{name: "mod_wsgi", services: swift, env: map[string]string{"SWIFT_USE_MOD_WSGI": "True"}, fails: "SWIFT_USE_MOD_WSGI=True"},
		{name: "filter without s-proxy", services: "key,mysql,arca-swift-filter", fails: "arca-swift-filter is enabled without s-proxy"},
		{name: "object servers without s-object", services: "key,mysql,arca-object", fails: "arca-object is enabled without s-object"},
		{name: "unknown Swift shape", services: swift, env: map[string]string{"ARCA_SWIFT_SHAPE": "sidecar"}, fails: "ARCA_SWIFT_SHAPE=sidecar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := &plugin{t: t, repo: repoRoot(t), dir: dir}
			for k, v := range map[string]string{
				"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "ARCA_BIN_DIR": filepath.Join(dir, "bin"),
				"ENABLED_SERVICES": tc.services, "DISABLED_SERVICES": tc.disabled, "DATABASE_TYPE": "mysql",
				"SWIFT_USE_MOD_WSGI": "False",
			} {
				p.set(k, v)
			}
			for k, v := range tc.env {
				p.set(k, v)
			}
			out, err := p.run("stack", "pre-install")
			if err == nil || !strings.Contains(out, tc.fails) {
				t.Fatalf("stack pre-install: %v, want a failure saying %q:\n%s", err, tc.fails, out)
			}
		})
	}

	// An erasure-coded policy is refused by name, before Keystone is asked
	// for anything.
	t.Run("erasure-coded policy", func(t *testing.T) {
		dir := t.TempDir()
		sw := filepath.Join(dir, "swift")
		if err := os.MkdirAll(filepath.Join(sw, "object-server"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := "[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:2]\nname = deepfreeze\npolicy_type = erasure_coding\n"
		if err := os.WriteFile(filepath.Join(sw, "swift.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sw, "object-server", "1.conf"), []byte("[DEFAULT]\nbind_port = 6613\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &plugin{t: t, repo: repoRoot(t), dir: dir}
		for k, v := range map[string]string{
			"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "SWIFT_CONF_DIR": sw,
			"ENABLED_SERVICES": "s-object", "DISABLED_SERVICES": "arca-api",
		} {
			p.set(k, v)
		}
		out, err := p.run("stack", "post-config")
		if err == nil || !strings.Contains(out, "storage policy 2 (deepfreeze)") || !strings.Contains(out, "erasure-coded") {
			t.Fatalf("stack post-config: %v, want a refusal of policy 2 (deepfreeze):\n%s", err, out)
		}
	})
}

// TestDevStackSettingsServices: settings enables the filter only with
// s-proxy, the object servers only with s-object, and one object service
// per node up to SWIFT_REPLICAS (unstack.sh reads settings again: each is
// stopped there).
func TestDevStackSettingsServices(t *testing.T) {
	repo := repoRoot(t)
	for _, tc := range []struct{ services, replicas, want string }{
		{"key,mysql", "", "key,mysql,arca-api"},
		{"key,mysql,s-proxy", "3", "key,mysql,s-proxy,arca-api,arca-swift-filter"},
		{"key,mysql,s-proxy,s-object", "3", "key,mysql,s-proxy,s-object,arca-api,arca-swift-filter,arca-object,arca-object-2,arca-object-3"},
	} {
		script := `source "$1"; source "$2/devstack/settings"; echo "$ENABLED_SERVICES"`
		cmd := exec.Command("bash", "-c", script, "s", filepath.Join(repo, "devstack", "testdata", "standins.sh"), repo)
		cmd.Env = append(os.Environ(), "ENABLED_SERVICES="+tc.services, "SWIFT_REPLICAS="+tc.replicas, "DISABLED_SERVICES=")
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("ENABLED_SERVICES=%s SWIFT_REPLICAS=%s: %q %v, want %q", tc.services, tc.replicas, got, err, tc.want)
		}
	}
}
