package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

var aclTables = []string{"secret_acls", "secret_acl_users", "container_acls", "container_acl_users"}

// as returns the headers of a no-auth caller.
// caller is the no-auth headers of a user of project with roles (member and
// reader when none are given: a plain Keystone member).
func caller(project, user string, roles ...string) []string {
	if len(roles) == 0 {
		roles = []string{"member", "reader"}
	}
	return []string{"X-Project-Id", project, "X-User-Id", user, "X-Roles", strings.Join(roles, ",")}
}

func TestSecretACLs(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		id := e.createSecret(`{"name":"shared","payload":"for-bob","payload_content_type":"text/plain"}`)
		acl := "/v1/secrets/" + id + "/acl"
		bob := caller("alt", "bob")
		carol := caller("demo", "carol")

		r := e.do("GET", acl, "")
		e.mustStatus(r, http.StatusOK)
		if got := strings.TrimSpace(string(r.body)); got != `{"read":{"project-access":true}}` {
			t.Fatalf("default ACL %s", got)
		}
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", bob...), http.StatusForbidden)

		r = e.do("PUT", acl, `{"read":{"users":["bob","bob"],"project-access":false}}`)
		e.mustStatus(r, http.StatusOK)
		if r.json(t)["acl_ref"] != e.url+acl {
			t.Errorf("acl_ref %s", r.body)
		}
		read := e.do("GET", acl, "").json(t)["read"].(map[string]any)
		if read["project-access"] != false || fmt.Sprint(read["users"]) != "[bob]" || read["created"] == nil || read["updated"] == nil {
			t.Fatalf("stored ACL %v", read)
		}

		// bob reads, and only reads.
		reads := []struct{ method, path, accept string }{
			{"GET", "/v1/secrets/" + id, ""},
			{"GET", "/v1/secrets/" + id + "/payload", "text/plain"},
			{"GET", "/v1/secrets/" + id, "text/plain"},
			{"GET", "/v1/secrets/" + id + "/metadata", ""},
		}
		for _, rq := range reads {
			r = e.do(rq.method, rq.path, "", append(bob, "Accept", rq.accept)...)
			if r.status != http.StatusOK {
				t.Errorf("bob %s %s: %d %s", rq.method, rq.path, r.status, r.body)
			}
		}
		if r = e.do("GET", "/v1/secrets/"+id+"/payload", "", append(bob, "Accept", "text/plain")...); string(r.body) != "for-bob" {
			t.Errorf("bob's payload %q", r.body)
		}
		writes := []struct{ method, path, body string }{
			{"DELETE", "/v1/secrets/" + id, ""},
			{"GET", acl, ""},
			{"PUT", acl, `{"read":{"users":["bob","mallory"]}}`},
			{"PATCH", acl, `{"read":{"project-access":true}}`},
			{"DELETE", acl, ""},
			{"PUT", "/v1/secrets/" + id + "/metadata", `{"metadata":{"a":"b"}}`},
			{"POST", "/v1/secrets/" + id + "/metadata", `{"key":"a","value":"b"}`},
		}
		for _, rq := range writes {
			r = e.do(rq.method, rq.path, rq.body, bob...)
			if r.status != http.StatusForbidden {
				t.Errorf("bob %s %s: %d %s", rq.method, rq.path, r.status, r.body)
			}
		}
		// bob's project gains nothing: another user of alt is still out.
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", caller("alt", "dave")...), http.StatusForbidden)
		// Private: a project member who did not create it is out; the
		// creator and a project admin are in.
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", carol...), http.StatusForbidden)
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", caller("demo", "carol", "admin")...), http.StatusOK)
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, ""), http.StatusOK)

		// PATCH changes only what it names.
		e.mustStatus(e.do("PATCH", acl, `{"read":{"project-access":true}}`), http.StatusOK)
		read = e.do("GET", acl, "").json(t)["read"].(map[string]any)
		if read["project-access"] != true || fmt.Sprint(read["users"]) != "[bob]" {
			t.Fatalf("patched ACL %v", read)
		}
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", carol...), http.StatusOK)
		e.mustStatus(e.do("PATCH", acl, `{"read":{"users":[]}}`), http.StatusOK)
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", bob...), http.StatusForbidden)

		// PUT replaces: project-access defaults to true, users to none.
		e.mustStatus(e.do("PUT", acl, `{"read":{"users":["bob"],"project-access":false}}`), http.StatusOK)
		e.mustStatus(e.do("PUT", acl, `{"read":{"users":["erin"]}}`), http.StatusOK)
		read = e.do("GET", acl, "").json(t)["read"].(map[string]any)
		if read["project-access"] != true || fmt.Sprint(read["users"]) != "[erin]" {
			t.Fatalf("replaced ACL %v", read)
		}
		// PUT {} removes every operation.
		e.mustStatus(e.do("PUT", acl, `{}`), http.StatusOK)
		if got := strings.TrimSpace(string(e.do("GET", acl, "").body)); got != `{"read":{"project-access":true}}` {
			t.Fatalf("ACL after PUT {} %s", got)
		}

		e.mustStatus(e.do("PUT", acl, `{"read":{"users":["bob"]}}`), http.StatusOK)
		r = e.do("DELETE", acl, "")
		e.mustStatus(r, http.StatusOK)
		if got := strings.TrimSpace(string(r.body)); got != "null" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Fatalf("DELETE answer %q %q", got, r.header.Get("Content-Type"))
		}
		e.mustStatus(e.do("GET", "/v1/secrets/"+id, "", bob...), http.StatusForbidden)
		if got := strings.TrimSpace(string(e.do("GET", acl, "").body)); got != `{"read":{"project-access":true}}` {
			t.Fatalf("ACL after DELETE %s", got)
		}
	})
}

