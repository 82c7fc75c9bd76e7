package keyservice

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice/envelope"
)

// TestSecretStoreDefs: New refuses store definitions that would make a
// secret's store ambiguous, and store ids are stable across processes.
func TestSecretStoreDefs(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "k", Key: bytes.Repeat([]byte{1}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	keys := func() envelope.MasterKeys { return ring }
	for _, tc := range []struct {
		name    string
		defs    []SecretStoreDef
		wantErr string
	}{
		{"none (one store)", nil, ""},
		{"two", []SecretStoreDef{{Name: "file", GlobalDefault: true, Keys: keys}, {Name: "pkcs11", Keys: keys}}, ""},
		{"no default", []SecretStoreDef{{Name: "file", Keys: keys}, {Name: "pkcs11", Keys: keys}}, "0 global defaults"},
		{"two defaults", []SecretStoreDef{{Name: "file", GlobalDefault: true, Keys: keys}, {Name: "pkcs11", GlobalDefault: true, Keys: keys}}, "2 global defaults"},
		{"same name twice", []SecretStoreDef{{Name: "file", GlobalDefault: true, Keys: keys}, {Name: "file", Keys: keys}}, "configured twice"},
		{"empty name", []SecretStoreDef{{Name: "", GlobalDefault: true, Keys: keys}}, "secret store name"},
		{"name too long", []SecretStoreDef{{Name: strings.Repeat("a", 65), GlobalDefault: true, Keys: keys}}, "secret store name"},
		{"name with a NUL", []SecretStoreDef{{Name: "a\x00b", GlobalDefault: true, Keys: keys}}, "secret store name"},
		{"no keys", []SecretStoreDef{{Name: "file", GlobalDefault: true}}, "no master keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := New(newMemKeys(), ring, Options{SecretStores: tc.defs})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if svc.MultipleSecretStores() != (len(tc.defs) > 0) {
				t.Fatalf("MultipleSecretStores = %v", svc.MultipleSecretStores())
			}
		})
	}

	// Ids: the same name gives the same id in another process (another
	// Service, another clock); different names, different ids.
	a, _ := New(newMemKeys(), ring, Options{SecretStores: []SecretStoreDef{{Name: "file", GlobalDefault: true, Keys: keys}, {Name: "pkcs11", Keys: keys}}})
	b, _ := New(newMemKeys(), ring, Options{Now: func() time.Time { return time.Unix(0, 0) },
		SecretStores: []SecretStoreDef{{Name: "pkcs11", GlobalDefault: true, Keys: keys}, {Name: "file", Keys: keys}}})
	la, _ := a.ListSecretStores()
	lb, _ := b.ListSecretStores()
	if la[0].ID != lb[1].ID || la[1].ID != lb[0].ID || la[0].ID == la[1].ID {
		t.Fatalf("ids: %v / %v", la, lb)
	}
	if _, err := a.GetSecretStore(la[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSecretStore("file"); err == nil {
		t.Fatal("a store found by its name instead of its id")
	}
	// storeKeys: "" is the global default's, an unknown store an error.
	if _, err := a.storeKeys("gone"); err == nil {
		t.Fatal("storeKeys of a store that is not configured")
	}
}
