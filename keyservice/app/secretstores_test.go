package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
)

// storesSection is the configuration of the two secret stores (the key
// file StartAPI makes, the token of h), after a first master key was
// generated in the token as an operator does; it returns the token key's id.
func storesSection(t *testing.T, h *testenv.SoftHSM, globalDefault string) (section, tokenKeyID string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "token.conf")
	text := "[database]\nconnection = sqlite:///" + filepath.Join(dir, "unused.sqlite") + "\n\n[crypto]\n" + h.ConfigSection()
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.Manage(t, conf, "kek", "rotate")
	if err != nil {
		t.Fatalf("arca-manage kek rotate in the token: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`master key (\S+) generated in PKCS#11 token`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kek rotate said %q", out)
	}
	section = strings.Replace(h.ConfigSection(), "master_key_backend = pkcs11\n", "master_key_backend = "+globalDefault+"\n", 1) +
		"\n[secretstore]\nenable_multiple_secret_stores = true\n"
	return section, m[1]
}

// storesCall makes one request and decodes a JSON answer into a map.
func storesCall(t *testing.T, method, url string, header map[string]string) (int, map[string]any) {
	t.Helper()
	code, body := testenv.Do(t, method, url, "", header)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, url, code, body)
		}
	}
	return code, m
}

// TestSecretStoresFileAndToken: with enable_multiple_secret_stores the key
// file and the PKCS#11 token are two stores; a project's preferred store
// decides where its new secrets go (the global default otherwise), each
// store's KEK of the project is sealed by that store's own master key, and
// a secret stays readable in the store that holds it after the preference
// changes. Shapes and statuses are Barbican's.
func TestSecretStoresFileAndToken(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	section, tokenKey := storesSection(t, h, "file")
	srv := testenv.StartAPI(t, testenv.APIOptions{Extra: section})
	admin := func(project string) map[string]string {
		return map[string]string{"X-Project-Id": project, "X-Roles": "admin,member,reader"}
	}

	code, list := storesCall(t, "GET", srv.URL+"/v1/secret-stores", admin("pa"))
	stores, _ := list["secret_stores"].([]any)
	if code != http.StatusOK || len(stores) != 2 {
		t.Fatalf("GET /v1/secret-stores: %d %v", code, list)
	}
	refs := map[string]string{}
	for _, s := range stores {
		st := s.(map[string]any)
		name, _ := st["name"].(string)
		refs[name], _ = st["secret_store_ref"].(string)
		wantCrypto := map[string]string{"file": "simple_crypto", "pkcs11": "p11_crypto"}[name]
		if st["crypto_plugin"] != wantCrypto || st["secret_store_plugin"] != "store_crypto" || st["status"] != "ACTIVE" ||
			st["global_default"] != (name == "file") || !strings.HasPrefix(refs[name], srv.URL+"/v1/secret-stores/") {
			t.Errorf("store %q: %v", name, st)
		}
	}
	if code, def := storesCall(t, "GET", srv.URL+"/v1/secret-stores/global-default", admin("pa")); code != 200 || def["name"] != "file" {
		t.Fatalf("global default: %d %v", code, def)
	}
	if code, one := storesCall(t, "GET", refs["pkcs11"], admin("pa")); code != 200 || one["name"] != "pkcs11" || one["secret_store_ref"] != refs["pkcs11"] {
		t.Fatalf("GET %s: %d %v", refs["pkcs11"], code, one)
	}
	code, none := storesCall(t, "GET", srv.URL+"/v1/secret-stores/preferred", admin("pa"))
	if code != http.StatusNotFound || !strings.Contains(none["description"].(string), "No preferred secret store") {
		t.Fatalf("preferred before any: %d %v", code, none)
	}
	for _, path := range []string{"/v1/secret-stores/5a0b2a4e-0000-4000-8000-000000000000", "/v1/secret-stores/x/preferred"} {
		method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(path, "preferred")]
		if code, _ := storesCall(t, method, srv.URL+path, admin("pa")); code != http.StatusNotFound {
			t.Errorf("%s %s (no such store): %d, want 404", method, path, code)
		}
	}

	_, inFile := storeSecret(t, srv.URL, "pa", "in-the-file-store")
	// The project prefers the token; a member and a reader may not say so.
	for _, roles := range []string{"member,reader", "reader"} {
		hdr := map[string]string{"X-Project-Id": "pa", "X-Roles": roles}
		if code, _ := storesCall(t, "POST", refs["pkcs11"]+"/preferred", hdr); code != http.StatusForbidden {
			t.Fatalf("POST preferred as %s: %d, want 403", roles, code)
		}
	}
	if code, _ := storesCall(t, "POST", refs["pkcs11"]+"/preferred", admin("pa")); code != http.StatusNoContent {
		t.Fatalf("POST preferred as admin: %d", code)
	}
	if code, pref := storesCall(t, "GET", srv.URL+"/v1/secret-stores/preferred", admin("pa")); code != 200 || pref["name"] != "pkcs11" {
		t.Fatalf("preferred: %d %v", code, pref)
	}
	_, inToken := storeSecret(t, srv.URL, "pa", "in-the-token-store")
	_, otherProject := storeSecret(t, srv.URL, "pb", "pb-prefers-nothing")
	// The preference goes; secrets stay where they are held.
	if code, _ := storesCall(t, "DELETE", refs["file"]+"/preferred", admin("pa")); code != http.StatusNoContent {
		t.Fatalf("DELETE preferred: %d", code)
	}
	if code, _ := storesCall(t, "DELETE", refs["file"]+"/preferred", admin("pa")); code != http.StatusNotFound {
		t.Fatalf("DELETE preferred again: %d, want 404", code)
	}
	for _, c := range []struct{ project, id, want string }{
		{"pa", inFile, "in-the-file-store"}, {"pa", inToken, "in-the-token-store"}, {"pb", otherProject, "pb-prefers-nothing"},
	} {
		if code, got := payload(t, srv.URL, c.project, c.id); code != 200 || got != c.want {
			t.Errorf("payload of %s: %d %q, want %q", c.id, code, got, c.want)
		}
	}

	// What the database records: each secret's store, and each store's KEK
	// of the project sealed by that store's key (the token's id for pkcs11).
	db, _, err := dbconn.Open(context.Background(), "sqlite:///"+filepath.Join(srv.Dir, "arca.sqlite"), dbconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, want := range map[string]string{inFile: "file", inToken: "pkcs11", otherProject: "file"} {
		var got string
		if err := db.QueryRow("SELECT secret_store FROM secrets WHERE id = ?", id).Scan(&got); err != nil || got != want {
			t.Errorf("secret %s recorded in store %q (%v), want %q", id, got, err, want)
		}
	}
	// paKEKs is project pa's master key id per secret store.
	paKEKs := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		rows, err := db.Query("SELECT secret_store, master_key_id FROM project_keks WHERE project_id = 'pa'")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var st, mk string
			if err := rows.Scan(&st, &mk); err != nil {
				t.Fatal(err)
			}
			out[st] = mk
		}
		return out
	}
	keks := paKEKs()
	if len(keks) != 2 || keks["pkcs11"] != tokenKey || keks["file"] == "" || keks["file"] == tokenKey {
		t.Fatalf("pa's KEKs by store: %v; the token's key is %s", keks, tokenKey)
	}

	// A new key in the file, then a rewrap: the file store's KEKs move to
	// it, the token store's stay sealed by the token (never by the file).
	srv.Stop(t)
	out, err := srv.Manage(t, "kek", "rotate", "--master-key-file", srv.KeyFile)
	if err != nil {
		t.Fatalf("kek rotate of the file: %v\n%s", err, out)
	}
	if out, err = srv.Manage(t, "kek", "rewrap"); err != nil || !strings.Contains(out, "2 rewrapped to the active master key of their secret store, 1 already current") {
		t.Fatalf("kek rewrap (pa's and pb's file KEKs to rewrap, pa's token KEK current): %v\n%s", err, out)
	}
	after := paKEKs()
	if after["pkcs11"] != tokenKey || after["file"] == keks["file"] || after["file"] == tokenKey || after["file"] == "" {
		t.Fatalf("after a file rotation and a rewrap (%s), pa's KEKs: %v (before %v)", strings.TrimSpace(out), after, keks)
	}

	// The token gone: the file store's secrets of a project not yet cached
	// still open, a new secret bound for the token cannot be stored.
	srv2 := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: "sqlite:///" + filepath.Join(srv.Dir, "arca.sqlite"), MasterKeyFile: srv.KeyFile, Extra: section})
	replug := h.Unplug(t)
	defer replug()
	if code, got := payload(t, srv2.URL, "pa", inFile); code != 200 || got != "in-the-file-store" {
		t.Errorf("file store's secret with the token gone: %d %q", code, got)
	}
	if code, _ := payload(t, srv2.URL, "pa", inToken); code != http.StatusServiceUnavailable {
		t.Errorf("token store's secret with the token gone: %d, want 503", code)
	}
}