func TestContainerACLs(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		sec := e.createSecret(`{"name":"s"}`)
		id := e.createContainer(`{"type":"generic","secret_refs":` + refsJSON("s", e.ref(sec)) + `}`)
		acl := "/v1/containers/" + id + "/acl/"
		bob := caller("alt", "bob")
		e.mustStatus(e.do("GET", "/v1/containers/"+id, "", bob...), http.StatusForbidden)
		r := e.do("PUT", acl, `{"read":{"users":["bob"],"project-access":false}}`)
		e.mustStatus(r, http.StatusOK)
		if r.json(t)["acl_ref"] != e.url+"/v1/containers/"+id+"/acl" {
			t.Errorf("acl_ref %s", r.body)
		}
		e.mustStatus(e.do("GET", "/v1/containers/"+id, "", bob...), http.StatusOK)
		e.mustStatus(e.do("GET", "/v1/containers/"+id+"/consumers", "", bob...), http.StatusOK)
		e.mustStatus(e.do("DELETE", "/v1/containers/"+id, "", bob...), http.StatusForbidden)
		e.mustStatus(e.do("GET", acl, "", bob...), http.StatusForbidden)
		// The container's ACL is not its secrets' ACL.
		e.mustStatus(e.do("GET", "/v1/secrets/"+sec, "", bob...), http.StatusForbidden)
		e.mustStatus(e.do("GET", "/v1/containers/"+id, "", caller("demo", "carol")...), http.StatusForbidden)
		e.mustStatus(e.do("PATCH", acl, `{"read":{"project-access":true}}`), http.StatusOK)
		e.mustStatus(e.do("GET", "/v1/containers/"+id, "", caller("demo", "carol")...), http.StatusOK)
		r = e.do("DELETE", acl, "")
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "null" {
			t.Fatalf("DELETE %d %s", r.status, r.body)
		}
		e.mustStatus(e.do("GET", "/v1/containers/"+id, "", bob...), http.StatusForbidden)
		// Deleting the container drops its ACL rows.
		e.mustStatus(e.do("PUT", acl, `{"read":{"users":["bob"]}}`), http.StatusOK)
		e.mustStatus(e.do("DELETE", "/v1/containers/"+id, ""), http.StatusNoContent)
		if n := e.tableCounts("container_acls")["container_acls"]; n != 0 {
			t.Errorf("%d container ACL rows survived", n)
		}
	})
}

