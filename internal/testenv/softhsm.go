package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMLibrary is where Debian's softhsm2 puts its PKCS#11 module.
const SoftHSMLibrary = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM is a SoftHSM2 token of the test's own, in a temporary folder.
type SoftHSM struct {
	Library, TokenLabel, PIN, SOPIN string
	// Conf is the SOFTHSM2_CONF file; TokenDir holds the token's files.
	Conf, TokenDir string
}

// StartSoftHSM initialises a fresh SoftHSM2 token in a temporary folder and
// points SOFTHSM2_CONF at it (for this process and the servers it starts),
// so a test never touches the machine's tokens. It uses t.Setenv: tests
// that call it cannot be parallel.
func StartSoftHSM(t testing.TB) *SoftHSM {
	t.Helper()
	if _, err := os.Stat(SoftHSMLibrary); err != nil {
		StackMissing(t, "SoftHSM2 is not installed (Debian package softhsm2)")
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		StackMissing(t, "softhsm2-util is not installed (Debian package softhsm2)")
	}
	dir := t.TempDir()
	h := &SoftHSM{Library: SoftHSMLibrary, TokenLabel: "arca-test", PIN: "1234", SOPIN: "5678",
		Conf: filepath.Join(dir, "softhsm2.conf"), TokenDir: filepath.Join(dir, "tokens")}
	if err := os.Mkdir(h.TokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", h.TokenDir)
	if err := os.WriteFile(h.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", h.Conf)
	cmd := exec.Command(util, "--init-token", "--free", "--label", h.TokenLabel, "--pin", h.PIN, "--so-pin", h.SOPIN)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return h
}

// ConfigSection is the arca.conf text selecting this token: the rest of a
// [crypto] section (master_key_backend) and a [pkcs11] section.
func (h *SoftHSM) ConfigSection() string {
	return fmt.Sprintf("master_key_backend = pkcs11\n\n[pkcs11]\nlibrary_path = %s\ntoken_label = %s\npin = %s\n", h.Library, h.TokenLabel, h.PIN)
}

// Unplug moves the token's files away, as if the HSM were gone, until the
// returned function puts them back.
func (h *SoftHSM) Unplug(t testing.TB) (replug func()) {
	t.Helper()
	away := h.TokenDir + ".away"
	if err := os.Rename(h.TokenDir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(h.TokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(h.TokenDir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(away, h.TokenDir); err != nil {
			t.Fatal(err)
		}
	}
}
