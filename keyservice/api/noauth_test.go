package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestNoAuthIdentity: no-auth mode trusts X-Project-Id, X-User-Id and
// X-Roles (admin, member and reader without X-Roles) or
// OpenStack-System-Scope, and its callers meet the production policy: a
// reader cannot store, the plain service role reads no other project's
// keys, a system-scoped caller manages quotas but owns no secrets.
func TestNoAuthIdentity(t *testing.T) {
	e := newEnv(t, "sqlite")
	system := []string{"X-Project-Id", "", "OpenStack-System-Scope", "all"}
	cases := []struct {
		name         string
		method, path string
		body         string
		headers      []string
		want         int
		description  string
	}{
		{"no X-Roles: a project admin's roles", "POST", "/v1/secrets", `{"name":"x"}`, nil, 201, ""},
		{"no X-Roles lists", "GET", "/v1/secrets", "", nil, 200, ""},
		{"no X-Roles rotates its own key", "POST", "/v1/project-keys/rotate", "", nil, 201, ""},
		{"roles compare without case", "POST", "/v1/secrets", `{"name":"x"}`, []string{"X-Roles", " Member , READER"}, 201, ""},
		{"reader cannot store", "POST", "/v1/secrets", `{"name":"x"}`, []string{"X-Roles", "reader"}, 403, "Forbidden: policy does not allow this operation."},
		{"reader reads quotas", "GET", "/v1/quotas", "", []string{"X-Roles", "reader"}, 200, ""},
		{"service role: no other project's key", "GET", "/v1/project-keys/active?project_id=alt", "", []string{"X-Roles", "service,admin"}, 403, "Forbidden: policy does not allow this operation."},
		{"object-server role: any project's active key", "GET", "/v1/project-keys/active?project_id=alt", "", []string{"X-Roles", "key-manager:object-server"}, 200, ""},
		{"project admin cannot set quotas", "PUT", "/v1/project-quotas/demo", `{"project_quotas":{"cas":1}}`, nil, 403, "Forbidden: policy does not allow this operation."},
		{"system admin sets quotas", "PUT", "/v1/project-quotas/demo", `{"project_quotas":{"cas":1}}`, system, 204, ""},
		{"system admin lists no secrets", "GET", "/v1/secrets", "", system, 403, "Forbidden: this operation requires a project-scoped token."},
		{"no project", "GET", "/v1/secrets", "", []string{"X-Project-Id", ""}, 401, "No-auth mode: the X-Project-Id header is required."},
		{"project and system", "GET", "/v1/secrets", "", []string{"OpenStack-System-Scope", "all"}, 401, "No-auth mode: send X-Project-Id or OpenStack-System-Scope, not both."},
		{"system scope other than all", "GET", "/v1/project-quotas", "", []string{"X-Project-Id", "", "OpenStack-System-Scope", "domain"}, 401, "No-auth mode: OpenStack-System-Scope must be 'all'."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.body, c.headers...)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			if c.description != "" {
				body := r.json(t)
				if body["code"] != float64(c.want) || body["title"] != titles[c.want] || body["description"] != c.description {
					t.Fatalf("body %s, want description %q", r.body, c.description)
				}
			}
		})
	}
	// The README's first example: list as project demo, no other header.
	req, _ := http.NewRequest("GET", e.url+"/v1/secrets", nil)
	req.Header.Set("X-Project-Id", "demo")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("README example: %d", resp.StatusCode)
	}
}
