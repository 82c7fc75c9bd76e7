package api_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// env is an arca-api handler over a real database.
type env struct {
	t       *testing.T
	url     string
	db      *sql.DB
	dialect dbconn.Dialect
}

func newEnv(t *testing.T, dialect dbconn.Dialect) *env {
	t.Helper()
	return newEnvWith(t, dialect, keyservice.Options{})
}

// newEnvWith is newEnv with service options (quotas, consumer rules).
func newEnvWith(t *testing.T, dialect dbconn.Dialect, opts keyservice.Options) *env {
	t.Helper()
	db, store := openStore(t, dialect)
	opts.Logger = zerolog.Nop()
	svc, err := keyservice.New(store, testKeyring(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Defaults: NoAuth identities through the production policy.
	handler, err := api.New(svc, api.Options{Logger: zerolog.Nop(), Build: "test-build"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, db: db, dialect: dialect}
}

// forEachDatabase runs f against SQLite and the real MariaDB.
func forEachDatabase(t *testing.T, f func(t *testing.T, e *env)) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, dialect))
		})
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request as project "demo" unless headers say otherwise.
func (e *env) do(method, path string, body string, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Project-Id", "demo")
	req.Header.Set("X-User-Id", "alice")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) mustStatus(r response, want int) {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

// createSecret stores a secret and returns its id.
func (e *env) createSecret(body string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/secrets", body)
	e.mustStatus(r, http.StatusCreated)
	ref, _ := r.json(e.t)["secret_ref"].(string)
	if r.header.Get("Location") != ref || !strings.HasPrefix(ref, e.url+"/v1/secrets/") {
		e.t.Fatalf("secret_ref %q, Location %q", ref, r.header.Get("Location"))
	}
	return strings.TrimPrefix(ref, e.url+"/v1/secrets/")
}

// rowCounts snapshots every table's row count: bad requests must not
// change any of them.
func (e *env) rowCounts() map[string]int {
	e.t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"secrets", "secret_user_metadata", "orders", "project_keks"} {
		var n int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			e.t.Fatalf("counting %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, "sqlite")
	r := e.do("GET", "/", "", "X-Project-Id", "")
	e.mustStatus(r, http.StatusMultipleChoices)
	values := r.json(t)["versions"].(map[string]any)["values"].([]any)
	v1 := values[0].(map[string]any)
	if v1["id"] != "v1" || v1["status"] != "stable" || v1["media-types"] == nil {
		t.Fatalf("1.0 discovery entry: %v", v1)
	}
	self := v1["links"].([]any)[0].(map[string]any)
	if self["rel"] != "self" || self["href"] != e.url+"/v1/" {
		t.Fatalf("self link %v", self)
	}
	for _, h := range []struct{ name, want string }{
		{"OpenStack-API-Version", "key-manager 1.0"}, {"Vary", "OpenStack-API-Version"},
	} {
		if got := r.header.Get(h.name); got != h.want {
			t.Errorf("%s = %q, want %q", h.name, got, h.want)
		}
	}
	if !strings.HasPrefix(r.header.Get("X-Openstack-Request-Id"), "req-") {
		t.Errorf("no request id: %v", r.header)
	}

	r = e.do("GET", "/", "", "OpenStack-API-Version", "key-manager latest")
	e.mustStatus(r, http.StatusMultipleChoices)
	entry := r.json(t)["versions"].([]any)[0].(map[string]any)
	if entry["status"] != "CURRENT" || entry["min_version"] != "1.0" || entry["max_version"] != "1.1" {
		t.Fatalf("1.1 discovery entry: %v", entry)
	}
	if got := r.header.Get("OpenStack-API-Version"); got != "key-manager 1.1" {
		t.Errorf("negotiated %q", got)
	}

	r = e.do("GET", "/?build", "")
	e.mustStatus(r, http.StatusOK)
	if r.json(t)["build"] != "test-build" {
		t.Fatalf("build: %s", r.body)
	}
	for _, path := range []string{"/v1", "/v1/"} {
		r = e.do("GET", path, "")
		e.mustStatus(r, http.StatusOK)
		if r.json(t)["version"].(map[string]any)["id"] != "v1" {
			t.Fatalf("%s: %s", path, r.body)
		}
	}

	for _, tt := range []struct {
		header string
		status int
	}{
		{"key-manager 1.2", http.StatusNotAcceptable},
		{"key-manager 0.9", http.StatusNotAcceptable},
		{"key-manager 2.0", http.StatusNotAcceptable},
		{"key-manager one", http.StatusBadRequest},
		{"key-manager 1", http.StatusBadRequest},
		{"key-manager", http.StatusBadRequest},
		{"compute 2.1", http.StatusOK},
	} {
		r = e.do("GET", "/v1/secrets", "", "OpenStack-API-Version", tt.header)
		if r.status != tt.status {
			t.Errorf("OpenStack-API-Version %q: status %d, want %d (%s)", tt.header, r.status, tt.status, r.body)
		}
		if tt.status != http.StatusOK {
			body := r.json(t)
			if body["code"] != float64(tt.status) || body["title"] == "" || body["description"] == "" {
				t.Errorf("error body %s", r.body)
			}
		}
	}

	r = e.do("GET", "/healthcheck", "")
	if r.status != http.StatusOK || string(r.body) != "OK" {
		t.Fatalf("healthcheck %d %q", r.status, r.body)
	}
	r = e.do("HEAD", "/healthcheck", "")
	e.mustStatus(r, http.StatusNoContent)
}

func TestSecretLifecycle(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		id := e.createSecret(`{"name":"db-password","payload":"  s3cret#value  ","payload_content_type":"text/plain; charset=utf-8","algorithm":"aes","bit_length":256,"mode":"cbc","secret_type":"passphrase"}`)

		r := e.do("GET", "/v1/secrets/"+id, "")
		e.mustStatus(r, http.StatusOK)
		meta := r.json(t)
		want := map[string]any{
			"name": "db-password", "status": "ACTIVE", "secret_type": "passphrase", "algorithm": "aes",
			"bit_length": float64(256), "mode": "cbc", "creator_id": "alice", "expiration": nil,
			"secret_ref": e.url + "/v1/secrets/" + id,
		}
		for k, v := range want {
			if meta[k] != v {
				t.Errorf("%s = %#v, want %#v", k, meta[k], v)
			}
		}
		if ct := meta["content_types"].(map[string]any)["default"]; ct != "text/plain" {
			t.Errorf("content_types.default = %v", ct)
		}
		if _, ok := meta["consumers"]; ok {
			t.Error("consumers shown at microversion 1.0 (breaks barbicanclient 5.4)")
		}
		allowed := map[string]bool{"created": true, "updated": true, "status": true, "name": true, "secret_type": true,
			"expiration": true, "algorithm": true, "bit_length": true, "mode": true, "creator_id": true,
			"secret_ref": true, "content_types": true}
		for k := range meta {
			if !allowed[k] {
				t.Errorf("unexpected key %q in secret (barbicanclient 5.4 would crash)", k)
			}
		}
		created := meta["created"].(string)
		if strings.HasSuffix(created, "Z") || strings.Contains(created, "+") {
			t.Errorf("created %q has a zone designator", created)
		}
		if _, err := time.Parse("2006-01-02T15:04:05", created); err != nil {
			t.Errorf("created %q does not parse as gophercloud parses it: %v", created, err)
		}

		r = e.do("GET", "/v1/secrets/"+id, "", "OpenStack-API-Version", "key-manager 1.1")
		if consumers, ok := r.json(t)["consumers"].([]any); !ok || len(consumers) != 0 {
			t.Errorf("consumers at 1.1: %s", r.body)
		}

		payloadCases := []struct {
			accept, wantType, wantBody string
			status                     int
		}{
			{"text/plain", "text/plain; charset=utf-8", "s3cret#value", 200},
			{"application/octet-stream", "application/octet-stream", "s3cret#value", 200},
			{"", "application/octet-stream", "s3cret#value", 200},
			{"*/*", "text/plain; charset=utf-8", "s3cret#value", 200},
			{"application/xml", "", "", 406},
		}
		for _, pc := range payloadCases {
			r = e.do("GET", "/v1/secrets/"+id+"/payload", "", "Accept", pc.accept)
			if r.status != pc.status {
				t.Errorf("Accept %q: status %d, want %d", pc.accept, r.status, pc.status)
				continue
			}
			if pc.status == 200 && (r.header.Get("Content-Type") != pc.wantType || string(r.body) != pc.wantBody) {
				t.Errorf("Accept %q: %q %q", pc.accept, r.header.Get("Content-Type"), r.body)
			}
		}
		// Legacy payload read through the secret URL.
		r = e.do("GET", "/v1/secrets/"+id, "", "Accept", "text/plain")
		if r.status != 200 || string(r.body) != "s3cret#value" {
			t.Errorf("legacy payload GET: %d %q", r.status, r.body)
		}

		// Another project sees nothing of it.
		for _, path := range []string{"/v1/secrets/" + id, "/v1/secrets/" + id + "/payload", "/v1/secrets/" + id + "/metadata"} {
			r = e.do("GET", path, "", "X-Project-Id", "alt")
			if r.status != http.StatusForbidden {
				t.Errorf("alt GET %s: %d, want 403", path, r.status)
			}
		}
		r = e.do("DELETE", "/v1/secrets/"+id, "", "X-Project-Id", "alt")
		e.mustStatus(r, http.StatusForbidden)

		r = e.do("DELETE", "/v1/secrets/"+id, "")
		e.mustStatus(r, http.StatusNoContent)
		r = e.do("GET", "/v1/secrets/"+id, "")
		e.mustStatus(r, http.StatusNotFound)
		if body := r.json(t); body["title"] != "Not Found" || body["description"] != "Secret not found." || body["code"] != float64(404) {
			t.Errorf("404 body %s", r.body)
		}
	})
}

