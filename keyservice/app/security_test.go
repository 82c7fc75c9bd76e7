package app_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// recorder sends requests to one arca-api and keeps every response, so a
// test can scan all of them afterwards.
type recorder struct {
	t   *testing.T
	url string
	mu  sync.Mutex
	all []string // status line, headers and body of every response
}

func (r *recorder) do(method, path, token, body string, headers ...string) (int, []byte) {
	r.t.Helper()
	resp, b := tokenRequest(r.t, r.url, method, path, token, body, headers...)
	var h strings.Builder
	_ = resp.Header.Write(&h)
	r.mu.Lock()
	r.all = append(r.all, resp.Status+"\n"+h.String()+"\n"+string(b))
	r.mu.Unlock()
	return resp.StatusCode, b
}

func refID(t *testing.T, body []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	ref, _ := m[field].(string)
	if ref == "" {
		t.Fatalf("no %s in %s", field, body)
	}
	return ref[strings.LastIndex(ref, "/")+1:]
}

// projectOf asks Keystone which project a token is scoped to.
func projectOf(t *testing.T, env *testenv.KeystoneEnv, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", env.URL+"/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("X-Subject-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token.Project.ID == "" {
		t.Fatalf("validating a token: %v (status %d)", err, resp.StatusCode)
	}
	return body.Token.Project.ID
}

// TestCVE20223100QueryCannotSteerPolicy is Barbican's CVE-2022-3100
// regression: there, query parameters were merged into the policy
// enforcement target, so a user could name another project (or the
// secret's project) in the URL and pass the owner check. Here alt tries to
// reach demo's secret and demo's project keys with every such parameter
// (and forged identity headers) and must get 403 each time, and demo's
// secret must come through untouched.
func TestCVE20223100QueryCannotSteerPolicy(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	r := &recorder{t: t, url: srv.URL}
	demo, alt := env.Token(t, testenv.UserDemo), env.Token(t, testenv.UserAlt)
	demoProject, altProject := projectOf(t, env, demo), projectOf(t, env, alt)

	status, body := r.do("POST", "/v1/secrets", demo, `{"name":"cve","payload":"cve-2022-3100-canary","payload_content_type":"text/plain"}`)
	if status != http.StatusCreated {
		t.Fatalf("demo store: %d %s", status, body)
	}
	id := refID(t, body, "secret_ref")
	if status, body := r.do("GET", "/v1/project-keys/active", demo, ""); status != http.StatusOK {
		t.Fatalf("demo active project key: %d %s", status, body)
	}

	queries := []string{
		"project_id=" + demoProject,
		"target.secret.project_id=" + altProject,
		"target.secret.project_id=" + demoProject,
		"target.project_id=" + altProject,
		"target.secret.read=public&target.secret.project_access=true",
		"secret.project_id=" + altProject + "&project_id=" + altProject,
		"target.secret.creator_id=alt&creator_id=alt",
		"role=admin&roles=admin,key-manager:service-admin&is_admin=true",
	}
	forged := []string{"X-Project-Id", demoProject, "X-Roles", "admin,key-manager:service-admin", "X-Identity-Status", "Confirmed", "X-Service-Roles", "service"}
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/secrets/" + id, ""},
		{"GET", "/v1/secrets/" + id + "/payload", ""},
		{"GET", "/v1/secrets/" + id + "/metadata", ""},
		{"PUT", "/v1/secrets/" + id + "/metadata", `{"metadata":{"owned":"by-alt"}}`},
		{"DELETE", "/v1/secrets/" + id, ""},
		{"GET", "/v1/project-keys/active?project_id=" + demoProject, ""},
		{"POST", "/v1/project-keys/rotate?project_id=" + demoProject, ""},
		{"GET", "/v1/project-keys?project_id=" + demoProject, ""},
	}
	for _, rt := range routes {
		for _, q := range queries {
			sep := "?"
			if strings.Contains(rt.path, "?") {
				sep = "&"
			}
			for _, headers := range [][]string{nil, forged} {
				status, body := r.do(rt.method, rt.path+sep+q, alt, rt.body, headers...)
				// A repeated project_id is refused before policy (400).
				dup := strings.Count(rt.path+sep+q, "project_id=") > 1 && strings.Contains(string(body), "Invalid 'project_id'")
				if status != http.StatusForbidden && (status != http.StatusBadRequest || !dup) {
					t.Errorf("alt %s %s%s%s (forged headers: %v): %d, want 403: %s", rt.method, rt.path, sep, q, headers != nil, status, body)
				}
			}
		}
	}
	// Listing with another project's id still lists alt's own secrets.
	for _, q := range queries {
		status, body := r.do("GET", "/v1/secrets?"+q, alt, "", forged...)
		if status != http.StatusOK || strings.Contains(string(body), id) {
			t.Errorf("alt GET /v1/secrets?%s: %d %s", q, status, body)
		}
	}
	// Forged identity headers without a token are not an identity.
	if status, _ := r.do("GET", "/v1/secrets/"+id, "", "", forged...); status != http.StatusUnauthorized {
		t.Errorf("forged headers without a token: %d, want 401", status)
	}
	status, body = r.do("GET", "/v1/secrets/"+id+"/payload", demo, "", "Accept", "text/plain")
	if status != http.StatusOK || string(body) != "cve-2022-3100-canary" {
		t.Fatalf("demo's secret after the attempts: %d %q", status, body)
	}
	if status, body := r.do("GET", "/v1/secrets/"+id+"/metadata", demo, ""); status != http.StatusOK || strings.Contains(string(body), "by-alt") {
		t.Fatalf("demo's metadata after the attempts: %d %s", status, body)
	}
	if status, body := r.do("GET", "/v1/project-keys?project_id="+demoProject, demo, ""); status != http.StatusOK || strings.Count(string(body), `"key_id"`) != 1 {
		t.Fatalf("demo's project keys after the attempts (no rotation expected): %d %s", status, body)
	}
}

