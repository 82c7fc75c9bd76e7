package rewrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
)

// TestRateLimitsObjectsPerSecond: --rate bounds the objects examined per
// second over all workers together (100 objects at 50/s take about 2 s
// with one worker or four), and a high rate does not slow the job down.
// The bounds leave room for a busy machine: the limit can only make a run
// longer, never shorter, so the lower bound is safe; the upper bound for
// the high rate is far above what 100 objects cost.
func TestRateLimitsObjectsPerSecond(t *testing.T) {
	const n = 100
	cases := []struct {
		name     string
		rate     float64
		workers  int
		min, max time.Duration
	}{
		// 100 objects at 25/s take 4 s; the unthrottled runs must stay well
		// under that, with room for a loaded machine (1.8 s seen at load
		// 40 on 2 CPUs).
		{"25/s with one worker", 25, 1, 3600 * time.Millisecond, 0},
		{"25/s shared by four workers", 25, 4, 3600 * time.Millisecond, 0},
		{"100000/s", 100000, 4, 0, 3 * time.Second},
		{"no limit", 0, 4, 0, 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newNode(t)
			keys := rewraptest.NewKeys()
			keys.Rotate("p1")
			for i := range n {
				putObject(t, m, keys, "p1", fmt.Sprint("o", i), body(i), nil)
			}
			keys.Rotate("p1")
			start := time.Now()
			s := run(t, m, keys, func(o *Options) { o.Rate, o.Workers = tc.rate, tc.workers })
			took := time.Since(start)
			if s.Rewrapped != n || s.Failed != 0 {
				t.Fatalf("run: %+v", s)
			}
			if took < tc.min || (tc.max > 0 && took > tc.max) {
				t.Fatalf("%d objects at rate %g with %d workers took %s, want between %s and %s", n, tc.rate, tc.workers, took, tc.min, tc.max)
			}
			t.Logf("%d objects at rate %g with %d workers: %s", n, tc.rate, tc.workers, took)
		})
	}
}

// TestProjectScope: --project rewraps that project's objects only and
// counts the others as other projects; --all-projects rewraps every
// project's objects on non-active keys.
func TestProjectScope(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Options)
		// rewrapped and left on old keys, per project, afterwards
		rewrapped, other int
		left             map[string]int
	}{
		{"one project", func(o *Options) { o.Project = "p1" }, 3, 6, map[string]int{"p1": 0, "p2": 4}},
		{"the other project", func(o *Options) { o.Project = "p2" }, 4, 5, map[string]int{"p1": 3, "p2": 0}},
		{"all projects", func(o *Options) { o.Project, o.AllProjects = "", true }, 7, 0, map[string]int{"p1": 0, "p2": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newNode(t)
			keys := rewraptest.NewKeys()
			old := map[string]string{"p1": keys.Rotate("p1"), "p2": keys.Rotate("p2")}
			keys.Rotate("p3")
			for i := range 3 {
				putObject(t, m, keys, "p1", fmt.Sprint("a", i), body(i), nil)
			}
			for i := range 4 {
				putObject(t, m, keys, "p2", fmt.Sprint("b", i), body(i), nil)
			}
			for i := range 2 { // p3 never rotated: already on its active key
				putObject(t, m, keys, "p3", fmt.Sprint("c", i), body(i), nil)
			}
			keys.Rotate("p1")
			keys.Rotate("p2")
			s := run(t, m, keys, tc.mod)
			if s.Rewrapped != tc.rewrapped || s.OtherProject != tc.other || s.Failed != 0 || s.Scanned != 9 {
				t.Fatalf("run: %+v", s)
			}
			st := run(t, m, keys, func(o *Options) { o.Project, o.AllProjects, o.DryRun = "", true, true })
			for p, want := range tc.left {
				if got := st.Keys[KeyRef{p, old[p]}]; got != want {
					t.Errorf("%s: %d objects left on the old key, want %d", p, got, want)
				}
			}
			if st.Already+st.Rewrapped != 9 {
				t.Errorf("status after the run: %+v", st)
			}
		})
	}
	if _, err := Run(t.Context(), Options{Devices: t.TempDir(), Keys: rewraptest.NewKeys()}); err == nil {
		t.Error("a run without --project or --all-projects starts")
	}
}