func TestBinaryAndTwoStepSecrets(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		blob := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
		id := e.createSecret(fmt.Sprintf(`{"payload":%q,"payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`,
			base64.StdEncoding.EncodeToString(blob)))
		r := e.do("GET", "/v1/secrets/"+id+"/payload", "", "Accept", "application/octet-stream")
		if r.status != 200 || !bytes.Equal(r.body, blob) {
			t.Fatalf("binary payload: %d %v", r.status, r.body)
		}
		r = e.do("GET", "/v1/secrets/"+id+"/payload", "", "Accept", "text/plain")
		e.mustStatus(r, http.StatusNotAcceptable)

		// Two-step: metadata first, payload later, exactly once.
		id = e.createSecret(`{"name":"later"}`)
		r = e.do("GET", "/v1/secrets/"+id, "")
		if _, ok := r.json(t)["content_types"]; ok {
			t.Error("content_types shown before a payload exists")
		}
		r = e.do("GET", "/v1/secrets/"+id+"/payload", "")
		e.mustStatus(r, http.StatusNotFound)
		r = e.do("PUT", "/v1/secrets/"+id, "", "Content-Type", "text/plain")
		e.mustStatus(r, http.StatusBadRequest)
		r = e.do("PUT", "/v1/secrets/"+id, "second step", "Content-Type", "application/json")
		e.mustStatus(r, http.StatusUnsupportedMediaType)
		r = e.do("PUT", "/v1/secrets/"+id, base64.StdEncoding.EncodeToString(blob), "Content-Type", "application/octet-stream", "Content-Encoding", "base64")
		e.mustStatus(r, http.StatusNoContent)
		r = e.do("PUT", "/v1/secrets/"+id, "again", "Content-Type", "text/plain")
		e.mustStatus(r, http.StatusConflict)
		r = e.do("GET", "/v1/secrets/"+id+"/payload", "")
		if !bytes.Equal(r.body, blob) {
			t.Fatalf("two-step payload %v", r.body)
		}
	})
}

