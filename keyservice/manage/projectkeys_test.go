package manage_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// TestProjectKeyCommands runs arca-manage project-key list|rotate|destroy
// as an operator would, beside a running arca-api on the same database.
func TestProjectKeyCommands(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{})
	get := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("X-Project-Id", "ops")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return m
	}
	first, _ := get("/v1/project-keys/active")["key_id"].(string)
	run := func(args ...string) string {
		t.Helper()
		out, err := srv.Manage(t, args...)
		if err != nil {
			t.Fatalf("arca-manage %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := run("project-key", "rotate", "--project", "ops")
	if !strings.Contains(out, "new active key") {
		t.Fatalf("rotate: %s", out)
	}
	second, _ := get("/v1/project-keys/active")["key_id"].(string)
	if second == first || !strings.Contains(out, second) {
		t.Fatalf("rotate printed %q; active is %s (was %s)", out, second, first)
	}
	for _, force := range []string{"--force=false", "--force"} {
		if out, err := srv.Manage(t, "project-key", "destroy", "--project", "ops", "--key", second, force); err == nil || !strings.Contains(out, "rotate first") {
			t.Fatalf("destroying the active key (%s): %v %s", force, err, out)
		}
	}
	// Deactivated a moment ago, within the default active_key_cache_ttl
	// (70 s): only with --force, and the refusal says what it risks.
	if out, err := srv.Manage(t, "project-key", "destroy", "--project", "ops", "--key", first); err == nil ||
		!strings.Contains(out, "active_key_cache_ttl (1m10s)") || !strings.Contains(out, "unreadable") {
		t.Fatalf("destroying a key deactivated a moment ago without --force: %v %s", err, out)
	}
	run("project-key", "destroy", "--project", "ops", "--key", first, "--force")
	out = run("project-key", "list", "--project", "ops")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], second) || !strings.Contains(lines[1], "ACTIVE") ||
		!strings.Contains(lines[2], first) || !strings.Contains(lines[2], "DESTROYED") {
		t.Fatalf("list:\n%s", out)
	}
	if out, err := srv.Manage(t, "project-key", "destroy", "--project", "other", "--key", second); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("destroying a key through another project: %v %s", err, out)
	}
	if out, err := srv.Manage(t, "project-key", "list", "--project", "a/b"); err == nil {
		t.Fatalf("bad project accepted: %s", out)
	}
}
