package api

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/objcrypt"
)

// The listing-key route answers the key derived for listing ETags, never
// the project key, to the filter and to P's own users; everyone else is
// refused (404 where the key's existence is not theirs to learn), and every
// read and refusal is audited.
func TestListingKeyRoute(t *testing.T) {
	callers := testAuthn{}
	for _, c := range matrixCallers {
		callers[c.name] = c.caller
	}
	e := newAuthzEnv(t, callers, nil)
	f := e.seed()
	ctx := context.Background()
	k, err := e.svc.LoadProjectKeyByID(ctx, f.oldKey)
	if err != nil {
		t.Fatal(err)
	}
	material, err := e.svc.ProjectKeyMaterial(ctx, owner, k)
	if err != nil {
		t.Fatal(err)
	}
	want, err := objcrypt.DeriveListingKey(objcrypt.ProjectKey{ID: k.ID, Key: material})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/project-keys/" + f.oldKey + "/listing-key?project_id=" + projP

	w := e.do("filter", http.MethodGet, path, "")
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), want) || bytes.Equal(w.Body.Bytes(), material) {
		t.Fatalf("filter: %d %x, want the listing key %x", w.Code, w.Body.Bytes(), want)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	// P's reader, without ?project_id=: its own project.
	if w := e.do("reader", http.MethodGet, "/v1/project-keys/"+f.oldKey+"/listing-key", ""); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("reader of P: %d", w.Code)
	}

	// The attackers: another project (naming P, or its own), a
	// domain-scoped token, a plain service token, the object servers (key
	// material is theirs, listing keys are not), anonymous.
	for _, tc := range []struct {
		who, path string
		want      int
	}{
		{"other-admin", path, http.StatusNotFound},
		{"other-admin", "/v1/project-keys/" + f.oldKey + "/listing-key", http.StatusNotFound},
		{"domain", path, http.StatusForbidden},
		{"service", path, http.StatusNotFound},
		{"object-server", path, http.StatusNotFound},
		{"anonymous", path, http.StatusUnauthorized},
	} {
		w := e.do(tc.who, http.MethodGet, tc.path, "")
		if w.Code != tc.want || bytes.Contains(w.Body.Bytes(), want) || bytes.Contains(w.Body.Bytes(), material) {
			t.Errorf("%s %s: %d %.100q, want %d and no key", tc.who, tc.path, w.Code, w.Body.Bytes(), tc.want)
		}
	}

	// A destroyed key has no listing key: 410.
	if w := e.do("owner", http.MethodDelete, "/v1/project-keys/"+f.oldKey, ""); w.Code != http.StatusNoContent {
		t.Fatalf("destroy: %d %s", w.Code, w.Body)
	}
	if w := e.do("filter", http.MethodGet, path, ""); w.Code != http.StatusGone {
		t.Fatalf("destroyed key: %d %s", w.Code, w.Body)
	}

	recs, err := e.svc.ProjectKeyAudit(ctx, keyservice.KeyAuditFilter{ProjectID: projP, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range recs {
		if r.Action == keyservice.AuditListingKey && r.KeyID == f.oldKey {
			got[r.UserID+" "+r.Outcome]++
		}
	}
	for _, w := range []string{
		"u-arca-filter " + keyservice.OutcomeSuccess, "u-reader " + keyservice.OutcomeSuccess,
		"u-other " + keyservice.OutcomeNotFound, "u-domain " + keyservice.OutcomeDenied,
		"u-nova " + keyservice.OutcomeNotFound, "u-arca-object " + keyservice.OutcomeNotFound,
		"u-arca-filter " + keyservice.OutcomeGone,
	} {
		if got[w] == 0 {
			t.Errorf("no audit record %q (have %v)", w, got)
		}
	}
}
