package policy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseRules feeds arbitrary policy files to the loader. Whatever ParseRules
// accepts, New must build (our syntax check agrees with goslo's parser) and
// Enforce must evaluate without panicking.
func FuzzParseRules(f *testing.F) {
	f.Add(Sample())
	f.Add([]byte(`{"secrets:post": "role:admin or (role:member and project_id:%(target.secret.project_id)s)"}`))
	f.Add([]byte("\"x\": \"role:key-manager:service-admin or 'read':%(target.secret.read)s\"\n"))
	f.Add([]byte("a: not (@ and !) or True:%(enforce_new_defaults)s\n"))
	f.Add([]byte("a: rule:a\n"))
	f.Add([]byte("a: \"'unterminated\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error not wrapping ErrInvalidPolicy: %v", err)
			}
			return
		}
		e, err := New(Options{EnforceNewDefaults: true, Overrides: rules})
		if err != nil {
			// the only thing New checks beyond ParseRules is the whole set for cycles
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "refers to itself") {
				t.Fatalf("ParseRules accepted what New refused: %v\nrules: %q", err, rules)
			}
			return
		}
		c := Credentials{UserID: "u", ProjectID: "p", Roles: []string{"member", "a:b"}}
		for _, name := range e.RuleNames() {
			_, _ = e.Enforce(name, c, SecretTarget(plainSecret, "u"))
		}
	})
}