func TestACLBadInput(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		sec := e.createSecret(`{"name":"s"}`)
		ct := e.createContainer(`{"type":"generic"}`)
		e.mustStatus(e.do("PUT", "/v1/secrets/"+sec+"/acl", `{"read":{"users":["bob"]}}`), http.StatusOK)
		missing := "00000000-0000-4000-8000-000000000000"
		tests := []errorCase{
			{"not json", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":`, nil, 400, "Malformed JSON"},
			{"wrong content type", "PUT", "/v1/secrets/" + sec + "/acl", `{}`, []string{"Content-Type", "text/plain"}, 415, "Unsupported Media Type: the request body must be application/json."},
			{"unknown operation", "PUT", "/v1/secrets/" + sec + "/acl", `{"write":{"users":["x"]}}`, nil, 400, `Invalid ACL operation "write": only 'read' is supported.`},
			{"unknown property", "PATCH", "/v1/secrets/" + sec + "/acl", `{"read":{"groups":["x"]}}`, nil, 400, `Invalid ACL: unknown property "groups".`},
			{"read not object", "PUT", "/v1/containers/" + ct + "/acl", `{"read":["x"]}`, nil, 400, "Invalid ACL: 'read' must be an object with 'users' and 'project-access'."},
			{"users not list", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":{"users":"bob"}}`, nil, 400, "Invalid ACL: 'users' must be a list of user ids."},
			{"users null", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":{"users":null}}`, nil, 400, "Invalid ACL: 'users' must be a list of user ids."},
			{"user not string", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":{"users":[1]}}`, nil, 400, "Invalid ACL: 'users' must be a list of user ids."},
			{"empty user", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":{"users":[""]}}`, nil, 400, "Invalid ACL user: user ids are 1 to 255 characters."},
			{"long user", "PATCH", "/v1/containers/" + ct + "/acl", `{"read":{"users":["` + strings.Repeat("u", 256) + `"]}}`, nil, 400, "Invalid ACL user: user ids are 1 to 255 characters."},
			{"project-access string", "PUT", "/v1/secrets/" + sec + "/acl", `{"read":{"project-access":"false"}}`, nil, 400, "Invalid ACL: 'project-access' must be true or false."},
			{"unknown secret", "PUT", "/v1/secrets/" + missing + "/acl", `{}`, nil, 404, "Secret not found."},
			{"unknown container", "GET", "/v1/containers/" + missing + "/acl", "", nil, 404, "Container not found."},
			{"other project", "DELETE", "/v1/secrets/" + sec + "/acl", "", caller("alt", "bob"), 403, "Forbidden: policy does not allow this operation."},
			{"wrong method", "POST", "/v1/secrets/" + sec + "/acl", `{}`, nil, 405, "The method is not allowed for the requested URL."},
		}
		before := e.tableCounts(aclTables...)
		e.expectErrors(t, tests)
		if after := e.tableCounts(aclTables...); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad requests changed the database: %v -> %v", before, after)
		}
	})
}

// TestListSecretsACLOnly: GET /v1/secrets?acl_only=true lists the secrets
// of any project whose read ACL names the caller, and nothing else.
func TestListSecretsACLOnly(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		shared := e.createSecret(`{"name":"shared-with-bob","payload":"x","payload_content_type":"text/plain"}`)
		e.createSecret(`{"name":"not-shared","payload":"y","payload_content_type":"text/plain"}`)
		e.mustStatus(e.do("PUT", "/v1/secrets/"+shared+"/acl", `{"read":{"users":["bob"]}}`), http.StatusOK)
		own := e.do("POST", "/v1/secrets", `{"name":"bobs-own","payload":"z","payload_content_type":"text/plain"}`, caller("alt", "bob")...)
		e.mustStatus(own, http.StatusCreated)

		names := func(r response) []string {
			t.Helper()
			e.mustStatus(r, http.StatusOK)
			var got []string
			for _, item := range r.json(t)["secrets"].([]any) {
				got = append(got, item.(map[string]any)["name"].(string))
			}
			if total := r.json(t)["total"]; total != float64(len(got)) {
				t.Errorf("total %v for %v", total, got)
			}
			return got
		}
		tests := []struct {
			name    string
			query   string
			headers []string
			want    string
		}{
			{"bob, shared with him", "?acl_only=true", caller("alt", "bob"), "[shared-with-bob]"},
			{"bob, oslo spelling", "?acl_only=True", caller("alt", "bob"), "[shared-with-bob]"},
			{"bob, his project's own", "", caller("alt", "bob"), "[bobs-own]"},
			{"bob, acl_only=false", "?acl_only=false", caller("alt", "bob"), "[bobs-own]"},
			{"bob, with a name filter that excludes it", "?acl_only=true&name=other", caller("alt", "bob"), "[]"},
			{"dave, same project as bob, not named", "?acl_only=true", caller("alt", "dave"), "[]"},
			{"no user id", "?acl_only=true", caller("alt", ""), "[]"},
		}
		for _, tt := range tests {
			got := names(e.do("GET", "/v1/secrets"+tt.query, "", tt.headers...))
			if fmt.Sprint(got) != tt.want && !(tt.want == "[]" && len(got) == 0) {
				t.Errorf("%s: %v, want %s", tt.name, got, tt.want)
			}
		}
		r := e.do("GET", "/v1/secrets?acl_only=maybe", "", caller("alt", "bob")...)
		e.mustStatus(r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "acl_only") {
			t.Errorf("400 body %s", r.body)
		}
		// Removing the ACL takes the secret off bob's list.
		e.mustStatus(e.do("DELETE", "/v1/secrets/"+shared+"/acl", ""), http.StatusOK)
		if got := names(e.do("GET", "/v1/secrets?acl_only=true", "", caller("alt", "bob")...)); len(got) != 0 {
			t.Errorf("after the ACL's removal bob still lists %v", got)
		}
	})
}
