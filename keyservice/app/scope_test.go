package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// TestTokenScopesRealStack drives arca-api with real Keystone tokens of
// every scope, and the service roles through real tokens.
// Domain-scoped tokens once became project "": two users of different
// domains then shared one set of secrets. Now every project-owned route
// needs a project-scoped token, and a system-scoped admin reaches only
// project quotas and, naming the project, project-key management.
func TestTokenScopesRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	demo, demoProject := env.ScopedToken(t, testenv.UserDemo)
	system := env.SystemToken(t, testenv.UserAdmin)
	admin := env.Token(t, testenv.UserAdmin) // admin of project admin
	arca := env.Token(t, testenv.UserArca)   // service and admin roles in project service
	object := env.Token(t, testenv.UserArcaObject)
	filter := env.Token(t, testenv.UserArcaFilter)
	// Two users of two other domains, each with admin (and so member and
	// reader) on their own domain and no project anywhere.
	dom1, dom2 := env.NewDomainUser(t, "admin"), env.NewDomainUser(t, "admin")
	d1, d2 := dom1.Token(t, env), dom2.Token(t, env)

	// every token here is set
	request := func(method, path, token, body string, headers ...string) (int, string) {
		t.Helper()
		resp, b := tokenRequest(t, srv.URL, method, path, token, body, headers...)
		return resp.StatusCode, string(b)
	}
	lastID := func(body, key string) string {
		var m map[string]string
		_ = json.Unmarshal([]byte(body), &m)
		return m[key][strings.LastIndex(m[key], "/")+1:]
	}

	st, body := request("POST", "/v1/secrets", demo, `{"name":"demo's","payload":"s3cret","payload_content_type":"text/plain"}`)
	if st != http.StatusCreated {
		t.Fatalf("demo stores: %d %s", st, body)
	}
	secret := lastID(body, "secret_ref")
	st, body = request("GET", "/v1/project-keys/active", demo, "")
	if st != http.StatusOK {
		t.Fatalf("demo's active key: %d %s", st, body)
	}
	var key struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal([]byte(body), &key)
	ofDemo := "?project_id=" + demoProject

	const needProject = "requires a project-scoped token"
	cases := []struct {
		name, method, path, token, body string
		want                            int
		description                     string // part of the 403's description
	}{
		// Domain-scoped tokens: nothing project-owned, in any domain.
		{"domain 1 stores", "POST", "/v1/secrets", d1, `{"name":"d1","payload":"x","payload_content_type":"text/plain"}`, 403, needProject},
		{"domain 2 lists secrets", "GET", "/v1/secrets", d2, "", 403, needProject},
		{"domain 1 lists secrets", "GET", "/v1/secrets", d1, "", 403, needProject},
		{"domain 1 creates a container", "POST", "/v1/containers", d1, `{"type":"generic"}`, 403, needProject},
		{"domain 1 orders", "POST", "/v1/orders", d1, `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`, 403, needProject},
		{"domain 1 reads quotas", "GET", "/v1/quotas", d1, "", 403, needProject},
		{"domain 1 reads demo's secret", "GET", "/v1/secrets/" + secret, d1, "", 403, needProject},
		{"domain 1 gets an active key", "GET", "/v1/project-keys/active", d1, "", 403, needProject},
		{"domain 1 lists project quotas", "GET", "/v1/project-quotas", d1, "", 403, "project-scoped or system-scoped token"},
		{"domain 1 rotates demo's key", "POST", "/v1/project-keys/rotate" + ofDemo, d1, "", 403, "system-scoped token with ?project_id="},

		// System-scoped admin: project quotas, and project keys named with ?project_id=.
		{"system lists secrets", "GET", "/v1/secrets", system, "", 403, needProject},
		{"system reads demo's secret", "GET", "/v1/secrets/" + secret, system, "", 403, needProject},
		{"system reads demo's payload", "GET", "/v1/secrets/" + secret + "/payload", system, "", 403, needProject},
		{"system sets demo's quotas", "PUT", "/v1/project-quotas/" + demoProject, system, `{"project_quotas":{"cas":0}}`, 204, ""},
		{"system lists project quotas", "GET", "/v1/project-quotas", system, "", 200, ""},
		{"system deletes demo's quotas", "DELETE", "/v1/project-quotas/" + demoProject, system, "", 204, ""},
		{"system rotates without naming a project", "POST", "/v1/project-keys/rotate", system, "", 403, "must name the project"},
		{"system lists demo's keys", "GET", "/v1/project-keys" + ofDemo, system, "", 200, ""},
		{"system reads demo's key", "GET", "/v1/project-keys/" + key.KeyID + ofDemo, system, "", 200, ""},
		{"system reads demo's key material", "GET", "/v1/project-keys/" + key.KeyID + "/payload" + ofDemo, system, "", 403, needProject},
		{"system gets demo's active key", "GET", "/v1/project-keys/active" + ofDemo, system, "", 403, needProject},
		{"system rotates demo's key", "POST", "/v1/project-keys/rotate" + ofDemo, system, "", 201, ""},

		// Admin of another project: no power over demo's secrets or quotas.
		{"admin reads demo's secret", "GET", "/v1/secrets/" + secret, admin, "", 403, "policy does not allow"},
		{"admin deletes demo's secret", "DELETE", "/v1/secrets/" + secret, admin, "", 403, "policy does not allow"},
		{"admin sets quotas", "PUT", "/v1/project-quotas/" + demoProject, admin, `{"project_quotas":{"cas":0}}`, 403, "policy does not allow"},
		{"admin rotates demo's key", "POST", "/v1/project-keys/rotate" + ofDemo, admin, "", 403, "policy does not allow"},

		// Services: the service and admin roles, with or without
		// X-Service-Token, get nothing of demo's keys; the object servers'
		// role reads material, the filter's only active ids.
		{"arca reads demo's key material", "GET", "/v1/project-keys/" + key.KeyID + "/payload" + ofDemo, arca, "", 404, ""},
		{"demo with arca's X-Service-Token reads key material", "GET", "/v1/project-keys/" + key.KeyID + "/payload", demo, "", 403, "policy does not allow"},
		{"arca gets demo's active key", "GET", "/v1/project-keys/active" + ofDemo, arca, "", 403, "policy does not allow"},
		{"arca destroys demo's key", "DELETE", "/v1/project-keys/" + key.KeyID + ofDemo + "&force=true", arca, "", 404, ""},
		{"arca-filter reads demo's key material", "GET", "/v1/project-keys/" + key.KeyID + "/payload" + ofDemo, filter, "", 404, ""},
		{"arca-filter gets demo's active key", "GET", "/v1/project-keys/active" + ofDemo, filter, "", 200, ""},
		{"arca-object reads demo's key material", "GET", "/v1/project-keys/" + key.KeyID + "/payload" + ofDemo, object, "", 200, ""},
		{"arca-object rotates demo's key", "POST", "/v1/project-keys/rotate" + ofDemo, object, "", 403, "policy does not allow"},
	}
	for _, c := range cases {
		var extra []string
		if strings.Contains(c.name, "X-Service-Token") {
			extra = []string{"X-Service-Token", arca}
		}
		st, body := request(c.method, c.path, c.token, c.body, extra...)
		if st != c.want {
			t.Errorf("%s: %d, want %d: %.300s", c.name, st, c.want, body)
			continue
		}
		if c.description != "" {
			var e map[string]any
			if json.Unmarshal([]byte(body), &e) != nil || e["code"] != float64(c.want) || e["title"] != "Forbidden" ||
				!strings.Contains(e["description"].(string), c.description) {
				t.Errorf("%s: body %s, want Barbican's error format with %q", c.name, body, c.description)
			}
		}
	}

	// demo still owns exactly its secret: nothing landed in a shared empty project.
	st, body = request("GET", "/v1/secrets", demo, "")
	var list struct {
		Total int `json:"total"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || list.Total != 1 {
		t.Fatalf("demo's secrets: %d %s", st, body)
	}
	for _, tok := range []string{demo, system, d1, d2, arca, object, filter} {
		if strings.Contains(srv.Logs(), tok) {
			t.Fatal("a token reached the logs")
		}
	}
}
