package app

import (
	"fmt"
	"strings"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/dbconn"
)

// SecretOptions are the options of arca.conf whose values are credentials:
// arca-api's Keystone service user (it validates every token, and with the
// admin role arca-manage register edits the catalog), and the PKCS#11
// token's PIN (with it, whoever holds the token opens every project KEK).
// [database] connection is one too when it holds a password
// (CheckCredentialFiles): the database holds every sealed secret and key,
// the audit trail and the metadata of every project.
var SecretOptions = []config.Option{
	{Section: "keystone_authtoken", Key: "password"},
	{Section: "keystone_authtoken", Key: "application_credential_secret"},
	{Section: "pkcs11", Key: "pin"},
}

// CheckCredentialFiles refuses any of the --config-file paths that holds a
// credential (SecretOptions, or a [database] connection URL with a
// password) while its group or others have any access to it, as the
// master key file is refused. Each file is judged on its own, so a
// credential kept in a private file of its own (a later --config-file)
// leaves a shared arca.conf free to stay readable. arca-api and
// arca-manage call it before they read anything else.
func CheckCredentialFiles(paths []string) error {
	for _, p := range paths {
		f, err := config.Load(p)
		if err != nil {
			return err
		}
		var holds []string
		for _, o := range SecretOptions {
			if f.String(o.Section, o.Key, "") != "" {
				holds = append(holds, "["+o.Section+"] "+o.Key)
			}
		}
		if dbconn.HasPassword(f.String("database", "connection", "")) {
			holds = append(holds, "[database] connection (its password)")
		}
		if holds == nil {
			continue
		}
		if err := config.CheckPrivate(p); err != nil {
			return fmt.Errorf("configuration file %s holds a credential (%s): %w; "+
				"or move the credential to a file of its own, mode 0600, given with another --config-file",
				p, strings.Join(holds, ", "), err)
		}
	}
	return nil
}