// TestSecretsStayOutOfLogs drives secrets (text, binary, two-step), orders,
// project keys (as the service user) and failing requests through arca-api
// with debug = true, then scans everything it logged and every response
// that was not the payload itself for each payload, generated key, project
// key, master key, token and password the scenario used, in plain, base64
// and hex spellings.
func TestSecretsStayOutOfLogs(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	r := &recorder{t: t, url: srv.URL}
	demo, alt, arca := env.Token(t, testenv.UserDemo), env.Token(t, testenv.UserAlt), env.Token(t, testenv.UserArca)
	// The object servers' user reads key material; a system-scoped admin rotates.
	object, system := env.Token(t, testenv.UserArcaObject), env.SystemToken(t, testenv.UserAdmin)
	demoProject := projectOf(t, env, demo)

	var secrets [][]byte // every secret value, as bytes
	canary := func() string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		s := "canary-" + hex.EncodeToString(b)
		secrets = append(secrets, []byte(s))
		return s
	}
	binary := make([]byte, 32)
	_, _ = rand.Read(binary)
	secrets = append(secrets, binary)

	mustStatus := func(want, got int, body []byte, what string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %d, want %d: %s", what, got, want, body)
		}
	}
	var payloadResponses = map[int]bool{} // indexes of responses that are a payload on purpose
	payload := func(path, token, accept string) []byte {
		t.Helper()
		status, body := r.do("GET", path, token, "", "Accept", accept)
		mustStatus(200, status, body, "GET "+path)
		r.mu.Lock()
		payloadResponses[len(r.all)-1] = true
		r.mu.Unlock()
		return body
	}

	// Text secret, one step.
	text := canary()
	status, body := r.do("POST", "/v1/secrets", demo, `{"name":"t","payload":"`+text+`","payload_content_type":"text/plain"}`)
	mustStatus(201, status, body, "store text")
	textID := refID(t, body, "secret_ref")
	if got := payload("/v1/secrets/"+textID+"/payload", demo, "text/plain"); string(got) != text {
		t.Fatalf("text payload %q", got)
	}
	// Binary secret, base64.
	status, body = r.do("POST", "/v1/secrets", demo, `{"name":"b","payload":"`+base64.StdEncoding.EncodeToString(binary)+
		`","payload_content_type":"application/octet-stream","payload_content_encoding":"base64","secret_type":"symmetric","algorithm":"aes","bit_length":256}`)
	mustStatus(201, status, body, "store binary")
	binID := refID(t, body, "secret_ref")
	payload("/v1/secrets/"+binID+"/payload", demo, "application/octet-stream")
	// Two-step secret.
	status, body = r.do("POST", "/v1/secrets", demo, `{"name":"two"}`)
	mustStatus(201, status, body, "create two-step")
	twoID := refID(t, body, "secret_ref")
	two := canary()
	status, body = r.do("PUT", "/v1/secrets/"+twoID, demo, two, "Content-Type", "text/plain")
	mustStatus(204, status, body, "put two-step")
	payload("/v1/secrets/"+twoID+"/payload", demo, "text/plain")
	// Failing requests that carry secrets: the error must not echo them.
	leakyBad := []struct{ method, path, token, body, ctype string }{
		{"PUT", "/v1/secrets/" + textID, demo, canary(), "text/plain"},                                                                                                              // already has data
		{"POST", "/v1/secrets", demo, `{"payload":"` + canary() + `","payload_content_type":"image/png"}`, "application/json"},                                                      // bad type
		{"POST", "/v1/secrets", demo, `{"payload":"` + canary() + `!!","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`, "application/json"}, // bad base64
		{"POST", "/v1/secrets", demo, `{"payload":"` + canary() + `","payload_content_type":"text/plain","name":`, "application/json"},                                              // malformed JSON
		{"POST", "/v1/secrets", demo, `{"payload":"` + canary() + `","payload_content_type":"text/plain","bit_length":"x"}`, "application/json"},                                    // bad field
		{"POST", "/v1/secrets", "not-a-token-" + canary(), `{"payload":"` + canary() + `","payload_content_type":"text/plain"}`, "application/json"},
		{"PUT", "/v1/secrets/" + twoID, alt, canary(), "text/plain"}, // someone else's secret
		{"GET", "/v1/secrets/" + textID + "/payload", alt, "", ""},
	}
	for _, b := range leakyBad {
		status, body := r.do(b.method, b.path, b.token, b.body, "Content-Type", b.ctype)
		if status < 400 || status >= 500 {
			t.Errorf("%s %s: %d, want a 4xx: %s", b.method, b.path, status, body)
		}
	}
	// An order generates a key; read it to learn the material.
	status, body = r.do("POST", "/v1/orders", demo, `{"type":"key","meta":{"algorithm":"aes","bit_length":256,"mode":"cbc","payload_content_type":"application/octet-stream"}}`)
	mustStatus(202, status, body, "order")
	orderID := refID(t, body, "order_ref")
	status, body = r.do("GET", "/v1/orders/"+orderID, demo, "")
	mustStatus(200, status, body, "get order")
	generated := payload("/v1/secrets/"+refID(t, body, "secret_ref")+"/payload", demo, "application/octet-stream")
	secrets = append(secrets, generated)
	// Project keys: the object servers' user reads demo's active key, a
	// system admin rotates it, and the object servers' user reads the new one.
	for range 2 {
		status, body = r.do("GET", "/v1/project-keys/active?project_id="+demoProject, object, "")
		mustStatus(200, status, body, "active project key")
		keyID := refID(t, body, "key_ref")
		secrets = append(secrets, payload("/v1/project-keys/"+keyID+"/payload?project_id="+demoProject, object, "application/octet-stream"))
		status, body = r.do("POST", "/v1/project-keys/rotate?project_id="+demoProject, system, "")
		if status != 200 && status != 201 {
			t.Fatalf("rotate: %d %s", status, body)
		}
	}
	// demo may not read key material.
	status, _ = r.do("GET", "/v1/project-keys/active", demo, "")
	mustStatus(200, status, nil, "demo active key")

	// Needles: every secret in several spellings, master keys, tokens,
	// passwords.
	var needles []string
	for _, s := range secrets {
		needles = append(needles, base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s),
			hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)))
		if isPrintable(s) {
			needles = append(needles, string(s))
		}
	}
	keyFile, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.Fields(string(keyFile)) {
		if len(field) >= 32 {
			needles = append(needles, field)
			if raw, err := base64.StdEncoding.DecodeString(field); err == nil {
				needles = append(needles, hex.EncodeToString(raw))
			}
		}
	}
	needles = append(needles, demo, alt, arca, object, system, env.ServiceConfig().Password)
	for _, u := range env.Users {
		needles = append(needles, u.Password)
	}
	haystacks := map[string]string{"arca-api logs": srv.Logs()}
	r.mu.Lock()
	for i, resp := range r.all {
		if !payloadResponses[i] {
			haystacks["response "+firstLine(resp)+" #"+itoa(i)] = resp
		}
	}
	r.mu.Unlock()
	leaks := 0
	for where, text := range haystacks {
		for _, n := range needles {
			if len(n) >= 8 && strings.Contains(text, n) {
				leaks++
				t.Errorf("%s contains a secret (%.12s...)", where, n)
			}
		}
	}
	t.Logf("scanned %d bytes of logs and %d responses for %d needles: %d leaks", len(srv.Logs()), len(haystacks)-1, len(needles), leaks)
	// debug = true (testenv's configuration) sets the level to debug; the
	// request path logs few debug lines today, so this also guards the
	// ones added later.
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
