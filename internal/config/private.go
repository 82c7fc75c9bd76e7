package config

import (
	"fmt"
	"os"
	"strings"
)

// CheckPrivate returns an error when the file at path is not a regular file
// or when its group or others have any access to it (mode & 0o077): a file
// holding a credential that every local account can read is a credential
// given to all of them. The error names the file, its mode and the fix.
func CheckPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("checking the mode of %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: group and others must have no access to it; "+
			"run \"chmod 600 %s\" (the file owned by the user the service runs as)", path, perm, path)
	}
	return nil
}

// Option names one option of one section.
type Option struct{ Section, Key string }

// CheckCredentialFiles refuses any of paths (the --config-file list) that
// sets one of secrets to a non-empty value while CheckPrivate fails for it.
// Each file is read on its own, so that credentials kept in a private file of
// their own (a later --config-file) leave the shared file free to be
// readable.
func CheckCredentialFiles(paths []string, secrets ...Option) error {
	for _, p := range paths {
		f, err := Load(p)
		if err != nil {
			return err
		}
		var holds []string
		for _, o := range secrets {
			if f.String(o.Section, o.Key, "") != "" {
				holds = append(holds, "["+o.Section+"] "+o.Key)
			}
		}
		if holds == nil {
			continue
		}
		if err := CheckPrivate(p); err != nil {
			return fmt.Errorf("configuration file %s holds a credential (%s): %w; "+
				"or move the credential to a file of its own, mode 0600, given with another --config-file",
				p, strings.Join(holds, ", "), err)
		}
	}
	return nil
}
