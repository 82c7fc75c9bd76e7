package testenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// provisionedUser is one entry of keystone_provision's grants in
// tools/stack.sh: ('name', env('NAME'), 'project', [roles]).
var provisionedUser = regexp.MustCompile(`\('([a-z][a-z0-9-]*)', env\('[A-Z_]+'\), '([a-z]+)',`)

// TestStackOpenRCEveryUserRealStack: "tools/stack.sh env USER" prints an
// openrc for every user the stack creates (admin from keystone-manage
// bootstrap, the others from keystone_provision's grants), and each one
// logs in with the openstack CLI to its project; an unknown user is
// refused. A user added to the stack without an openrc fails here.
func TestStackOpenRCEveryUserRealStack(t *testing.T) {
	testenv.LoadKeystone(t)
	testenv.RequireTools(t, "openstack", "bash")
	stackDir := os.Getenv("ARCA_STACK_DIR")
	if stackDir == "" {
		testenv.StackMissing(t, "ARCA_STACK_DIR is not set (eval \"$(tools/stack.sh env)\")")
	}
	script, err := filepath.Abs("../../tools/stack.sh")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	projects := map[string]string{"admin": "admin"}
	for _, m := range provisionedUser.FindAllStringSubmatch(string(src), -1) {
		projects[m[1]] = m[2]
	}
	for _, want := range []string{"demo", "alt", "arca", "arca-object", "arca-filter", "swift", "barbican"} {
		if projects[want] == "" {
			t.Errorf("keystone_provision's grants in tools/stack.sh do not name %s (the pattern no longer matches?)", want)
		}
	}
	names := make([]string, 0, len(projects))
	for u := range projects {
		names = append(names, u)
	}
	slices.Sort(names)
	ids := projectIDs(t, script, stackDir)
	for _, u := range names {
		t.Run(u, func(t *testing.T) {
			out := openrcRun(t, script, stackDir, u, "openstack token issue -f value -c project_id")
			if got, want := strings.TrimSpace(out), ids[projects[u]]; got != want || want == "" {
				t.Errorf("%s's openrc: a token for project %q, want %s (%q)", u, got, projects[u], want)
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		cmd := exec.Command(script, "env", "nobody-"+testenv.RandomHex(t, 4))
		cmd.Env = append(withoutOS(), "ARCA_STACK_DIR="+stackDir)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "unknown user") {
			t.Errorf("tools/stack.sh env for an unknown user: %v\n%s", err, out)
		}
	})
}

// openrcRun runs command in bash after eval "$(tools/stack.sh env user)",
// without the caller's OS_* variables: only the openrc speaks.
func openrcRun(t *testing.T, script, stackDir, user, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", `rc=$("$0" env "$1"); eval "$rc"; `+command, script, user)
	cmd.Env = append(withoutOS(), "ARCA_STACK_DIR="+stackDir)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("tools/stack.sh env %s, then %s: %v\n%s%s", user, command, err, out, stderr)
	}
	return string(out)
}

// projectIDs maps the stack's project names to their ids, as the admin
// lists them.
func projectIDs(t *testing.T, script, stackDir string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, line := range strings.Split(openrcRun(t, script, stackDir, "admin", "openstack project list -f value -c ID -c Name"), "\n") {
		if id, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			ids[name] = id
		}
	}
	return ids
}

func withoutOS() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			env = append(env, kv)
		}
	}
	return env
}