// TestMainExitStatus runs the command (Main) against a key service in
// memory: it exits 0 when everything is rewrapped, 1 when any object failed
// (here: its old key is destroyed, so the resolver refuses it) or the key
// service client cannot be built, 2 on bad usage; status exits 0 with
// objects still on old keys.
func TestMainExitStatus(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		destroy    bool // destroy the key of object "a"
		resolveErr error
		want       int
		out        []string // in the output
	}{
		{name: "all rewrapped", args: []string{"--project", "p1"}, want: 0, out: []string{"rewrapped 3", "failed 0"}},
		{name: "all projects", args: []string{"--all-projects"}, want: 0, out: []string{"rewrapped 4", "failed 0"}},
		{name: "a key refused", args: []string{"--project", "p1"}, destroy: true, want: 1,
			out: []string{"rewrapped 2", "failed 1", "failed: old key: key destroyed: 1"}},
		{name: "a key refused, all projects", args: []string{"--all-projects"}, destroy: true, want: 1, out: []string{"failed: old key: key destroyed: 1"}},
		{name: "status", args: []string{"status", "--project", "p1"}, want: 0, out: []string{"objects on inactive keys: 3"}},
		{name: "dry run with a key refused", args: []string{"--dry-run", "--all-projects"}, destroy: true, want: 0, out: []string{"objects on inactive keys: 4"}},
		{name: "no key service", args: []string{"--project", "p1"}, resolveErr: errors.New("no catalog"), want: 1, out: []string{"no catalog"}},
		{name: "no project", args: nil, want: 2, out: []string{"usage:"}},
		{name: "both scopes", args: []string{"--project", "p1", "--all-projects"}, want: 2, out: []string{"usage:"}},
		{name: "bad flag", args: []string{"--project", "p1", "--rate", "fast"}, want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newNode(t)
			keys := rewraptest.NewKeys()
			first := keys.Rotate("p1")
			putObject(t, m, keys, "p1", "a", body(1), nil)
			second := keys.Rotate("p1")
			putObject(t, m, keys, "p1", "b", body(2), nil)
			putObject(t, m, keys, "p1", "c", body(3), nil)
			keys.Rotate("p2")
			putObject(t, m, keys, "p2", "d", body(4), nil)
			keys.Rotate("p1")
			keys.Rotate("p2")
			if tc.destroy {
				keys.Destroy("p1", first)
			}
			orig := newResolver
			t.Cleanup(func() { newResolver = orig })
			newResolver = func(keyclient.Options) (keyclient.Resolver, error) {
				if tc.resolveErr != nil {
					return nil, tc.resolveErr
				}
				return keys, nil
			}
			dir := t.TempDir()
			conf := filepath.Join(dir, "object-server.conf")
			cfg := fmt.Sprintf("[DEFAULT]\ndevices = %s\nmount_check = false\n\n[app:object-server]\n\n[arca]\nkey_service_noauth = true\nkey_service_url = http://127.0.0.1:9\n", m.Devices)
			if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			stdout, err := os.Create(filepath.Join(dir, "stdout"))
			if err != nil {
				t.Fatal(err)
			}
			defer stdout.Close()
			stderr, err := os.Create(filepath.Join(dir, "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			args := append(append([]string{}, tc.args...), "--config-file", conf, "--checksum-delay", "1ms")
			code := Main(args, stdout, stderr)
			o, _ := os.ReadFile(stdout.Name())
			e, _ := os.ReadFile(stderr.Name())
			out := string(o) + string(e)
			if code != tc.want {
				t.Fatalf("exit status %d, want %d; output:\n%s", code, tc.want, out)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.want == 1 && tc.destroy {
				// the failure stops nothing else: the other objects are moved
				st := run(t, m, keys, func(o *Options) { o.Project, o.AllProjects, o.DryRun = "", true, true })
				if st.Keys[KeyRef{"p1", first}] != 1 || st.Keys[KeyRef{"p1", second}] != 0 {
					t.Errorf("after the run: %+v", st)
				}
			}
		})
	}
}
