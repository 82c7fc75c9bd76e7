package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestCredentialFileModeRefusedByBinaries: the real arca-api and
// arca-manage refuse a configuration file that holds a credential (the
// Keystone service user's password or application credential secret, a
// database URL with a password) while group or others can read it, before
// they use it; the error names the file, the options and the fix. A
// readable file without a credential, or one whose credential lives in a
// private file of its own, is accepted.
func TestCredentialFileModeRefusedByBinaries(t *testing.T) {
	bin := testenv.Binaries(t)
	const keystone = "[keystone_authtoken]\nauth_url = http://127.0.0.1:1/v3\nusername = arca\n"
	for _, tc := range []struct {
		name    string
		conf    string // appended to a no-auth SQLite arca.conf
		mode    os.FileMode
		private string // when set, a second --config-file, mode 0600
		refused string // the options the refusal names; "" accepted
	}{
		{name: "password, world readable", conf: keystone + "password = s3cret\n", mode: 0o644,
			refused: "[keystone_authtoken] password"},
		{name: "application credential secret, group readable", conf: "[keystone_authtoken]\napplication_credential_id = ac\napplication_credential_secret = s3cret\n",
			mode: 0o640, refused: "[keystone_authtoken] application_credential_secret"},
		{name: "database password, group writable", conf: "[database]\nconnection = mysql+pymysql://arca:s3cret@127.0.0.1:1/arca\n",
			mode: 0o620, refused: "[database] connection (its password)"},
		{name: "PKCS#11 PIN, world readable", conf: "[pkcs11]\npin = 1234\n", mode: 0o644,
			refused: "[pkcs11] pin"},
		{name: "no credential, world readable", mode: 0o644},
		{name: "password in a private file of its own", mode: 0o644, private: keystone + "password = s3cret\n"},
		{name: "password, owner only", conf: keystone + "password = s3cret\n", mode: 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "arca.conf")
			content := fmt.Sprintf("[DEFAULT]\nauth_strategy = noauth\nbind_port = %d\n[database]\nconnection = sqlite:///%s/arca.sqlite\n[crypto]\nmaster_key_file = %s/master.key\n%s",
				testenv.FreePort(t), dir, dir, tc.conf)
			if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--config-file", conf}
			if tc.private != "" {
				p := filepath.Join(dir, "secret.conf")
				if err := os.WriteFile(p, []byte(tc.private), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config-file", p)
			}
			// The key and schema exist, so that only the mode can stop them.
			for _, cmd := range [][]string{{"kek", "rotate"}, {"db", "upgrade"}} {
				if _, out, err := testenv.RunOutputs(context.Background(), nil, filepath.Join(bin, "arca-manage"), append(args, cmd...)...); err != nil &&
					!strings.Contains(tc.conf, "mysql") {
					t.Fatalf("arca-manage %s: %v %s", cmd, err, out)
				}
			}
			if err := os.Chmod(conf, tc.mode); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, apiErr, err := testenv.RunOutputs(ctx, nil, filepath.Join(bin, "arca-api"), args...)
			_, manageErr, merr := testenv.RunOutputs(context.Background(), nil, filepath.Join(bin, "arca-manage"), append(args, "db", "version")...)
			if tc.refused == "" {
				if ctx.Err() == nil {
					t.Errorf("arca-api exited (%v): %s", err, apiErr)
				}
				if merr != nil || strings.Contains(manageErr, "holds a credential") {
					t.Errorf("arca-manage db version: %v %s", merr, manageErr)
				}
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("arca-api kept running with %s in a file of mode %04o", tc.refused, tc.mode)
			}
			for what, stderr := range map[string]string{"arca-api": apiErr, "arca-manage": manageErr} {
				for _, part := range []string{conf + " holds a credential", tc.refused, fmt.Sprintf("mode %04o", tc.mode), "chmod 600", "a file of its own"} {
					if !strings.Contains(stderr, part) {
						t.Errorf("%s: stderr %q does not say %q", what, stderr, part)
					}
				}
				if strings.Contains(stderr, "s3cret") {
					t.Errorf("%s printed the credential: %s", what, stderr)
				}
			}
			if merr == nil {
				t.Error("arca-manage db version succeeded")
			}
		})
	}
}