func TestSecretMetadata(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		id := e.createSecret(`{"name":"m"}`)
		base := "/v1/secrets/" + id + "/metadata"
		r := e.do("GET", base, "")
		if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"metadata":{}}` {
			t.Fatalf("empty metadata: %d %s", r.status, r.body)
		}
		r = e.do("PUT", base, `{"metadata":{"Geo":"eu","owner":"ops"}}`)
		e.mustStatus(r, http.StatusCreated)
		if r.json(t)["metadata_ref"] != e.url+base {
			t.Errorf("metadata_ref %s", r.body)
		}
		r = e.do("POST", base, `{"key":"tier","value":"gold"}`)
		e.mustStatus(r, http.StatusCreated)
		r = e.do("POST", base, `{"key":"TIER","value":"x"}`)
		e.mustStatus(r, http.StatusConflict)
		r = e.do("PUT", base+"/tier", `{"key":"tier","value":"silver"}`)
		e.mustStatus(r, http.StatusOK)
		r = e.do("GET", base+"/geo", "")
		if r.status != 200 || r.json(t)["value"] != "eu" {
			t.Fatalf("get geo: %d %s", r.status, r.body)
		}
		r = e.do("DELETE", base+"/owner", "")
		e.mustStatus(r, http.StatusNoContent)
		r = e.do("DELETE", base+"/owner", "")
		e.mustStatus(r, http.StatusNotFound)
		r = e.do("GET", base, "")
		got := r.json(t)["metadata"].(map[string]any)
		if len(got) != 2 || got["geo"] != "eu" || got["tier"] != "silver" {
			t.Fatalf("metadata %v", got)
		}
	})
}

func TestListSecrets(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		for i := 0; i < 12; i++ {
			alg := "aes"
			if i%3 == 0 {
				alg = "rsa"
			}
			e.createSecret(fmt.Sprintf(`{"name":"s%02d","algorithm":%q,"bit_length":%d,"payload":"x","payload_content_type":"text/plain"}`, i, alg, 128+i%2*128))
		}
		e.do("POST", "/v1/secrets", `{"name":"other"}`, "X-Project-Id", "alt")

		r := e.do("GET", "/v1/secrets", "")
		e.mustStatus(r, 200)
		page := r.json(t)
		if page["total"] != float64(12) || len(page["secrets"].([]any)) != 10 {
			t.Fatalf("first page: total %v, %d items", page["total"], len(page["secrets"].([]any)))
		}
		if _, ok := page["previous"]; ok {
			t.Error("previous on the first page")
		}
		next := page["next"].(string)
		if !strings.Contains(next, "limit=10") || !strings.Contains(next, "offset=10") {
			t.Fatalf("next %q", next)
		}
		r = e.do("GET", strings.TrimPrefix(next, e.url), "")
		page = r.json(t)
		if len(page["secrets"].([]any)) != 2 || page["previous"] == nil || page["next"] != nil {
			t.Fatalf("second page %s", r.body)
		}

		filters := []struct {
			query string
			total int
		}{
			{"alg=rsa", 4},
			{"alg=aes&bits=256", 4},
			{"name=s03", 1},
			{"name=nothing", 0},
			{"secret_type=opaque", 12},
			{"secret_type=symmetric", 0},
			{"created=gt:2000-01-01T00:00:00", 12},
			{"created=lt:2000-01-01T00:00:00", 0},
			{"limit=1000", 12},
		}
		for _, f := range filters {
			r = e.do("GET", "/v1/secrets?"+f.query, "")
			if r.status != 200 || r.json(t)["total"] != float64(f.total) {
				t.Errorf("?%s: %d %v, want total %d", f.query, r.status, r.json(t)["total"], f.total)
			}
		}
		r = e.do("GET", "/v1/secrets?alg=rsa&limit=2", "")
		if next := r.json(t)["next"].(string); !strings.Contains(next, "alg=rsa") {
			t.Errorf("next link dropped the filter: %s", next)
		}
		r = e.do("GET", "/v1/secrets?sort=name:desc&limit=3", "")
		names := []string{}
		for _, s := range r.json(t)["secrets"].([]any) {
			names = append(names, s.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") != "s11,s10,s09" {
			t.Errorf("sort=name:desc: %v", names)
		}
	})
}

func TestExpiredSecretsVanish(t *testing.T) {
	e := newEnv(t, "sqlite")
	soon := time.Now().UTC().Add(1500 * time.Millisecond).Format("2006-01-02T15:04:05.000000")
	id := e.createSecret(fmt.Sprintf(`{"name":"brief","expiration":%q,"payload":"x","payload_content_type":"text/plain"}`, soon))
	e.createSecret(`{"name":"lasting"}`)
	r := e.do("GET", "/v1/secrets/"+id, "")
	e.mustStatus(r, 200)
	if exp := r.json(t)["expiration"].(string); strings.HasSuffix(exp, "Z") {
		t.Errorf("expiration %q has a Z", exp)
	}
	time.Sleep(1600 * time.Millisecond)
	e.mustStatus(e.do("GET", "/v1/secrets/"+id, ""), http.StatusNotFound)
	e.mustStatus(e.do("GET", "/v1/secrets/"+id+"/payload", ""), http.StatusNotFound)
	if total := e.do("GET", "/v1/secrets", "").json(t)["total"]; total != float64(1) {
		t.Errorf("expired secret still listed: total %v", total)
	}
}

func TestOrders(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/v1/orders/", `{"type":"key","meta":{"name":"k","algorithm":"aes","bit_length":256,"mode":"cbc","payload_content_type":"application/octet-stream","extra":"dropped"}}`)
		e.mustStatus(r, http.StatusAccepted)
		ref := r.json(t)["order_ref"].(string)
		orderPath := strings.TrimPrefix(ref, e.url)
		r = e.do("GET", orderPath, "")
		e.mustStatus(r, 200)
		o := r.json(t)
		if o["status"] != "ACTIVE" || o["type"] != "key" || o["order_ref"] != ref {
			t.Fatalf("order %s", r.body)
		}
		if _, ok := o["meta"].(map[string]any)["extra"]; ok {
			t.Error("unknown meta key echoed")
		}
		for _, k := range []string{"error_status_code", "error_reason", "container_ref"} {
			if _, ok := o[k]; ok {
				t.Errorf("absent key %s present", k)
			}
		}
		secretPath := strings.TrimPrefix(o["secret_ref"].(string), e.url)
		r = e.do("GET", secretPath+"/payload", "", "Accept", "application/octet-stream")
		if r.status != 200 || len(r.body) != 32 {
			t.Fatalf("generated key: %d, %d bytes", r.status, len(r.body))
		}
		r = e.do("GET", secretPath, "")
		if s := r.json(t); s["secret_type"] != "symmetric" || s["bit_length"] != float64(256) || s["name"] != "k" {
			t.Errorf("generated secret %s", r.body)
		}

		// A well-formed order for an unsupported algorithm is an ERROR order.
		r = e.do("POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"des","bit_length":64}}`)
		e.mustStatus(r, http.StatusAccepted)
		r = e.do("GET", strings.TrimPrefix(r.json(t)["order_ref"].(string), e.url), "")
		if o := r.json(t); o["status"] != "ERROR" || o["error_status_code"] != "400" || o["secret_ref"] != nil {
			t.Errorf("unsupported order %s", r.body)
		}

		r = e.do("GET", "/v1/orders", "")
		if r.json(t)["total"] != float64(2) {
			t.Errorf("order list %s", r.body)
		}
		e.mustStatus(e.do("GET", orderPath, "", "X-Project-Id", "alt"), http.StatusNotFound)
		e.mustStatus(e.do("DELETE", orderPath, "", "X-Project-Id", "alt"), http.StatusNotFound)
		e.mustStatus(e.do("DELETE", orderPath, ""), http.StatusNoContent)
		e.mustStatus(e.do("GET", orderPath, ""), http.StatusNotFound)
		// The key outlives its order.
		e.mustStatus(e.do("GET", secretPath, ""), http.StatusOK)
	})
}

