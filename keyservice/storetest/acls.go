package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice"
)

// aclTests are the conformance cases of ACLs; Run appends them.
var aclTests = []struct {
	name string
	f    func(t *testing.T, s keyservice.Store)
}{
	{"ACLRoundTrip", testACLRoundTrip},
	{"ACLCascades", testACLCascades},
	{"ACLReplaceRace", testACLReplaceRace},
	{"SecretNoACLs", testSecretNoACLs},
}

// testSecretNoACLs: GetSecret may report that a secret has no ACLs (the
// authorization then skips the ACL query), and must never do so for a
// secret that has some.
func testSecretNoACLs(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	other := newSecret("p")
	must(t, s.CreateSecret(c, other))
	must(t, s.ReplaceACLs(c, keyservice.ACLSecret, other.ID, []keyservice.ACL{{Operation: keyservice.ACLRead, Users: []string{"u"}}}))
	if got, err := s.GetSecret(c, other.ID); err != nil || got.NoACLs {
		t.Fatalf("secret with an ACL: NoACLs %v, err %v", got != nil && got.NoACLs, err)
	}
	must(t, s.ReplaceACLs(c, keyservice.ACLSecret, sec.ID, []keyservice.ACL{{Operation: keyservice.ACLRead, ProjectAccess: false}}))
	if got, err := s.GetSecret(c, sec.ID); err != nil || got.NoACLs {
		t.Fatalf("secret with a users-less ACL: NoACLs %v, err %v", got != nil && got.NoACLs, err)
	}
	must(t, s.ReplaceACLs(c, keyservice.ACLSecret, sec.ID, nil))
	got, err := s.GetSecret(c, sec.ID)
	must(t, err)
	if !got.NoACLs {
		t.Logf("store does not report NoACLs (allowed: the ACLs are then queried)")
	}
}

func testACLRoundTrip(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	ct := newContainer("p")
	must(t, s.CreateContainer(c, ct))
	for _, tc := range []struct{ kind, id string }{{keyservice.ACLSecret, sec.ID}, {keyservice.ACLContainer, ct.ID}} {
		got, err := s.GetACLs(c, tc.kind, tc.id)
		must(t, err)
		if got == nil || len(got) != 0 {
			t.Fatalf("%s: ACLs before any %v", tc.kind, got)
		}
		acl := keyservice.ACL{Operation: keyservice.ACLRead, ProjectAccess: false, Users: []string{"u2", "u1", "u2"}, Created: base, Updated: base.Add(time.Second)}
		must(t, s.ReplaceACLs(c, tc.kind, tc.id, []keyservice.ACL{acl}))
		got, err = s.GetACLs(c, tc.kind, tc.id)
		must(t, err)
		if len(got) != 1 || got[0].Operation != "read" || got[0].ProjectAccess || fmt.Sprint(got[0].Users) != "[u1 u2]" {
			t.Fatalf("%s: ACLs %+v", tc.kind, got)
		}
		sameTime(t, tc.kind+" ACL created", got[0].Created, base)
		sameTime(t, tc.kind+" ACL updated", got[0].Updated, base.Add(time.Second))
		// Replace: the users list is replaced, not merged.
		acl.ProjectAccess, acl.Users = true, []string{}
		must(t, s.ReplaceACLs(c, tc.kind, tc.id, []keyservice.ACL{acl}))
		got, err = s.GetACLs(c, tc.kind, tc.id)
		must(t, err)
		if len(got) != 1 || !got[0].ProjectAccess || len(got[0].Users) != 0 || got[0].Users == nil {
			t.Fatalf("%s: replaced ACLs %+v", tc.kind, got)
		}
		must(t, s.ReplaceACLs(c, tc.kind, tc.id, nil))
		got, err = s.GetACLs(c, tc.kind, tc.id)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("%s: ACLs after delete %+v", tc.kind, got)
		}
		wantErr(t, s.ReplaceACLs(c, tc.kind, uuid.NewString(), []keyservice.ACL{acl}), keyservice.ErrNotFound, tc.kind+" ACL of a missing resource")
	}
	// A secret's ACLs are not its namesake container's.
	must(t, s.ReplaceACLs(c, keyservice.ACLSecret, sec.ID, []keyservice.ACL{{Operation: "read", Users: []string{"x"}}}))
	got, err := s.GetACLs(c, keyservice.ACLContainer, ct.ID)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("container sees the secret's ACL: %+v", got)
	}
	_, err = s.GetACLs(c, "order", sec.ID)
	wantErr(t, err, keyservice.ErrInvalid, "ACLs of an unknown kind")
}

func testACLCascades(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	ct := newContainer("p")
	must(t, s.CreateContainer(c, ct))
	acl := []keyservice.ACL{{Operation: "read", ProjectAccess: true, Users: []string{"u"}}}
	must(t, s.ReplaceACLs(c, keyservice.ACLSecret, sec.ID, acl))
	must(t, s.ReplaceACLs(c, keyservice.ACLContainer, ct.ID, acl))
	must(t, s.DeleteSecret(c, sec.ID))
	must(t, s.DeleteContainer(c, ct.ID))
	// Re-created under the same ids, they start without ACLs.
	again := newSecret("p")
	again.ID = sec.ID
	must(t, s.CreateSecret(c, again))
	ctAgain := newContainer("p")
	ctAgain.ID = ct.ID
	must(t, s.CreateContainer(c, ctAgain))
	for kind, id := range map[string]string{keyservice.ACLSecret: sec.ID, keyservice.ACLContainer: ct.ID} {
		got, err := s.GetACLs(c, kind, id)
		must(t, err)
		if len(got) != 0 {
			t.Errorf("%s ACL survived its resource: %+v", kind, got)
		}
	}
}

func testACLReplaceRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	sec := newSecret("p")
	must(t, s.CreateSecret(c, sec))
	errs := race(func(i int) error {
		return s.ReplaceACLs(c, keyservice.ACLSecret, sec.ID, []keyservice.ACL{
			{Operation: "read", ProjectAccess: i%2 == 0, Users: []string{fmt.Sprintf("user-%02d", i), "common"}},
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	got, err := s.GetACLs(c, keyservice.ACLSecret, sec.ID)
	must(t, err)
	// One replacement won entirely: its two users, not a mix.
	if len(got) != 1 || len(got[0].Users) != 2 || got[0].Users[0] != "common" {
		t.Fatalf("after the race: %+v", got)
	}
}
