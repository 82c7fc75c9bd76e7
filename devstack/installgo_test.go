package devstack_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// realGo is the Go that runs this test: GOROOT/bin/go and its release.
func realGo(t *testing.T) (bin, version string) {
	t.Helper()
	cmd := exec.Command("go", "env", "GOROOT", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOROOT GOVERSION: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || !strings.HasPrefix(f[1], "go1.") {
		t.Fatalf("go env GOROOT GOVERSION: %q", out)
	}
	return filepath.Join(f[0], "bin", "go"), f[1]
}

// fakeOldGo is Debian 12's golang-go for the install phase: Go 1.19, too
// old for GOTOOLCHAIN. It answers version and env, and "mod download
// golang.org/toolchain@..." as the real one does: the toolchain module in
// $GOMODCACHE, its files without modes (a zip keeps none), directories
// read-only unless -modcacherw; its bin/go runs the real Go. Anything else
// (a build, say) fails: Go 1.19 cannot build this go.mod.
const fakeOldGo = `#!/bin/bash
set -euo pipefail
real=%[1]q
echo "go1.19 $*" >>"$STANDIN_LOG"
case $1 in
version) echo "go version go1.19.8 linux/amd64" ;;
env) shift; GOTOOLCHAIN=local exec "$real" env "$@" ;;
mod)
    [[ $2 == download ]] || exit 2
    shift 2
    rw=0
    while [[ $1 == -* ]]; do
        [[ $1 != -modcacherw ]] || rw=1
        shift
    done
    if [[ $# != 1 || $1 != golang.org/toolchain@v0.0.1-go* || -z ${GOMODCACHE:-} || -e go.mod ]]; then
        echo "go1.19 stand-in: mod download $* in $PWD (GOMODCACHE ${GOMODCACHE:-unset}) not expected" >&2
        exit 1
    fi
    dir=$GOMODCACHE/$1
    mkdir -p "$dir/bin" "$dir/pkg/tool/linux_amd64" "$dir/lib/time"
    printf '#!/bin/sh\necho "toolchain $*" >>"$STANDIN_LOG"\nexec %%s "$@"\n' "$real" >"$dir/bin/go"
    echo fake >"$dir/pkg/tool/linux_amd64/compile"
    echo fake >"$dir/lib/time/update.sh"
    find "$dir" -type f -exec chmod 0444 {} +
    (( rw )) || find "$dir" -type d -exec chmod 0555 {} +
    ;;
*)
    echo "go1.19 stand-in: go $1 is not expected" >&2
    exit 2
    ;;
esac
`

// fakeNewGo is a go >= 1.21 (the real one, logged).
const fakeNewGo = `#!/bin/sh
echo "go-new $*" >>"$STANDIN_LOG"
exec %q "$@"
`

func writeExec(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// pathWithoutGo is $PATH without the directories that hold a go command.
func pathWithoutGo() string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if fi, err := os.Stat(filepath.Join(d, "go")); err == nil && !fi.IsDir() {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// TestDevStackInstallGo runs the install phase with the go commands a
// DevStack host may have: a Go >= 1.21 is used directly (GOTOOLCHAIN does
// the rest); an old one (Debian 12, Ubuntu 22.04) makes the plugin install
// golang-go and, that being old too, bootstrap the Go release it asks for
// with the old go through the module proxy, then build with that. The
// stand-ins download nothing: the old go's "mod download" lays out a
// toolchain module whose go runs this test's Go.
func TestDevStackInstallGo(t *testing.T) {
	goBin, goVersion := realGo(t)
	release := strings.TrimPrefix(goVersion, "go")
	module := fmt.Sprintf("golang.org/toolchain@v0.0.1-%s.%s-%s", goVersion, runtime.GOOS, runtime.GOARCH)
	old := fmt.Sprintf(fakeOldGo, goBin)
	newer := fmt.Sprintf(fakeNewGo, goBin)

	for _, tc := range []struct {
		name     string
		onPath   string // the go on PATH before the phase: "", old or new
		pkg      string // what golang-go installs: "", old or new
		version  string // ARCA_GO_VERSION
		fails    string // the phase fails saying this
		want     []string
		notWant  []string
		builtBy  string // log prefix of the go that builds
		boot     bool   // a toolchain under ARCA_GO_DIR
		runTwice bool
		offline  bool // OFFLINE=True
	}{
		{
			name: "go >= 1.21 on PATH", onPath: "new", builtBy: "go-new build",
			want:    []string{"GOTOOLCHAIN=auto"},
			notWant: []string{"install_package", "go1.19", "toolchain"},
		},
		{
			name: "Debian 12: go 1.19, golang-go 1.19", onPath: "old", pkg: "old", version: release,
			builtBy: "toolchain build", boot: true, runTwice: true,
			want: []string{"install_package golang-go", "go1.19 mod download -modcacherw " + module,
				"GOTOOLCHAIN=" + goVersion + "+auto"},
			notWant: []string{"go1.19 build", "go-new"},
		},
		{
			name: "no go, golang-go >= 1.21", pkg: "new", builtBy: "go-new build",
			want:    []string{"install_package golang-go"},
			notWant: []string{"go1.19", "toolchain"},
		},
		{
			// Nothing downloads: neither a toolchain nor a module.
			name: "OFFLINE=True, go >= 1.21", onPath: "new", builtBy: "go-new build", offline: true,
			want:    []string{"GOTOOLCHAIN=local GOPROXY=off"},
			notWant: []string{"install_package", "go1.19", "toolchain"},
		},
		{
			name: "OFFLINE=True, go 1.19", onPath: "old", pkg: "old", offline: true,
			fails:   "OFFLINE=True and go is Go 1.19",
			notWant: []string{"install_package", "mod download", "build"},
		},
		{
			name: "no go, no golang-go", fails: "no Go compiler (go)",
			notWant: []string{"build"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin, pkgs := filepath.Join(dir, "usr", "bin"), filepath.Join(dir, "packages")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			fakes := map[string]string{"old": old, "new": newer}
			if tc.onPath != "" {
				writeExec(t, filepath.Join(bin, "go"), fakes[tc.onPath])
			}
			if tc.pkg != "" {
				writeExec(t, filepath.Join(pkgs, "golang-go", "go"), fakes[tc.pkg])
			}
			log := filepath.Join(dir, "log")
			p := &plugin{t: t, repo: repoRoot(t), dir: dir}
			for k, v := range map[string]string{
				"PATH": bin + string(os.PathListSeparator) + pathWithoutGo(),
				"DEST": filepath.Join(dir, "opt"), "DATA_DIR": filepath.Join(dir, "data"),
				"ENABLED_SERVICES": "key,mysql", "ARCA_DIR": p.repo, "ARCA_BIN_DIR": filepath.Join(dir, "arca-bin"),
				"ARCA_GO_VERSION": tc.version, "ARCA_GO": "", "ARCA_GOTOOLCHAIN": "", "ARCA_GO_DIR": "",
				"STANDIN_LOG": log, "STANDIN_PACKAGES": pkgs, "STANDIN_PREFIX": bin,
			} {
				p.set(k, v)
			}
			if tc.offline {
				p.set("OFFLINE", "True")
			}
			runs := 1
			if tc.runTwice {
				runs = 2
			}
			var out string
			for i := range runs {
				o, err := p.run("stack", "install")
				out += o
				if tc.fails != "" {
					if err == nil || !strings.Contains(o, tc.fails) {
						t.Fatalf("stack install: %v, want a failure saying %q:\n%s", err, tc.fails, o)
					}
					break
				}
				if err != nil {
					t.Fatalf("stack install (run %d): %v\n%s", i+1, err, o)
				}
			}
			b, _ := os.ReadFile(log)
			calls := string(b) + out
			t.Logf("calls:\n%s", b)
			for _, w := range tc.want {
				if !strings.Contains(calls, w) {
					t.Errorf("lacks %q:\n%s", w, calls)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("has %q:\n%s", w, b)
				}
			}
			if tc.fails != "" {
				return
			}
			if !strings.Contains(string(b), tc.builtBy+" -o "+filepath.Join(dir, "arca-bin")+"/ ./cmd/...") {
				t.Errorf("the build was not run by %q:\n%s", tc.builtBy, b)
			}
			for _, name := range []string{"arca-api", "arca-manage", "arca-swift-filter", "arca-object-server"} {
				if fi, err := os.Stat(filepath.Join(dir, "arca-bin", name)); err != nil || fi.Mode()&0o111 == 0 {
					t.Errorf("stack install did not build %s: %v", name, err)
				}
			}
			root := filepath.Join(dir, "opt", "arca-go", goVersion)
			_, err := os.Stat(filepath.Join(root, "bin", "go"))
			if tc.boot != (err == nil) {
				t.Errorf("bootstrapped toolchain %s: %v, want one: %v", root, err, tc.boot)
			}
			if !tc.boot {
				return
			}
			// Executable as Go's own switch leaves a toolchain; the
			// download directory is gone; the second run reused it.
			for _, f := range []string{"bin/go", "pkg/tool/linux_amd64/compile", "lib/time/update.sh"} {
				if fi, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Error(err)
				} else if fi.Mode()&0o111 == 0 {
					t.Errorf("%s: mode %v, want executable", f, fi.Mode())
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "opt", "arca-go", ".download.*")); len(left) != 0 {
				t.Errorf("download directories left: %v", left)
			}
			if n := strings.Count(string(b), "go1.19 mod download"); n != 1 {
				t.Errorf("%d downloads in %d runs, want 1", n, runs)
			}
			if n := strings.Count(string(b), tc.builtBy+" "); n != runs {
				t.Errorf("%d builds by the toolchain in %d runs", n, runs)
			}
		})
	}
}

// TestDevStackGoVersion: the release the plugin bootstraps, from
// ARCA_GO_VERSION or go.mod, and the build's GOTOOLCHAIN.
func TestDevStackGoVersion(t *testing.T) {
	repo := repoRoot(t)
	for _, tc := range []struct{ gomod, setting, want, toolchain string }{
		{"module x\n\ngo 1.26.0\n", "", "1.26.0", "auto"},
		{"module x\n\ngo 1.26\n", "", "1.26.0", "auto"},
		{"module x\n\ngo 1.26.0\n\ntoolchain go1.26.8\n", "", "1.26.8", "auto"},
		{"module x\n\ngo 1.26.0\n", "1.27rc1", "1.27rc1", "go1.27rc1+auto"},
		{"module x\n\ngo 1.26.0\n", "go1.26.3", "1.26.3", "go1.26.3+auto"},
		{"module x\n", "", "", "auto"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(tc.gomod), 0o644); err != nil {
			t.Fatal(err)
		}
		script := `source "$1"; source "$2/devstack/settings"; source "$2/devstack/plugin.sh"; ARCA_DIR=$3; _arca_go_version || echo failed; echo "GOTOOLCHAIN=$ARCA_GOTOOLCHAIN"`
		cmd := exec.Command("bash", "-c", script, "v", filepath.Join(repo, "devstack", "testdata", "standins.sh"), repo, dir)
		cmd.Env = append(os.Environ(), "ARCA_GO_VERSION="+tc.setting, "ARCA_DIR="+repo, "ARCA_GOTOOLCHAIN=")
		out, err := cmd.CombinedOutput()
		got := strings.TrimSpace(string(out))
		if tc.want == "" {
			tc.want = "failed"
		}
		tc.want += "\nGOTOOLCHAIN=" + tc.toolchain
		if err != nil || got != tc.want {
			t.Errorf("go.mod %q, ARCA_GO_VERSION %q: %q %v, want %q", tc.gomod, tc.setting, got, err, tc.want)
		}
	}
}

// TestDevStackPrebuiltBinaries: with ARCA_BUILD=False install takes
// ARCA_BIN_DIR's binaries without looking for a Go (none is on PATH, and
// install_package would fail), needs those of the enabled services only,
// and stops naming a missing one; clean leaves them.
func TestDevStackPrebuiltBinaries(t *testing.T) {
	for _, tc := range []struct {
		name, services string
		have           []string
		fails          string
	}{
		{name: "key-manager only", services: "key,mysql", have: []string{"arca-api", "arca-manage"}},
		{name: "all", services: "key,mysql,s-proxy,s-object", have: []string{"arca-api", "arca-manage", "arca-swift-filter", "arca-object-server"}},
		{name: "object server missing", services: "key,mysql,s-proxy,s-object", have: []string{"arca-api", "arca-manage", "arca-swift-filter"}, fails: "arca-object-server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "usr", "bin")
			for _, b := range tc.have {
				writeExec(t, filepath.Join(bin, b), "#!/bin/sh\nexit 0\n")
			}
			p := &plugin{t: t, repo: repoRoot(t), dir: dir}
			for k, v := range map[string]string{
				"DEST": filepath.Join(dir, "opt"), "ARCA_DIR": p.repo, "ARCA_BIN_DIR": bin, "ARCA_BUILD": "False",
				"ARCA_GO": "go", "PATH": pathWithoutGo(), "ENABLED_SERVICES": tc.services,
				"DATABASE_TYPE": "mysql", "SWIFT_USE_MOD_WSGI": "False", "ARCA_CONF_DIR": filepath.Join(dir, "etc", "arca"),
			} {
				p.set(k, v)
			}
			out, err := p.run("stack", "install")
			if tc.fails != "" {
				want := "no executable " + filepath.Join(bin, tc.fails)
				if err == nil || !strings.Contains(out, want) {
					t.Fatalf("stack install: %v, want a failure saying %q:\n%s", err, want, out)
				}
				return
			}
			if err != nil || !strings.Contains(out, "Using Arca's binaries in "+bin) || strings.Contains(out, "golang-go") {
				t.Fatalf("stack install with ARCA_BUILD=False: %v\n%s", err, out)
			}
			if out, err := p.run("clean"); err != nil {
				t.Fatalf("clean: %v\n%s", err, out)
			}
			for _, b := range tc.have {
				if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
					t.Errorf("clean removed %s, which the plugin did not build: %v", b, err)
				}
			}
		})
	}
}
