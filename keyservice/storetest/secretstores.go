package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice"
)

// Secret stores: one KEK per project and store, secrets record their store,
// and a project's preferred store.
var secretStoreTests = []struct {
	name string
	f    func(t *testing.T, s keyservice.Store)
}{
	{"KEKsPerStore", testKEKsPerStore},
	{"SecretStoreRecorded", testSecretStoreRecorded},
	{"PreferredSecretStore", testPreferredSecretStore},
	{"PreferredSecretStoreRace", testPreferredSecretStoreRace},
}

func testKEKsPerStore(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	for _, st := range []string{"", "file", "pkcs11"} {
		must(t, s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: "p", SecretStore: st, MasterKeyID: "m-" + st, WrappedKEK: []byte("w-" + st), Created: base}))
	}
	wantErr(t, s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: "p", SecretStore: "pkcs11", MasterKeyID: "x", WrappedKEK: []byte("x"), Created: base}),
		keyservice.ErrConflict, "a second KEK of a project in one store")
	_, err := s.GetProjectKEK(c, "p", "other")
	wantErr(t, err, keyservice.ErrNotFound, "GetProjectKEK in a store the project has no KEK in")
	for _, st := range []string{"", "file", "pkcs11"} {
		got, err := s.GetProjectKEK(c, "p", st)
		must(t, err)
		if got.SecretStore != st || got.MasterKeyID != "m-"+st || string(got.WrappedKEK) != "w-"+st {
			t.Errorf("GetProjectKEK(p, %q) = %+v", st, got)
		}
	}

	// The compare-and-swap is per store: replacing pkcs11's KEK leaves the
	// others alone, and one sealed by another store's key is a conflict.
	next := keyservice.ProjectKEK{ProjectID: "p", SecretStore: "pkcs11", MasterKeyID: "m2", WrappedKEK: []byte("rewrapped"), Updated: base.Add(time.Hour)}
	wantErr(t, s.ReplaceProjectKEK(c, next, "m-file"), keyservice.ErrConflict, "ReplaceProjectKEK with another store's master key id")
	must(t, s.ReplaceProjectKEK(c, next, "m-pkcs11"))
	for st, want := range map[string]string{"": "m-", "file": "m-file", "pkcs11": "m2"} {
		got, err := s.GetProjectKEK(c, "p", st)
		must(t, err)
		if got.MasterKeyID != want {
			t.Errorf("after replacing pkcs11's KEK, store %q is sealed by %q, want %q", st, got.MasterKeyID, want)
		}
	}
	next.SecretStore = "other"
	wantErr(t, s.ReplaceProjectKEK(c, next, "m2"), keyservice.ErrNotFound, "ReplaceProjectKEK in a store without the project's KEK")

	// Listing is per store.
	must(t, s.CreateProjectKEK(c, keyservice.ProjectKEK{ProjectID: "q", SecretStore: "file", MasterKeyID: "m", WrappedKEK: []byte("q"), Created: base}))
	for st, want := range map[string][]string{"": {"p"}, "file": {"p", "q"}, "pkcs11": {"p"}, "none": nil} {
		page, err := s.ListProjectKEKs(c, st, "", 10)
		must(t, err)
		var got []string
		for _, k := range page {
			if k.SecretStore != st {
				t.Errorf("ListProjectKEKs(%q) returned a KEK of store %q", st, k.SecretStore)
			}
			got = append(got, k.ProjectID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListProjectKEKs(%q) = %v, want %v", st, got, want)
		}
	}
}

func testSecretStoreRecorded(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	for _, st := range []string{"", "pkcs11"} {
		sec := newSecret("p")
		sec.SecretStore = st
		sec.Payload = []byte("sealed")
		must(t, s.CreateSecret(c, sec))
		got, err := s.GetSecret(c, sec.ID)
		must(t, err)
		if got.SecretStore != st {
			t.Errorf("GetSecret: store %q, want %q", got.SecretStore, st)
		}
		page, _, err := s.ListSecrets(c, keyservice.SecretFilter{ProjectID: "p", Limit: 10, Now: base})
		must(t, err)
		found := false
		for _, g := range page {
			if g.ID == sec.ID {
				found = true
				if g.SecretStore != st {
					t.Errorf("ListSecrets: store %q, want %q", g.SecretStore, st)
				}
			}
		}
		if !found {
			t.Errorf("ListSecrets lacks %s", sec.ID)
		}
	}
}

func testPreferredSecretStore(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	_, err := s.GetPreferredSecretStore(c, "p")
	wantErr(t, err, keyservice.ErrNotFound, "GetPreferredSecretStore of a project with none")
	wantErr(t, s.DeletePreferredSecretStore(c, "p"), keyservice.ErrNotFound, "DeletePreferredSecretStore of a project with none")
	must(t, s.SetPreferredSecretStore(c, "p", "pkcs11", base))
	must(t, s.SetPreferredSecretStore(c, "q", "file", base))
	for p, want := range map[string]string{"p": "pkcs11", "q": "file"} {
		got, err := s.GetPreferredSecretStore(c, p)
		must(t, err)
		if got != want {
			t.Errorf("preferred store of %s: %q, want %q", p, got, want)
		}
	}
	must(t, s.SetPreferredSecretStore(c, "p", "file", base.Add(time.Second)))
	// Setting the same store again is not an error (no row changed).
	must(t, s.SetPreferredSecretStore(c, "p", "file", base.Add(time.Second)))
	if got, err := s.GetPreferredSecretStore(c, "p"); err != nil || got != "file" {
		t.Errorf("after replacing: %q, %v", got, err)
	}
	must(t, s.DeletePreferredSecretStore(c, "p"))
	_, err = s.GetPreferredSecretStore(c, "p")
	wantErr(t, err, keyservice.ErrNotFound, "GetPreferredSecretStore after delete")
	if got, err := s.GetPreferredSecretStore(c, "q"); err != nil || got != "file" {
		t.Errorf("another project's preference after a delete: %q, %v", got, err)
	}
}

// testPreferredSecretStoreRace: concurrent first settings all succeed and
// one of them is what is stored.
func testPreferredSecretStoreRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	errs := race(func(i int) error {
		return s.SetPreferredSecretStore(c, "raced", fmt.Sprintf("s%d", i), base)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	got, err := s.GetPreferredSecretStore(c, "raced")
	must(t, err)
	var names []string
	for i := range racers {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	if !slices.Contains(names, got) {
		t.Errorf("stored %q, not a racer's", got)
	}
}
