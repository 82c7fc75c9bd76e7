package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/keyservice"
)

var consumerTables = []string{"secret_consumers", "container_consumers", "project_quotas"}

func TestSecretConsumers(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		id := e.createSecret(`{"name":"disk-key","payload":"k","payload_content_type":"text/plain"}`)
		path := "/v1/secrets/" + id + "/consumers"
		v11 := []string{"OpenStack-API-Version", "key-manager 1.1"}
		consumer := `{"service":"image","resource_type":"image","resource_id":"0b2cd5a1-aaaa-4bbb-8ccc-000000000001"}`

		r := e.do("POST", path+"/", consumer, v11...)
		e.mustStatus(r, http.StatusOK)
		sec := r.json(t)
		if sec["secret_ref"] != e.ref(id) || fmt.Sprint(sec["consumers"]) != "[map[resource_id:0b2cd5a1-aaaa-4bbb-8ccc-000000000001 resource_type:image service:image]]" {
			t.Fatalf("POST answer %s", r.body)
		}
		// Registering again is idempotent; at 1.0 the secret shows no
		// consumers key (barbicanclient 5.4 would crash on it).
		r = e.do("POST", path, consumer)
		e.mustStatus(r, http.StatusOK)
		if _, ok := r.json(t)["consumers"]; ok {
			t.Errorf("consumers shown at 1.0: %s", r.body)
		}
		e.mustStatus(e.do("POST", path, `{"service":"volume","resource_type":"volume","resource_id":"v1"}`), http.StatusOK)
		r = e.do("GET", path+"?limit=1", "")
		e.mustStatus(r, http.StatusOK)
		page := r.json(t)
		if page["total"] != float64(2) || page["next"] == nil {
			t.Fatalf("list %s", r.body)
		}
		item := page["consumers"].([]any)[0].(map[string]any)
		keys := []string{}
		for k := range item {
			keys = append(keys, k)
		}
		if len(keys) != 6 || item["service"] != "image" || item["status"] != "ACTIVE" || item["created"] == nil || item["updated"] == nil {
			t.Errorf("list item %v", item)
		}
		if n := len(e.do("GET", "/v1/secrets/"+id, "", v11...).json(t)["consumers"].([]any)); n != 2 {
			t.Errorf("secret at 1.1 shows %d consumers", n)
		}
		r = e.do("GET", "/v1/secrets?name=disk-key", "", v11...)
		if n := len(r.json(t)["secrets"].([]any)[0].(map[string]any)["consumers"].([]any)); n != 2 {
			t.Errorf("listed secret at 1.1 shows %d consumers", n)
		}

		// In use: deletion is refused until the consumers go or force.
		r = e.do("DELETE", "/v1/secrets/"+id, "")
		e.mustStatus(r, http.StatusBadRequest)
		if r.json(t)["description"] != "Secret has consumers! Remove them first or use the force parameter to delete it." {
			t.Errorf("refusal %s", r.body)
		}
		r = e.do("DELETE", path, consumer, v11...)
		e.mustStatus(r, http.StatusOK)
		if n := len(r.json(t)["consumers"].([]any)); n != 1 {
			t.Errorf("%d consumers after DELETE", n)
		}
		e.mustStatus(e.do("DELETE", "/v1/secrets/"+id, ""), http.StatusBadRequest)
		e.mustStatus(e.do("DELETE", "/v1/secrets/"+id+"?force=true", ""), http.StatusNoContent)
		if n := e.tableCounts("secret_consumers")["secret_consumers"]; n != 0 {
			t.Errorf("%d consumers outlived their secret", n)
		}
	})
}

func TestDeleteWithConsumersAllowed(t *testing.T) {
	e := newEnvWith(t, "sqlite", keyservice.Options{AllowDeleteWithConsumers: true})
	id := e.createSecret(`{"name":"s"}`)
	e.mustStatus(e.do("POST", "/v1/secrets/"+id+"/consumers", `{"service":"a","resource_type":"b","resource_id":"c"}`), http.StatusOK)
	e.mustStatus(e.do("DELETE", "/v1/secrets/"+id, ""), http.StatusNoContent)
}

