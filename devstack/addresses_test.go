package devstack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevStackListenAddresses: the addresses settings and plugin.sh derive
// from what stackrc and lib/swift set, for SERVICE_IP_VERSION=4 and 6. With
// 6, stackrc brackets SERVICE_HOST ([2001:db8::5]) and
// SERVICE_LISTEN_ADDRESS ([::]) and lib/swift unquotes its own listen
// address: arca-api binds the unquoted address, URLs keep the brackets,
// trusted_networks holds bare addresses (the object servers refuse
// brackets), and a health check of a wildcard bind goes to the loopback of
// its family.
func TestDevStackListenAddresses(t *testing.T) {
	repo := repoRoot(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want map[string]string
	}{{
		name: "SERVICE_IP_VERSION=4",
		env: map[string]string{
			"SERVICE_HOST": "10.1.0.5", "SERVICE_LISTEN_ADDRESS": "0.0.0.0", "SWIFT_SERVICE_LISTEN_ADDRESS": "0.0.0.0",
			"SWIFT_STORAGE_IPS": "10.1.0.6 10.1.0.7",
		},
		want: map[string]string{
			"listen": "0.0.0.0", "url": "http://10.1.0.5:9311", "filter": "0.0.0.0",
			"trusted":     "127.0.0.0/8, ::1, 10.1.0.5, 10.1.0.6, 10.1.0.7",
			"health":      "http://127.0.0.1:9311/healthcheck",
			"health_host": "http://10.1.0.5:9311/healthcheck",
			// ARCA_SWIFT_PROXY_INTERNAL_HOST's forms, as the filter's
			// upstream URL gets them.
			"url_host 127.0.0.1": "127.0.0.1", "url_host ::1": "[::1]", "url_host [::1]": "[::1]",
			"url_host 2001:db8::9": "[2001:db8::9]",
		},
	}, {
		name: "SERVICE_IP_VERSION=6",
		env: map[string]string{
			"SERVICE_HOST": "[2001:db8::5]", "SERVICE_LISTEN_ADDRESS": "[::]", "SWIFT_SERVICE_LISTEN_ADDRESS": "::",
			"SWIFT_STORAGE_IPS": "2001:db8::6,[2001:db8::7]",
		},
		want: map[string]string{
			"listen": "::", "url": "http://[2001:db8::5]:9311", "filter": "::",
			"trusted":     "127.0.0.0/8, ::1, 2001:db8::5, 2001:db8::6, 2001:db8::7",
			"health":      "http://[::1]:9311/healthcheck",
			"health_host": "http://[2001:db8::5]:9311/healthcheck",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// plugin.sh without a phase only defines its functions.
			script := `set -o errexit -o nounset
source "$1"
set +o nounset
source "$2/devstack/settings"
source "$2/devstack/plugin.sh"
echo "listen=$ARCA_API_LISTEN_ADDRESS"
echo "url=$ARCA_API_URL"
echo "filter=$ARCA_FILTER_LISTEN_ADDRESS"
echo "trusted=$(_arca_object_trusted_networks)"
echo "health=$(_arca_health_url "$ARCA_API_LISTEN_ADDRESS" "$ARCA_API_PORT")"
echo "health_host=$(_arca_health_url "$SERVICE_HOST" "$ARCA_API_PORT")"
for h in 127.0.0.1 ::1 "[::1]" 2001:db8::9; do echo "url_host $h=$(_arca_url_host "$h")"; done
`
			cmd := exec.Command("bash", "-c", script, "s", filepath.Join(repo, "devstack", "testdata", "standins.sh"), repo)
			cmd.Env = append(os.Environ(), "ENABLED_SERVICES=key,mysql,s-proxy,s-object", "DISABLED_SERVICES=", "ARCA_DIR="+repo)
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				k, v, _ := strings.Cut(line, "=")
				got[k] = v
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: %q, want %q", k, got[k], want)
				}
			}
		})
	}
}
