package devstack_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// stackUser is DevStack's STACK_USER: stack.sh refuses to run as root; it
// runs as an ordinary user that may use sudo without a password, and so
// do the plugin's phases and the services they start.
type stackUser struct {
	name     string
	uid, gid int
	home     string
}

// newStackUser creates a user with its home at home and a sudoers drop-in
// granting it NOPASSWD sudo, both removed when the test ends (after the
// processes it started, whose cleanups are registered later). It needs root
// and sudo (tools/stack.sh install provides it).
func newStackUser(t *testing.T, home string) *stackUser {
	t.Helper()
	testenv.RequireTools(t, "sudo", "useradd", "userdel")
	if os.Getuid() != 0 {
		testenv.StackMissing(t, "creating DevStack's STACK_USER needs root")
	}
	name := "arcads" + testenv.RandomHex(t, 4)
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/bin/bash", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel %s: %v\n%s", name, err, out)
		}
	})
	// sudo skips drop-ins whose names hold a dot: the user's name has none.
	sudoers := filepath.Join("/etc/sudoers.d", name)
	if err := os.WriteFile(sudoers, []byte(name+" ALL=(ALL:ALL) NOPASSWD: ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(sudoers); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	su := &stackUser{name: name, home: home}
	if su.uid, err = strconv.Atoi(u.Uid); err != nil {
		t.Fatal(err)
	}
	if su.gid, err = strconv.Atoi(u.Gid); err != nil {
		t.Fatal(err)
	}
	// As the user: sudo answers without a password (sudo -n fails if it
	// would ask for one).
	cmd := exec.Command("sudo", "-n", "true")
	su.as(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sudo as %s: %v\n%s", name, err, out)
	}
	return su
}

// as makes cmd run as the user, with its HOME and names.
func (u *stackUser) as(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{uint32(u.gid)},
	}}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "HOME="+u.home, "USER="+u.name, "LOGNAME="+u.name)
}

// own gives the user the trees at paths, as DevStack's sudo install -d -o
// STACK_USER does for its directories; each is created when missing.
func (u *stackUser) own(t *testing.T, paths ...string) {
	t.Helper()
	for _, root := range paths {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, u.uid, u.gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// readableRepo is the checkout the user's phases read the plugin from:
// the test's own when the user can read it, else a copy of its files
// under dir. DevStack clones a plugin into DEST, which STACK_USER owns; a
// checkout under a private directory (mode 0700, as mktemp -d makes one)
// would otherwise fail the first phase with "Permission denied".
func (u *stackUser) readableRepo(t *testing.T, repo, dir string) string {
	t.Helper()
	probe := exec.Command("test", "-r", filepath.Join(repo, "devstack", "testdata", "standins.sh"))
	u.as(probe)
	if probe.Run() == nil {
		return repo
	}
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = repo
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("%s is not readable by %s, and listing its files to copy failed: %v", repo, u.name, err)
	}
	cp := filepath.Join(dir, "arca")
	for _, name := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		from, to := filepath.Join(repo, name), filepath.Join(cp, name)
		fi, err := os.Lstat(from)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(from) //nolint:gosec // G304: a file of the test's own checkout
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()|0o444); err != nil { //nolint:gosec // G306: read by STACK_USER, as a clone in DEST is
			t.Fatal(err)
		}
	}
	t.Logf("%s cannot read the checkout %s: the phases read a copy of it in %s", u.name, repo, cp)
	return cp
}
