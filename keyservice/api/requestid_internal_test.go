package api

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// TestNewRequestID: the request ID is "req-" and a version 4 UUID in its
// canonical form, as "req-"+uuid.NewString() was, and not the same twice.
func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if len(id) != 40 || id[:4] != "req-" {
			t.Fatalf("request ID %q", id)
		}
		u, err := uuid.Parse(id[4:])
		if err != nil || u.String() != id[4:] || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("request ID %q: %v (version %v, variant %v)", id, err, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("request ID %q twice", id)
		}
		seen[id] = true
	}
}

// TestCanonicalHeaderKeys: the header keys spelled in canonical form, to
// spare net/http canonicalizing them per request, are the canonical forms
// of the names they stand for.
func TestCanonicalHeaderKeys(t *testing.T) {
	for key, name := range map[string]string{versionHeaderKey: versionHeader, systemScopeHeaderKey: "OpenStack-System-Scope"} {
		if want := http.CanonicalHeaderKey(name); key != want {
			t.Errorf("key %q for %s: canonical form is %q", key, name, want)
		}
	}
}
