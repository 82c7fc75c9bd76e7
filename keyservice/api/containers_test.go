package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// containerTables are the tables the container, ACL, consumer and quota
// resources write; bad requests must change none of them either.
var containerTables = []string{"containers", "container_secrets", "container_consumers"}

// tableCounts extends rowCounts with the tables named.
func (e *env) tableCounts(tables ...string) map[string]int {
	e.t.Helper()
	counts := e.rowCounts()
	for _, table := range tables {
		var n int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			e.t.Fatalf("counting %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}

// createContainer stores a container and returns its id.
func (e *env) createContainer(body string, headers ...string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/containers/", body, headers...)
	e.mustStatus(r, http.StatusCreated)
	ref, _ := r.json(e.t)["container_ref"].(string)
	if r.header.Get("Location") != ref || !strings.HasPrefix(ref, e.url+"/v1/containers/") {
		e.t.Fatalf("container_ref %q, Location %q", ref, r.header.Get("Location"))
	}
	return strings.TrimPrefix(ref, e.url+"/v1/containers/")
}

func (e *env) ref(id string) string { return e.url + "/v1/secrets/" + id }

func refsJSON(pairs ...string) string {
	items := []string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		items = append(items, fmt.Sprintf(`{"name":%q,"secret_ref":%q}`, pairs[i], pairs[i+1]))
	}
	return "[" + strings.Join(items, ",") + "]"
}

func TestContainers(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		pub := e.createSecret(`{"name":"pub","secret_type":"public"}`)
		priv := e.createSecret(`{"name":"priv","secret_type":"private"}`)
		cert := e.createSecret(`{"name":"cert","secret_type":"certificate"}`)

		rsa := e.createContainer(`{"name":"rsa-box","type":"rsa","secret_refs":` + refsJSON("public_key", e.ref(pub), "private_key", e.ref(priv)) + `}`)
		r := e.do("GET", "/v1/containers/"+rsa, "")
		e.mustStatus(r, http.StatusOK)
		got := r.json(t)
		want := map[string]any{"name": "rsa-box", "type": "rsa", "status": "ACTIVE", "creator_id": "alice",
			"container_ref": e.url + "/v1/containers/" + rsa}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %#v, want %#v", k, got[k], v)
			}
		}
		if fmt.Sprint(got["consumers"]) != "[]" {
			t.Errorf("consumers %v", got["consumers"])
		}
		refs := fmt.Sprint(got["secret_refs"])
		if wantRefs := fmt.Sprint([]any{
			map[string]any{"name": "private_key", "secret_ref": e.ref(priv)},
			map[string]any{"name": "public_key", "secret_ref": e.ref(pub)},
		}); refs != wantRefs {
			t.Errorf("secret_refs %s, want %s", refs, wantRefs)
		}
		for _, k := range []string{"created", "updated"} {
			if s, _ := got[k].(string); s == "" || strings.HasSuffix(s, "Z") {
				t.Errorf("%s = %q", k, got[k])
			}
		}

		e.createContainer(`{"name":"tls","type":"certificate","secret_refs":` + refsJSON("certificate", e.ref(cert), "private_key", e.ref(priv)) + `}`)
		generic := e.createContainer(`{"type":"generic"}`)
		r = e.do("GET", "/v1/containers/"+generic, "")
		if g := r.json(t); g["name"] != nil || fmt.Sprint(g["secret_refs"]) != "[]" {
			t.Errorf("unnamed generic container %s", r.body)
		}

		// List, filters and paging.
		r = e.do("GET", "/v1/containers", "")
		e.mustStatus(r, http.StatusOK)
		if page := r.json(t); page["total"] != float64(3) || len(page["containers"].([]any)) != 3 {
			t.Fatalf("list %s", r.body)
		}
		r = e.do("GET", "/v1/containers?limit=1&offset=1&type=rsa", "")
		if page := r.json(t); page["total"] != float64(1) || len(page["containers"].([]any)) != 0 || page["previous"] == nil {
			t.Errorf("filtered page %s", r.body)
		}
		r = e.do("GET", "/v1/containers?name=tls", "")
		if page := r.json(t); page["total"] != float64(1) {
			t.Errorf("name filter %s", r.body)
		}
		if total := e.do("GET", "/v1/containers", "", "X-Project-Id", "alt").json(t)["total"]; total != float64(0) {
			t.Errorf("alt lists demo's containers: %v", total)
		}

		// Generic containers take and lose secrets; typed ones do not.
		r = e.do("POST", "/v1/containers/"+generic+"/secrets", fmt.Sprintf(`{"name":"k","secret_ref":%q}`, e.ref(pub)))
		e.mustStatus(r, http.StatusCreated)
		if r.json(t)["container_ref"] != e.url+"/v1/containers/"+generic {
			t.Errorf("add secret answer %s", r.body)
		}
		r = e.do("POST", "/v1/containers/"+generic+"/secrets/", fmt.Sprintf(`{"name":"k2","secret_ref":%q}`, e.ref(pub)))
		e.mustStatus(r, http.StatusCreated)
		r = e.do("GET", "/v1/containers/"+generic, "")
		if n := len(r.json(t)["secret_refs"].([]any)); n != 2 {
			t.Errorf("generic container has %d refs", n)
		}
		r = e.do("DELETE", "/v1/containers/"+generic+"/secrets", fmt.Sprintf(`{"name":"k","secret_ref":%q}`, e.ref(pub)))
		e.mustStatus(r, http.StatusNoContent)

		// Consumers (gophercloud): POST and DELETE answer with the container.
		r = e.do("POST", "/v1/containers/"+rsa+"/consumers", `{"name":"octavia","URL":"http://lb/1"}`)
		e.mustStatus(r, http.StatusOK)
		if c := r.json(t); fmt.Sprint(c["consumers"]) != "[map[URL:http://lb/1 name:octavia]]" || c["container_ref"] == nil {
			t.Errorf("consumer POST answer %s", r.body)
		}
		e.mustStatus(e.do("POST", "/v1/containers/"+rsa+"/consumers/", `{"name":"octavia","URL":"http://lb/1"}`), http.StatusOK)
		e.mustStatus(e.do("POST", "/v1/containers/"+rsa+"/consumers", `{"name":"octavia","URL":"http://lb/2"}`), http.StatusOK)
		r = e.do("GET", "/v1/containers/"+rsa+"/consumers?limit=1", "")
		e.mustStatus(r, http.StatusOK)
		page := r.json(t)
		items := page["consumers"].([]any)
		if page["total"] != float64(2) || len(items) != 1 || page["next"] == nil {
			t.Fatalf("consumer list %s", r.body)
		}
		if item := items[0].(map[string]any); item["name"] != "octavia" || item["URL"] != "http://lb/1" || item["status"] != "ACTIVE" || item["created"] == nil {
			t.Errorf("consumer item %v", item)
		}
		r = e.do("DELETE", "/v1/containers/"+rsa+"/consumers", `{"name":"octavia","URL":"http://lb/1"}`)
		e.mustStatus(r, http.StatusOK)
		if n := len(r.json(t)["consumers"].([]any)); n != 1 {
			t.Errorf("%d consumers left", n)
		}

		// Another project: 403 on the container, nothing changes.
		for _, rq := range []struct{ method, path, body string }{
			{"GET", "/v1/containers/" + rsa, ""},
			{"DELETE", "/v1/containers/" + rsa, ""},
			{"GET", "/v1/containers/" + rsa + "/consumers", ""},
			{"POST", "/v1/containers/" + rsa + "/consumers", `{"name":"x","URL":"y"}`},
			{"POST", "/v1/containers/" + generic + "/secrets", fmt.Sprintf(`{"name":"z","secret_ref":%q}`, e.ref(pub))},
		} {
			r = e.do(rq.method, rq.path, rq.body, "X-Project-Id", "alt", "X-User-Id", "bob")
			if r.status != http.StatusForbidden {
				t.Errorf("alt %s %s: %d %s", rq.method, rq.path, r.status, r.body)
			}
		}
		// alt cannot put demo's secret in its own container either.
		r = e.do("POST", "/v1/containers", `{"type":"generic","secret_refs":`+refsJSON("stolen", e.ref(pub))+`}`, "X-Project-Id", "alt")
		e.mustStatus(r, http.StatusNotFound)

		// Deleting a secret takes it out of its containers.
		e.mustStatus(e.do("DELETE", "/v1/secrets/"+pub, ""), http.StatusNoContent)
		r = e.do("GET", "/v1/containers/"+rsa, "")
		if n := len(r.json(t)["secret_refs"].([]any)); n != 1 {
			t.Errorf("rsa container keeps %d refs after a secret delete", n)
		}
		e.mustStatus(e.do("DELETE", "/v1/containers/"+rsa, ""), http.StatusNoContent)
		r = e.do("GET", "/v1/containers/"+rsa, "")
		e.mustStatus(r, http.StatusNotFound)
		if r.json(t)["description"] != "Container not found." {
			t.Errorf("404 body %s", r.body)
		}
		// The secrets outlive the container.
		e.mustStatus(e.do("GET", "/v1/secrets/"+priv, ""), http.StatusOK)
	})
}

