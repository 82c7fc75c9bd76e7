package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o700, true}, {0o200, true},
		{0o640, false}, {0o604, false}, {0o644, false}, {0o660, false}, {0o610, false}, {0o601, false}, {0o620, false},
	} {
		p := filepath.Join(dir, c.mode.String())
		if err := os.WriteFile(p, []byte("[x]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil { // not subject to the umask
			t.Fatal(err)
		}
		err := CheckPrivate(p)
		switch {
		case c.ok && err != nil:
			t.Errorf("mode %04o refused: %v", c.mode, err)
		case !c.ok && err == nil:
			t.Errorf("mode %04o accepted", c.mode)
		case !c.ok && (!strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600 "+p)):
			t.Errorf("mode %04o: the error names neither the file nor the fix: %v", c.mode, err)
		}
	}
	if err := CheckPrivate(dir); err == nil {
		t.Error("a directory accepted")
	}
	if err := CheckPrivate(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file accepted")
	}
}

func TestCheckCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secrets := []Option{{"keystone_authtoken", "password"}, {"key_service", "application_credential_secret"}}
	shared := write("shared.conf", "[DEFAULT]\nbind_port = 8080\n[keystone_authtoken]\nusername = u\npassword =\n", 0o644)
	private := write("private.conf", "[keystone_authtoken]\npassword = s3cret\n", 0o600)
	leaky := write("leaky.conf", "[key_service]\napplication_credential_secret = s3cret\n", 0o640)
	if err := CheckCredentialFiles([]string{shared, private}, secrets...); err != nil {
		t.Errorf("readable file without credentials, private one with: %v", err)
	}
	err := CheckCredentialFiles([]string{shared, private, leaky}, secrets...)
	if err == nil || !strings.Contains(err.Error(), leaky) || !strings.Contains(err.Error(), "[key_service] application_credential_secret") ||
		!strings.Contains(err.Error(), "0640") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("group-readable credential file: %v", err)
	}
	if err := CheckCredentialFiles([]string{filepath.Join(dir, "missing.conf")}, secrets...); err == nil {
		t.Error("a missing file accepted")
	}
}