// TestBadInput sends each class of malformed request and checks the exact
// status and error body, and that the database did not change.
func TestBadInput(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		existing := e.createSecret(`{"name":"x","payload":"v","payload_content_type":"text/plain"}`)
		twoStep := e.createSecret(`{"name":"y"}`)
		big := strings.Repeat("a", keyservice.MaxPayloadBytes+1)
		tests := []errorCase{
			{"not json", "POST", "/v1/secrets", `{"name":`, nil, 400, "Malformed JSON"},
			{"json array", "POST", "/v1/secrets", `[1,2]`, nil, 400, "Malformed JSON"},
			{"trailing garbage", "POST", "/v1/secrets", `{} {}`, nil, 400, "Malformed JSON"},
			{"invalid utf-8", "POST", "/v1/secrets", "{\"name\":\"\xff\xfe\"}", nil, 400, "Malformed JSON"},
			{"wrong content type", "POST", "/v1/secrets", `{"name":"n"}`, []string{"Content-Type", "text/plain"}, 415, "Unsupported Media Type: the request body must be application/json."},
			{"bit_length string", "POST", "/v1/secrets", `{"bit_length":"256"}`, nil, 400, "Invalid 'bit_length': must be an integer."},
			{"bit_length zero", "POST", "/v1/secrets", `{"bit_length":0}`, nil, 400, "Invalid 'bit_length': must be an integer from 1 to 32767."},
			{"bit_length float", "POST", "/v1/secrets", `{"bit_length":1.5}`, nil, 400, "Invalid 'bit_length': must be an integer from 1 to 32767."},
			{"name too long", "POST", "/v1/secrets", `{"name":"` + strings.Repeat("n", 256) + `"}`, nil, 400, "Invalid name: longer than 255 characters."},
			{"name not string", "POST", "/v1/secrets", `{"name":42}`, nil, 400, "Invalid 'name': must be a string."},
			{"bad secret type", "POST", "/v1/secrets", `{"secret_type":"magic"}`, nil, 400, `Invalid secret_type "magic": must be one of symmetric, public, private, passphrase, certificate, opaque.`},
			{"expiration past", "POST", "/v1/secrets", `{"expiration":"2001-01-01T00:00:00"}`, nil, 400, "Invalid expiration: the date must be in the future."},
			{"expiration garbage", "POST", "/v1/secrets", `{"expiration":"tomorrow"}`, nil, 400, "Invalid date for 'expiration'."},
			{"payload without type", "POST", "/v1/secrets", `{"payload":"x"}`, nil, 400, "If 'payload' is specified, 'payload_content_type' must be too."},
			{"type without payload", "POST", "/v1/secrets", `{"payload_content_type":"text/plain"}`, nil, 400, "If 'payload_content_type' is specified, 'payload' must be too."},
			{"blank payload", "POST", "/v1/secrets", `{"payload":"   ","payload_content_type":"text/plain"}`, nil, 400, "If 'payload' is specified, it must not be empty."},
			{"unknown payload type", "POST", "/v1/secrets", `{"payload":"x","payload_content_type":"image/png"}`, nil, 400, `Invalid payload_content_type "image/png".`},
			{"binary without base64", "POST", "/v1/secrets", `{"payload":"x","payload_content_type":"application/octet-stream"}`, nil, 400, "payload_content_encoding 'base64' is required for binary payloads."},
			{"text with base64", "POST", "/v1/secrets", `{"payload":"eA==","payload_content_type":"text/plain","payload_content_encoding":"base64"}`, nil, 400, "payload_content_encoding is not allowed with text/plain payloads."},
			{"bad encoding", "POST", "/v1/secrets", `{"payload":"x","payload_content_type":"application/octet-stream","payload_content_encoding":"gzip"}`, nil, 400, `Invalid payload_content_encoding "gzip": only 'base64' is supported.`},
			{"bad base64", "POST", "/v1/secrets", `{"payload":"***","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`, nil, 400, "Invalid payload: it is not valid base64."},
			{"payload too large", "POST", "/v1/secrets", `{"payload":"` + big + `","payload_content_type":"text/plain"}`, nil, 413, "Could not add secret data as it was too large."},
			{"body too large", "POST", "/v1/secrets", `{"name":"` + strings.Repeat("n", 30000) + `"}`, nil, 413, "Provided information too large to process."},
			{"no project", "POST", "/v1/secrets", `{"name":"n"}`, []string{"X-Project-Id", ""}, 401, "No-auth mode: the X-Project-Id header is required."},
			{"limit not a number", "GET", "/v1/secrets?limit=ten", "", nil, 400, "Invalid 'limit': must be an integer."},
			{"bad sort key", "GET", "/v1/secrets?sort=payload", "", nil, 400, `Invalid sort key "payload".`},
			{"bad sort direction", "GET", "/v1/secrets?sort=name:up", "", nil, 400, `Invalid sort direction "up": use asc or desc.`},
			{"bad date filter", "GET", "/v1/secrets?created=gt:yesterday", "", nil, 400, `Invalid date filter 'created': "yesterday".`},
			{"unknown secret", "GET", "/v1/secrets/00000000-0000-4000-8000-000000000000", "", nil, 404, "Secret not found."},
			{"not a uuid", "GET", "/v1/secrets/..%2f..%2fetc", "", nil, 404, "Secret not found."},
			{"nul in id", "GET", "/v1/secrets/abc%00def", "", nil, 404, "Secret not found."},
			{"put on full secret", "PUT", "/v1/secrets/" + existing, "v2", []string{"Content-Type", "text/plain"}, 409, "Secret already has data, cannot modify it."},
			{"put bad type", "PUT", "/v1/secrets/" + twoStep, "v2", []string{"Content-Type", "image/png"}, 415, "Unsupported Media Type: the payload must be text/plain or application/octet-stream."},
			{"put invalid utf-8 text", "PUT", "/v1/secrets/" + twoStep, "\xff", []string{"Content-Type", "text/plain"}, 400, "Invalid payload: text/plain data must be UTF-8."},
			{"metadata bad key", "PUT", "/v1/secrets/" + existing + "/metadata", `{"metadata":{"a b":"c"}}`, nil, 400, "Invalid metadata key: use 1-255 letters, digits, '_' or '-'."},
			{"metadata not object", "PUT", "/v1/secrets/" + existing + "/metadata", `{"metadata":[1]}`, nil, 400, `Invalid metadata: expected {"metadata": {"key": "value", ...}}.`},
			{"metadatum missing value", "POST", "/v1/secrets/" + existing + "/metadata", `{"key":"a"}`, nil, 400, "Invalid metadata: 'key' and 'value' are required strings."},
			{"order no type", "POST", "/v1/orders", `{"meta":{"algorithm":"aes","bit_length":256}}`, nil, 400, "Invalid order: 'type' is a required property."},
			{"order bad type", "POST", "/v1/orders", `{"type":"certificate","meta":{}}`, nil, 400, "Invalid order type: must be 'key' or 'asymmetric'."},
			{"order no meta", "POST", "/v1/orders", `{"type":"key"}`, nil, 400, "Invalid order: 'meta' is a required property."},
			{"order no algorithm", "POST", "/v1/orders", `{"type":"key","meta":{"bit_length":256}}`, nil, 400, "Invalid extra data: 'algorithm' is a required property."},
			{"order no bits", "POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes"}}`, nil, 400, "Invalid extra data: 'bit_length' is a required property."},
			{"order odd bits", "POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":129}}`, nil, 400, "Invalid extra data: 'bit_length' must be a positive multiple of 8."},
			{"order bits string", "POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":"256"}}`, nil, 400, "Invalid 'bit_length': must be an integer."},
			{"order past expiration", "POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256,"expiration":"2001-01-01T00:00:00Z"}}`, nil, 400, "Invalid expiration: the date must be in the future."},
			{"unknown route", "GET", "/v1/nothing", "", nil, 404, "The resource could not be found."},
			{"wrong method", "PATCH", "/v1/secrets", "", nil, 405, "The method is not allowed for the requested URL."},
		}
		before := e.rowCounts()
		e.expectErrors(t, tests)
		if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad requests changed the database: %v -> %v", before, after)
		}
	})
}

// errorCase is a request the API refuses, and the error it answers.
type errorCase struct {
	name         string
	method, path string
	body         string
	headers      []string
	status       int
	description  string
}

// expectErrors sends each case's request, in a subtest of its name, and
// checks the answer: its status, and a JSON error body of that code, the
// status's title and the case's description.
func (e *env) expectErrors(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			body := r.json(t)
			if body["code"] != float64(tt.status) || body["title"] != titles[tt.status] || body["description"] != tt.description {
				t.Fatalf("body %s\nwant code %d, title %q, description %q", r.body, tt.status, titles[tt.status], tt.description)
			}
		})
	}
}

var titles = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
	413: "Request Entity Too Large", 415: "Unsupported Media Type", 406: "Not Acceptable",
}