// TestContainerBadInput checks each malformed container request's exact
// status and body, and that no table changed.
func TestContainerBadInput(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		sec := e.createSecret(`{"name":"s"}`)
		sec2 := e.createSecret(`{"name":"s2"}`)
		r := e.do("POST", "/v1/secrets", `{"name":"alt's"}`, "X-Project-Id", "alt")
		e.mustStatus(r, http.StatusCreated)
		altRef := r.json(t)["secret_ref"].(string)
		rsa := e.createContainer(`{"type":"rsa","secret_refs":` + refsJSON("public_key", e.ref(sec), "private_key", e.ref(sec2)) + `}`)
		generic := e.createContainer(`{"type":"generic","secret_refs":` + refsJSON("a", e.ref(sec)) + `}`)
		missing := "00000000-0000-4000-8000-000000000000"
		post := func(refs string) string { return `{"type":"generic","secret_refs":` + refs + `}` }
		tests := []errorCase{
			{"not json", "POST", "/v1/containers", `{"type":`, nil, 400, "Malformed JSON"},
			{"wrong content type", "POST", "/v1/containers", `{"type":"generic"}`, []string{"Content-Type", "text/plain"}, 415, "Unsupported Media Type: the request body must be application/json."},
			{"no type", "POST", "/v1/containers", `{"name":"x"}`, nil, 400, "Invalid container: 'type' is a required property."},
			{"bad type", "POST", "/v1/containers", `{"type":"bag"}`, nil, 400, "Invalid container type: must be one of generic, rsa, certificate."},
			{"type not string", "POST", "/v1/containers", `{"type":1}`, nil, 400, "Invalid 'type': must be a string."},
			{"name too long", "POST", "/v1/containers", `{"type":"generic","name":"` + strings.Repeat("n", 256) + `"}`, nil, 400, "Invalid name: longer than 255 characters."},
			{"refs not list", "POST", "/v1/containers", post(`{}`), nil, 400, "Invalid secret_refs: must be a list."},
			{"ref not object", "POST", "/v1/containers", post(`["x"]`), nil, 400, "Invalid secret_refs: each item must be an object with a 'secret_ref'."},
			{"ref missing", "POST", "/v1/containers", post(`[{"name":"a"}]`), nil, 400, "Invalid secret_refs: 'secret_ref' is a required property."},
			{"foreign host", "POST", "/v1/containers", post(refsJSON("a", "http://evil.example/v1/secrets/"+sec)), nil, 400, "Secret_ref does not match the configured hostname, please try again."},
			{"ref with path", "POST", "/v1/containers", post(refsJSON("a", e.ref(sec)+"/payload")), nil, 400, "Invalid secret_ref: it must be <base URL>/v1/secrets/<secret id>."},
			{"unknown secret", "POST", "/v1/containers", post(refsJSON("a", e.ref(missing))), nil, 404, "Secret provided for 'a' doesn't exist."},
			{"not a uuid", "POST", "/v1/containers", post(refsJSON("a", e.ref("nope"))), nil, 404, "Secret provided for 'a' doesn't exist."},
			{"other project's secret", "POST", "/v1/containers", post(refsJSON("a", altRef)), nil, 404, "Secret provided for 'a' doesn't exist."},
			{"duplicate names", "POST", "/v1/containers", post(refsJSON("a", e.ref(sec), "a", e.ref(sec2))), nil, 400, "Duplicate reference names are not allowed."},
			{"duplicate secrets", "POST", "/v1/containers", post(refsJSON("a", e.ref(sec), "b", e.ref(sec))), nil, 400, "Duplicate secret ids are not allowed."},
			{"rsa missing private", "POST", "/v1/containers", `{"type":"rsa","secret_refs":` + refsJSON("public_key", e.ref(sec)) + `}`, nil, 400, "The minimum required reference names are 'public_key' and 'private_key' for RSA type."},
			{"rsa odd name", "POST", "/v1/containers", `{"type":"rsa","secret_refs":` + refsJSON("public_key", e.ref(sec), "cert", e.ref(sec2)) + `}`, nil, 400, "Only 'private_key', 'public_key' and 'private_key_passphrase' reference names are allowed for RSA type."},
			{"certificate missing", "POST", "/v1/containers", `{"type":"certificate","secret_refs":` + refsJSON("private_key", e.ref(sec)) + `}`, nil, 400, "The minimum required reference name is 'certificate' for Certificate type."},
			{"certificate odd name", "POST", "/v1/containers", `{"type":"certificate","secret_refs":` + refsJSON("certificate", e.ref(sec), "key", e.ref(sec2)) + `}`, nil, 400, "Only 'private_key', 'certificate', 'private_key_passphrase', or 'intermediates' reference names are allowed for Certificate type."},
			{"body too large", "POST", "/v1/containers", `{"type":"generic","name":"` + strings.Repeat("n", 70000) + `"}`, nil, 413, "Provided information too large to process."},
			{"unknown container", "GET", "/v1/containers/" + missing, "", nil, 404, "Container not found."},
			{"container not uuid", "GET", "/v1/containers/..%2fsecrets", "", nil, 404, "Container not found."},
			{"list bad limit", "GET", "/v1/containers?limit=x", "", nil, 400, "Invalid 'limit': must be an integer."},
			{"add to rsa", "POST", "/v1/containers/" + rsa + "/secrets", fmt.Sprintf(`{"name":"x","secret_ref":%q}`, e.ref(sec)), nil, 400, "Only 'generic' containers can be modified."},
			{"add duplicate", "POST", "/v1/containers/" + generic + "/secrets", fmt.Sprintf(`{"name":"a","secret_ref":%q}`, e.ref(sec)), nil, 409, "Conflict. A secret with that name and ID is already stored in this container. The same secret can exist in a container as long as the name is unique."},
			{"add unknown secret", "POST", "/v1/containers/" + generic + "/secrets", fmt.Sprintf(`{"name":"x","secret_ref":%q}`, e.ref(missing)), nil, 404, "Secret provided doesn't exist."},
			{"add other project's", "POST", "/v1/containers/" + generic + "/secrets", fmt.Sprintf(`{"name":"x","secret_ref":%q}`, altRef), nil, 404, "Secret provided doesn't exist."},
			{"add no ref", "POST", "/v1/containers/" + generic + "/secrets", `{"name":"x"}`, nil, 400, "Invalid secret_refs: 'secret_ref' is a required property."},
			{"add to unknown", "POST", "/v1/containers/" + missing + "/secrets", fmt.Sprintf(`{"name":"x","secret_ref":%q}`, e.ref(sec)), nil, 404, "Container not found."},
			{"remove absent", "DELETE", "/v1/containers/" + generic + "/secrets", fmt.Sprintf(`{"name":"zz","secret_ref":%q}`, e.ref(sec)), nil, 404, "Secret provided is not in the container."},
			{"consumer no URL", "POST", "/v1/containers/" + generic + "/consumers", `{"name":"x"}`, nil, 400, "Invalid consumer: 'name' and 'URL' are required non-empty strings."},
			{"consumer empty name", "POST", "/v1/containers/" + generic + "/consumers", `{"name":"","URL":"u"}`, nil, 400, "Invalid consumer: 'name' and 'URL' are required non-empty strings."},
			{"consumer long URL", "POST", "/v1/containers/" + generic + "/consumers", `{"name":"x","URL":"` + strings.Repeat("u", 256) + `"}`, nil, 400, "Invalid consumer: 'name' and 'URL' are at most 255 characters."},
			{"consumer of unknown", "POST", "/v1/containers/" + missing + "/consumers", `{"name":"x","URL":"u"}`, nil, 404, "Container not found."},
			{"remove absent consumer", "DELETE", "/v1/containers/" + generic + "/consumers", `{"name":"x","URL":"u"}`, nil, 404, "Consumer not found."},
			{"wrong method", "PUT", "/v1/containers/" + generic, "", nil, 405, "The method is not allowed for the requested URL."},
		}
		before := e.tableCounts(containerTables...)
		e.expectErrors(t, tests)
		if after := e.tableCounts(containerTables...); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad requests changed the database: %v -> %v", before, after)
		}
	})
}