func TestQuotas(t *testing.T) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, dialect, keyservice.Options{Quotas: keyservice.Quotas{
				keyservice.QuotaSecrets: 2, keyservice.QuotaOrders: 1, keyservice.QuotaContainers: 1, keyservice.QuotaConsumers: 1,
			}})
			r := e.do("GET", "/v1/quotas", "")
			e.mustStatus(r, http.StatusOK)
			if got := strings.TrimSpace(string(r.body)); got != `{"quotas":{"cas":-1,"consumers":1,"containers":1,"orders":1,"secrets":2}}` {
				t.Fatalf("quotas %s", got)
			}
			sec := e.createSecret(`{"name":"one"}`)
			r = e.do("POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`)
			e.mustStatus(r, http.StatusAccepted)
			ct := e.createContainer(`{"type":"generic"}`)
			e.mustStatus(e.do("POST", "/v1/containers/"+ct+"/consumers", `{"name":"lb","URL":"u"}`), http.StatusOK)
			// Re-registering the same consumer is not a new one.
			e.mustStatus(e.do("POST", "/v1/containers/"+ct+"/consumers", `{"name":"lb","URL":"u"}`), http.StatusOK)

			over := []struct{ method, path, body, description string }{
				{"POST", "/v1/secrets", `{"name":"three"}`, "Quota reached for project demo. Only 2 secrets are allowed."},
				{"POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`, "Quota reached for project demo. Only 1 orders are allowed."},
				{"POST", "/v1/containers", `{"type":"generic"}`, "Quota reached for project demo. Only 1 containers are allowed."},
				{"POST", "/v1/secrets/" + sec + "/consumers", `{"service":"a","resource_type":"b","resource_id":"c"}`, "Quota reached for project demo. Only 1 consumers are allowed."},
			}
			before := e.tableCounts(append(containerTables, consumerTables...)...)
			for _, o := range over {
				r = e.do(o.method, o.path, o.body)
				if body := r.json(t); r.status != http.StatusForbidden || body["title"] != "Forbidden" || body["description"] != o.description {
					t.Errorf("%s %s: %d %s", o.method, o.path, r.status, r.body)
				}
			}
			if after := e.tableCounts(append(containerTables, consumerTables...)...); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("refused creations changed the database: %v -> %v", before, after)
			}
			// Quotas are per project.
			r = e.do("POST", "/v1/secrets", `{"name":"alt"}`, "X-Project-Id", "alt")
			e.mustStatus(r, http.StatusCreated)

			// A project's own quotas override the defaults.
			e.mustStatus(e.do("PUT", "/v1/project-quotas/demo", `{"project_quotas":{"secrets":10,"cas":0}}`, systemAdmin...), http.StatusNoContent)
			r = e.do("GET", "/v1/project-quotas/demo", "", systemAdmin...)
			if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"project_quotas":{"cas":0,"secrets":10}}` {
				t.Fatalf("project quotas %d %s", r.status, r.body)
			}
			if got := strings.TrimSpace(string(e.do("GET", "/v1/quotas", "").body)); got != `{"quotas":{"cas":0,"consumers":1,"containers":1,"orders":1,"secrets":10}}` {
				t.Fatalf("effective quotas %s", got)
			}
			e.createSecret(`{"name":"three"}`)
			e.mustStatus(e.do("PUT", "/v1/project-quotas/other", `{"project_quotas":{"orders":-1}}`, systemAdmin...), http.StatusNoContent)
			r = e.do("GET", "/v1/project-quotas?limit=1", "", systemAdmin...)
			page := r.json(t)
			if page["total"] != float64(2) || page["next"] == nil ||
				fmt.Sprint(page["project_quotas"]) != "[map[project_id:demo project_quotas:map[cas:0 secrets:10]]]" {
				t.Fatalf("project quota list %s", r.body)
			}
			e.mustStatus(e.do("DELETE", "/v1/project-quotas/demo", "", systemAdmin...), http.StatusNoContent)
			r = e.do("GET", "/v1/project-quotas/demo", "", systemAdmin...)
			e.mustStatus(r, http.StatusNotFound)
			if r.json(t)["description"] != "Project quotas not found." {
				t.Errorf("404 %s", r.body)
			}
			e.mustStatus(e.do("DELETE", "/v1/project-quotas/demo", "", systemAdmin...), http.StatusNotFound)
			e.mustStatus(e.do("POST", "/v1/secrets", `{"name":"four"}`), http.StatusForbidden)
		})
	}
}

// systemAdmin is the no-auth headers of a system-scoped admin: project
// quotas are theirs (Barbican's rule:system_admin and rule:system_reader).
var systemAdmin = []string{"X-Project-Id", "", "OpenStack-System-Scope", "all", "X-Roles", "admin,member,reader"}

func TestConsumerAndQuotaBadInput(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		sec := e.createSecret(`{"name":"s"}`)
		e.mustStatus(e.do("PUT", "/v1/project-quotas/p1", `{"project_quotas":{"secrets":5}}`, systemAdmin...), http.StatusNoContent)
		missing := "00000000-0000-4000-8000-000000000000"
		path := "/v1/secrets/" + sec + "/consumers"
		tests := []errorCase{
			{"consumer not json", "POST", path, `{"service":`, nil, 400, "Malformed JSON"},
			{"consumer content type", "POST", path, `{}`, []string{"Content-Type", "text/plain"}, 415, "Unsupported Media Type: the request body must be application/json."},
			{"consumer missing id", "POST", path, `{"service":"a","resource_type":"b"}`, nil, 400, "Invalid consumer: 'service', 'resource_type' and 'resource_id' are required non-empty strings."},
			{"consumer empty service", "POST", path, `{"service":"","resource_type":"b","resource_id":"c"}`, nil, 400, "Invalid consumer: 'service', 'resource_type' and 'resource_id' are required non-empty strings."},
			{"consumer id too long", "POST", path, `{"service":"a","resource_type":"b","resource_id":"` + strings.Repeat("c", 37) + `"}`, nil, 400, "Invalid consumer: 'service' and 'resource_type' are at most 255 characters, 'resource_id' at most 36."},
			{"consumer id not string", "POST", path, `{"service":"a","resource_type":"b","resource_id":5}`, nil, 400, "Invalid 'resource_id': must be a string."},
			{"consumer of unknown secret", "POST", "/v1/secrets/" + missing + "/consumers", `{"service":"a","resource_type":"b","resource_id":"c"}`, nil, 404, "Secret not found."},
			{"remove absent consumer", "DELETE", path, `{"service":"a","resource_type":"b","resource_id":"c"}`, nil, 404, "Consumer not found."},
			{"consumers of other project", "GET", path, "", caller("alt", "bob"), 403, "Forbidden: policy does not allow this operation."},
			{"quota not json", "PUT", "/v1/project-quotas/p1", `{"project_quotas":`, systemAdmin, 400, "Malformed JSON"},
			{"quota wrong shape", "PUT", "/v1/project-quotas/p1", `{"secrets":5}`, systemAdmin, 400, `Invalid quotas: expected {"project_quotas": {"secrets": N, "orders": N, "containers": N, "consumers": N, "cas": N}}.`},
			{"quota below -1", "PUT", "/v1/project-quotas/p1", `{"project_quotas":{"secrets":-2}}`, systemAdmin, 400, "Invalid 'secrets': must be an integer from -1 to 2147483647."},
			{"quota string", "PUT", "/v1/project-quotas/p1", `{"project_quotas":{"orders":"5"}}`, systemAdmin, 400, "Invalid 'orders': must be an integer."},
			{"quota unknown resource", "PUT", "/v1/project-quotas/p1", `{"project_quotas":{"keys":5}}`, systemAdmin, 400, "Invalid quotas: unknown resource 'keys'."},
			{"quota content type", "PUT", "/v1/project-quotas/p1", `{}`, append([]string{"Content-Type", "text/plain"}, systemAdmin...), 415, "Unsupported Media Type: the request body must be application/json."},
			{"quota of unknown project", "GET", "/v1/project-quotas/nobody", "", systemAdmin, 404, "Project quotas not found."},
			{"quota long project", "PUT", "/v1/project-quotas/" + strings.Repeat("p", 256), `{"project_quotas":{}}`, systemAdmin, 400, "Invalid project id."},
			{"quota bad limit", "GET", "/v1/project-quotas?limit=x", "", systemAdmin, 400, "Invalid 'limit': must be an integer."},
		}
		before := e.tableCounts(append(containerTables, consumerTables...)...)
		e.expectErrors(t, tests)
		if after := e.tableCounts(append(containerTables, consumerTables...)...); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad requests changed the database: %v -> %v", before, after)
		}
	})
}