// TestSecretStoresOff: with one store, /v1/secret-stores answers as
// Barbican does when multiple stores are disabled.
func TestSecretStoresOff(t *testing.T) {
	srv := testenv.StartAPI(t, testenv.APIOptions{})
	hdr := map[string]string{"X-Project-Id": "p", "X-Roles": "admin,member,reader"}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/secret-stores"}, {"GET", "/v1/secret-stores/global-default"}, {"GET", "/v1/secret-stores/preferred"},
		{"GET", "/v1/secret-stores/5a0b2a4e-0000-4000-8000-000000000000"},
		{"POST", "/v1/secret-stores/5a0b2a4e-0000-4000-8000-000000000000/preferred"},
		{"DELETE", "/v1/secret-stores/5a0b2a4e-0000-4000-8000-000000000000/preferred"},
	} {
		code, body := storesCall(t, r.method, srv.URL+r.path, hdr)
		desc, _ := body["description"].(string)
		if code != http.StatusNotFound || !strings.Contains(desc, "Multiple backends support is not enabled") {
			t.Errorf("%s %s: %d %v", r.method, r.path, code, body)
		}
	}
}

// TestSecretStoresKeystoneAttackers: real Keystone tokens against the
// secret stores. Only a project's admin sets or removes its preferred
// store, and only its own project's (the project is the token's, never a
// parameter); a member, a reader, a domain-scoped token and an anonymous
// caller change nothing.
func TestSecretStoresKeystoneAttackers(t *testing.T) {
	env := testenv.LoadKeystone(t)
	h := testenv.StartSoftHSM(t)
	section, _ := storesSection(t, h, "file")
	srv := keystoneServer(t, env, section)
	adminA, _ := env.NewProjectUser(t, "admin")
	adminB, _ := env.NewProjectUser(t, "admin")
	member, _ := env.NewProjectUser(t, "member")
	reader, _ := env.NewProjectUser(t, "reader")
	domain := env.NewDomainUser(t, "admin").Token(t, env)
	as := func(token string) map[string]string {
		if token == "" {
			return nil
		}
		return map[string]string{"X-Auth-Token": token}
	}
	code, list := storesCall(t, "GET", srv.URL+"/v1/secret-stores", as(reader))
	stores, _ := list["secret_stores"].([]any)
	if code != http.StatusOK || len(stores) != 2 {
		t.Fatalf("reader lists stores: %d %v", code, list)
	}
	refs := map[string]string{}
	for _, s := range stores {
		st := s.(map[string]any)
		refs[st["name"].(string)] = st["secret_store_ref"].(string)
	}
	if code, _ := storesCall(t, "POST", refs["pkcs11"]+"/preferred", as(adminA)); code != http.StatusNoContent {
		t.Fatalf("admin of A prefers pkcs11: %d", code)
	}
	preferredOfA := func() string {
		t.Helper()
		code, pref := storesCall(t, "GET", srv.URL+"/v1/secret-stores/preferred", as(adminA))
		if code != http.StatusOK {
			t.Fatalf("A's preferred store: %d %v", code, pref)
		}
		return pref["name"].(string)
	}

	cases := []struct {
		name, token, method, path string
		want                      int
	}{
		{"member sets a preference", member, "POST", refs["file"] + "/preferred", 403},
		{"member removes a preference", member, "DELETE", refs["pkcs11"] + "/preferred", 403},
		{"reader sets a preference", reader, "POST", refs["file"] + "/preferred", 403},
		{"reader removes a preference", reader, "DELETE", refs["pkcs11"] + "/preferred", 403},
		{"reader reads its (absent) preference", reader, "GET", srv.URL + "/v1/secret-stores/preferred", 404},
		{"domain token sets a preference", domain, "POST", refs["file"] + "/preferred", 403},
		{"domain token removes a preference", domain, "DELETE", refs["pkcs11"] + "/preferred", 403},
		{"domain token reads a preference", domain, "GET", srv.URL + "/v1/secret-stores/preferred", 403},
		{"domain token lists stores", domain, "GET", srv.URL + "/v1/secret-stores", 403},
		{"anonymous lists stores", "", "GET", srv.URL + "/v1/secret-stores", 401},
		{"anonymous reads the default", "", "GET", srv.URL + "/v1/secret-stores/global-default", 401},
		{"anonymous reads a store", "", "GET", refs["file"], 401},
		{"anonymous sets a preference", "", "POST", refs["file"] + "/preferred", 401},
		{"anonymous removes a preference", "", "DELETE", refs["pkcs11"] + "/preferred", 401},
		// Another project's admin changes its own project's preference only.
		{"admin of B sets B's", adminB, "POST", refs["file"] + "/preferred", 204},
		{"admin of B removes B's", adminB, "DELETE", refs["file"] + "/preferred", 204},
		{"admin of B removes again (B has none; A's stays)", adminB, "DELETE", refs["pkcs11"] + "/preferred", 404},
	}
	for _, c := range cases {
		code, body := storesCall(t, c.method, c.path, as(c.token))
		if code != c.want {
			t.Errorf("%s: %d, want %d: %v", c.name, code, c.want, body)
		}
		if got := preferredOfA(); got != "pkcs11" {
			t.Fatalf("after %q, A prefers %q", c.name, got)
		}
	}
}
