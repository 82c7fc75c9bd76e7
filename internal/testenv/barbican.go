package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Barbican is a reference Barbican 15 API (Debian barbican-api) started by
// a test, for differential tests: the same requests to it and to arca-api,
// the answers compared.
type Barbican struct {
	*Proc
	URL string
}

// barbicanPaste is Debian's paste file.
const barbicanPaste = "/usr/share/barbican-common/barbican-api-paste.ini"

// StartBarbican starts a private Barbican 15 under uwsgi on a free port:
// SQLite in a temporary folder, the simple_crypto plugin with a fresh KEK,
// no queue (orders are processed in the request, as arca-api does), and
// Barbican's own unauthenticated pipeline, which takes the caller from
// X-Project-Id, X-User-Id and X-Roles as arca-api's no-auth mode does. It
// shares nothing with the stack's Barbican (tools/stack.sh,
// ARCA_STACK_BARBICAN=1), which is keystone-authenticated and only there
// when asked for. StackMissing when barbican-api or uwsgi is not installed.
func StartBarbican(t testing.TB) *Barbican {
	t.Helper()
	RequireTools(t, "uwsgi")
	paste, err := os.ReadFile(barbicanPaste)
	if err != nil {
		StackMissing(t, "barbican-api is not installed ("+barbicanPaste+": "+err.Error()+")")
	}
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(filepath.Join(home, ".barbican"), 0o700); err != nil {
		t.Fatal(err)
	}
	noauth := strings.Replace(string(paste), "/v1: barbican-api-keystone", "/v1: barbican_api", 1)
	if noauth == string(paste) {
		t.Fatalf("testenv: %s has no keystone /v1 pipeline to replace", barbicanPaste)
	}
	pastePath := filepath.Join(work, "barbican-api-paste.ini")
	if err := os.WriteFile(pastePath, []byte(noauth), 0o600); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	b := &Barbican{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	// Barbican reads ~/.barbican/barbican.conf before /etc/barbican.
	conf := fmt.Sprintf(`[DEFAULT]
sql_connection = sqlite:///%s
db_auto_create = True
host_href = %s
log_dir = %s
log_file = barbican-api.log
[secretstore]
enabled_secretstore_plugins = store_crypto
[crypto]
enabled_crypto_plugins = simple_crypto
[simple_crypto_plugin]
kek = %s
[oslo_policy]
enforce_new_defaults = True
enforce_scope = False
`, filepath.Join(work, "barbican.sqlite"), b.URL, work, base64.StdEncoding.EncodeToString(kek))
	if err := os.WriteFile(filepath.Join(home, ".barbican", "barbican.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Proc = StartProc(t, nil, "uwsgi", "--plugin", "python3", "--http-socket", fmt.Sprintf("127.0.0.1:%d", port),
		"--paste", "config:"+pastePath, "--no-default-app", "--master", "--processes", "1", "--threads", "4",
		"--enable-threads", "--lazy-apps", "--die-on-term", "--buffer-size", "65535", "--env", "HOME="+home,
		// uwsgi's http-socket does not keep connections alive reliably.
		"--add-header", "Connection: close")
	// The version document answers 300 (Multiple Choices) once the app is
	// loaded; the first load takes seconds.
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(healthTimeout)
	for {
		if resp, err := c.Get(b.URL + "/"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusMultipleChoices {
				return b
			}
		}
		if time.Now().After(deadline) || b.Exited() {
			t.Fatalf("barbican did not start:\n%s", b.Log.Tail(failureTail))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
