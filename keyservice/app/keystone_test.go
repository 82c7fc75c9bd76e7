package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/metrics/metricstest"
	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/manage"
)

// keystoneServer starts arca-api in keystone mode against the real
// Keystone, on a fresh MariaDB database, with extra config appended.
func keystoneServer(t *testing.T, env *testenv.KeystoneEnv, extra string) *testenv.API {
	t.Helper()
	authtoken := "\n" + env.AuthtokenSection() + "token_cache_time = 300\n" + extra
	return testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: databases(t)["mysql"], AuthStrategy: "keystone", Extra: authtoken})
}

// tokenRequest sends method base+path with token as X-Auth-Token (when
// set), body as JSON (when set) and headers (name, value pairs), and
// returns the answer and its body, read and closed.
func tokenRequest(t *testing.T, base, method, path, token, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// registerInFreshRegion puts srv in the catalog as a key-manager service
// of its own name in a region of its own, so tests running side by side
// never see each other's endpoints, and removes both when the test ends.
func registerInFreshRegion(t *testing.T, env *testenv.KeystoneEnv, srv *testenv.API) string {
	t.Helper()
	tag := testenv.RandomHex(t, 4)
	region, name := "ArcaTest-"+tag, "arca-app-"+tag
	admin := env.Client(t, testenv.UserAdmin)
	ctx := context.Background()
	env.ShareKeyManagers(t)
	t.Cleanup(func() { env.RemoveRegion(t, region, name) })
	res, err := manage.Register(ctx, admin, manage.RegisterOptions{Region: region, Name: name, PublicURL: srv.URL})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	// Registering again changes nothing.
	again, err := manage.Register(ctx, admin, manage.RegisterOptions{Region: region, Name: name, PublicURL: srv.URL})
	if err != nil || len(again.Created) != 0 || again.ServiceID != res.ServiceID {
		t.Fatalf("second register: %+v, %v", again, err)
	}
	return region
}

// openstackCLI runs the real openstack CLI as a Keystone user.
func openstackCLI(t *testing.T, env *testenv.KeystoneEnv, who, region string) func(args ...string) (string, error) {
	vars := env.OpenRC(who, region)
	return func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, errOut, err := testenv.RunOutputs(ctx, vars, "openstack", args...)
		if err != nil {
			return out, fmt.Errorf("openstack %s: %v: %s", strings.Join(args, " "), err, errOut)
		}
		return out, nil
	}
}

func mustCLI(t *testing.T, run func(...string) (string, error), args ...string) string {
	t.Helper()
	out, err := run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeystoneCatalogRealStack registers arca-api in the real Keystone's
// catalog and drives it with the real openstack CLI as Keystone users.
func TestKeystoneCatalogRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	region := registerInFreshRegion(t, env, srv)
	demo := openstackCLI(t, env, testenv.UserDemo, region)

	ref := mustCLI(t, demo, "secret", "store", "--name", "ks-secret", "--payload", "member-can-store", "-f", "value", "-c", "Secret href")
	if !strings.HasPrefix(ref, srv.URL+"/v1/secrets/") {
		t.Fatalf("secret href %q", ref)
	}
	if got := mustCLI(t, demo, "secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "member-can-store" {
		t.Fatalf("payload %q", got)
	}
	later := mustCLI(t, demo, "secret", "store", "--name", "ks-later", "-f", "value", "-c", "Secret href")
	mustCLI(t, demo, "secret", "update", later, "second-step")
	if got := mustCLI(t, demo, "secret", "get", "--payload", later, "-f", "value", "-c", "Payload"); got != "second-step" {
		t.Fatalf("updated payload %q", got)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, demo, "secret", "list", "-f", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("secret list: %v %v", list, err)
	}
	orderRef := mustCLI(t, demo, "secret", "order", "create", "--algorithm", "aes", "--bit-length", "256", "--name", "ks-key", "key", "-f", "value", "-c", "Order href")
	var order map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, demo, "secret", "order", "get", orderRef, "-f", "json")), &order); err != nil {
		t.Fatal(err)
	}
	if order["Status"] != "ACTIVE" || order["Secret href"] == nil {
		t.Fatalf("order %v", order)
	}
	if out := mustCLI(t, demo, "secret", "order", "list", "-f", "value", "-c", "Order href"); !strings.Contains(out, orderRef) {
		t.Fatalf("order list %q", out)
	}

	// Isolation: alt sees nothing of demo's, through the same catalog.
	alt := openstackCLI(t, env, testenv.UserAlt, region)
	if _, err := alt("secret", "get", "--payload", ref); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("alt read demo's payload: %v", err)
	}
	if _, err := alt("secret", "order", "get", orderRef); err == nil || !strings.Contains(err.Error(), "Not Found") {
		t.Fatalf("alt read demo's order: %v", err)
	}
	if out := mustCLI(t, alt, "secret", "list", "-f", "value"); out != "" {
		t.Fatalf("alt lists demo's secrets: %q", out)
	}

	mustCLI(t, demo, "secret", "order", "delete", orderRef)
	mustCLI(t, demo, "secret", "delete", ref)
	if _, err := demo("secret", "get", ref); err == nil {
		t.Fatal("deleted secret still readable")
	}
}

// TestKeystoneTokensRealStack checks token handling without the CLI.
func TestKeystoneTokensRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	demoToken, demoProject := env.ScopedToken(t, testenv.UserDemo)

	request := func(method, path, token, body string, headers ...string) (int, http.Header, string) {
		t.Helper()
		resp, b := tokenRequest(t, srv.URL, method, path, token, body, headers...)
		return resp.StatusCode, resp.Header, string(b)
	}

	// Forged identity headers are ignored: the secret lands in demo's project.
	status, _, body := request("POST", "/v1/secrets", demoToken, `{"name":"forged","payload":"x","payload_content_type":"text/plain"}`,
		"X-Project-Id", "alt", "X-Roles", "admin,key-manager:service-admin", "X-User-Id", "mallory")
	if status != http.StatusCreated {
		t.Fatalf("store with forged headers: %d %s", status, body)
	}
	var created map[string]string
	_ = json.Unmarshal([]byte(body), &created)
	id := created["secret_ref"][strings.LastIndex(created["secret_ref"], "/")+1:]
	altToken := env.Token(t, testenv.UserAlt)
	if status, _, _ := request("GET", "/v1/secrets/"+id, altToken, ""); status != http.StatusForbidden {
		t.Fatalf("alt GET of demo's secret: %d", status)
	}
	status, _, body = request("GET", "/v1/secrets/"+id, demoToken, "")
	if status != http.StatusOK || strings.Contains(body, "mallory") {
		t.Fatalf("demo GET: %d %s", status, body)
	}

	// X-Service-Token: it is validated (a bogus one is a 401) but grants
	// nothing on project keys: the payload rule and ?project_id= of another
	// project need the object servers' or the filter's own role, which no
	// user token of demo's carries, whatever service token comes along
	// (scope_test.go has the roles that do pass).
	status, _, body = request("GET", "/v1/project-keys/active", demoToken, "")
	if status != http.StatusOK {
		t.Fatalf("demo's active key: %d %s", status, body)
	}
	var key struct {
		KeyID     string `json:"key_id"`
		ProjectID string `json:"project_id"`
		BitLength int    `json:"bit_length"`
	}
	if err := json.Unmarshal([]byte(body), &key); err != nil || key.KeyID == "" || key.ProjectID != demoProject {
		t.Fatalf("demo's active key: %v %s", err, body)
	}
	_, altProject := env.ScopedToken(t, testenv.UserAlt)
	serviceToken := env.Token(t, testenv.UserArca)
	payload := "/v1/project-keys/" + key.KeyID + "/payload"
	others := "/v1/project-keys/active?project_id=" + altProject
	serviceCases := []struct {
		name, path, serviceToken string
		want                     int
	}{
		{"payload without a service token", payload, "", http.StatusForbidden},
		{"payload with demo's own token as service token", payload, demoToken, http.StatusForbidden},
		{"payload with a bogus service token", payload, "gAAAAABbogus-service-token-" + testenv.RandomHex(t, 8), http.StatusUnauthorized},
		{"payload with the service token", payload, serviceToken, http.StatusForbidden},
		{"other project's key without a service token", others, "", http.StatusForbidden},
		{"other project's key with a bogus service token", others, "not-a-service-token", http.StatusUnauthorized},
		{"other project's key with the service token", others, serviceToken, http.StatusForbidden},
	}
	for _, c := range serviceCases {
		var extra []string
		if c.serviceToken != "" {
			extra = []string{"X-Service-Token", c.serviceToken}
		}
		status, header, body := request("GET", c.path, demoToken, "", extra...)
		if status != c.want {
			t.Errorf("%s: %d %.200s, want %d", c.name, status, body, c.want)
			continue
		}
		switch {
		case status == http.StatusUnauthorized:
			if want := `Keystone uri="` + env.URL + `"`; header.Get("WWW-Authenticate") != want {
				t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, header.Get("WWW-Authenticate"), want)
			}
		case status == http.StatusOK && c.path == payload:
			if len(body) != key.BitLength/8 || len(body) < 16 || header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d bytes of key, Cache-Control %q", c.name, len(body), header.Get("Cache-Control"))
			}
		case status == http.StatusOK:
			var other struct {
				ProjectID string `json:"project_id"`
			}
			if json.Unmarshal([]byte(body), &other) != nil || other.ProjectID != altProject {
				t.Errorf("%s: %s, want alt's project %s", c.name, body, altProject)
			}
		}
	}

	unauthorized := []struct{ name, token string }{
		{"no token", ""},
		{"garbage", "not-a-token"},
		{"oversized", strings.Repeat("A", 10000)},
		{"truncated", demoToken[:len(demoToken)/2]},
	}
	for _, u := range unauthorized {
		status, header, body := request("GET", "/v1/secrets", u.token, "")
		if status != http.StatusUnauthorized {
			t.Errorf("%s: status %d", u.name, status)
			continue
		}
		if want := `Keystone uri="` + env.URL + `"`; header.Get("WWW-Authenticate") != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", u.name, header.Get("WWW-Authenticate"), want)
		}
		var e map[string]any
		if json.Unmarshal([]byte(body), &e) != nil || e["code"] != float64(401) || e["title"] != "Unauthorized" {
			t.Errorf("%s: body %s", u.name, body)
		}
	}
	// A token revoked before arca-api ever saw it is refused.
	revoked := env.Token(t, testenv.UserDemo)
	env.Revoke(t, revoked)
	if status, _, _ := request("GET", "/v1/secrets", revoked, ""); status != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", status)
	}
	// Discovery stays open, as in Barbican.
	if status, _, _ := request("GET", "/", "", ""); status != http.StatusMultipleChoices {
		t.Fatalf("GET / without token: %d", status)
	}
	for _, tok := range []string{demoToken, serviceToken} {
		if strings.Contains(srv.Logs(), tok) {
			t.Fatal("a token reached the logs")
		}
	}
}

// shortLivedToken issues a token for demo, scoped to demo's project, that
// Keystone lets live for about lifetime: it authenticates with an
// application credential expiring then, and Keystone caps a token's
// expires_at at its application credential's. It returns the token and the
// expires_at Keystone put in it.
func shortLivedToken(t *testing.T, env *testenv.KeystoneEnv, lifetime time.Duration) (string, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	demo := env.Client(t, testenv.UserDemo)
	user, err := tokens.Get(ctx, demo, demo.Token()).ExtractUser()
	if err != nil {
		t.Fatalf("demo's user: %v", err)
	}
	credExpiry := time.Now().Add(lifetime).UTC()
	cred, err := applicationcredentials.Create(ctx, demo, user.ID, applicationcredentials.CreateOpts{
		Name: "arca-expiry-" + testenv.RandomHex(t, 4), ExpiresAt: &credExpiry,
	}).Extract()
	if err != nil {
		t.Fatalf("application credential: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := applicationcredentials.Delete(ctx, env.Client(t, testenv.UserDemo), user.ID, cred.ID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: application credential %s: %v", cred.ID, err)
		}
	})
	pc, err := openstack.NewClient(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	res := tokens.Create(ctx, ic, &gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: cred.Secret})
	id, err := res.ExtractTokenID()
	if err != nil {
		t.Fatalf("token from the application credential: %v", err)
	}
	// Such a token's expires_at is the credential's as Keystone stored it,
	// without a zone ("2026-01-02T15:04:05.123456", UTC), which
	// gophercloud's ExtractToken cannot parse: read it as a string.
	var body struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
		}
	}
	if err := res.ExtractInto(&body.Token); err != nil { // unwraps "token"
		t.Fatalf("token from the application credential: %v", err)
	}
	expires, err := time.Parse(time.RFC3339Nano, body.Token.ExpiresAt)
	if err != nil {
		expires, err = time.ParseInLocation("2006-01-02T15:04:05.999999", body.Token.ExpiresAt, time.UTC)
	}
	if err != nil {
		t.Fatalf("the token's expires_at %q: %v", body.Token.ExpiresAt, err)
	}
	// Capped at the credential's expiry (stored to the microsecond or the
	// second), far below the default lifetime of hours.
	if expires.After(credExpiry.Add(time.Second)) || expires.Before(credExpiry.Add(-time.Second)) {
		t.Fatalf("Keystone did not cap the token's expires_at %s at the application credential's %s", expires, credExpiry)
	}
	return id, expires
}

// TestExpiredTokenRealStack uses a real Keystone token that expires within
// seconds: accepted while valid (the second time from arca-api's token
// cache, set to 300 s), refused with 401 and the WWW-Authenticate challenge
// once it has lapsed; the cached validation does not outlive the token.
func TestExpiredTokenRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "\n[metrics]\nbind =\n") // /metrics on the service port
	token, expires := shortLivedToken(t, env, 8*time.Second)
	t.Logf("token expires in %.1fs (%s)", time.Until(expires).Seconds(), expires.Format(time.RFC3339Nano))

	get := func() (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/secrets", nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	cacheHits := func() float64 {
		return metricstest.Scrape(t, srv.URL+"/metrics").Value("arca_token_cache_hits_total")
	}
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("the short-lived token while valid: %d", code)
	}
	hits := cacheHits()
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("the short-lived token again while valid: %d", code)
	}
	if got := cacheHits() - hits; got != 1 {
		t.Fatalf("the second use moved the token cache hits by %v, want 1 (the validation was not cached)", got)
	}
	if left := time.Until(expires); left < time.Second {
		t.Fatalf("the token was used with %.1fs left: too slow a stack to be sure the uses came before its expiry", left.Seconds())
	}

	time.Sleep(time.Until(expires) + time.Second)
	hits = cacheHits()
	for i := range 2 {
		code, header := get()
		if code != http.StatusUnauthorized {
			t.Fatalf("expired token, request %d: %d, want 401", i+1, code)
		}
		if want := `Keystone uri="` + env.URL + `"`; header.Get("WWW-Authenticate") != want {
			t.Errorf("expired token: WWW-Authenticate %q, want %q", header.Get("WWW-Authenticate"), want)
		}
	}
	// The first refusal asked Keystone (the cached validation had lapsed
	// with the token); the second was the remembered refusal.
	if got := cacheHits() - hits; got != 1 {
		t.Errorf("the expired token's two uses moved the cache hits by %v, want 1", got)
	}
}

// TestPolicyOverrideRealStack flips one rule in a policy.yaml and sees the
// change take effect for a real Keystone user.
func TestPolicyOverrideRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("\"secrets:post\": \"role:admin\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := keystoneServer(t, env, "\n[oslo_policy]\npolicy_file = "+policyFile+"\n")
	post := func(token string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/secrets", strings.NewReader(`{"name":"p"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(env.Token(t, testenv.UserDemo)); got != http.StatusForbidden {
		t.Fatalf("member stored a secret against the override: %d", got)
	}
	if got := post(env.Token(t, testenv.UserAdmin)); got != http.StatusCreated {
		t.Fatalf("admin could not store: %d", got)
	}
}

// TestRegisterReplaceRealStack runs arca-manage register, as an operator
// with the admin's openrc, in a private region: a second key-manager
// service is refused while the first has endpoints there, with a message
// naming --replace; with --replace the second's public, internal and admin
// endpoints are the region's only key-manager endpoints; a /v1 URL is
// refused before anything is created.
func TestRegisterReplaceRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	tag := testenv.RandomHex(t, 4)
	region := "ArcaRegister-" + tag
	first, second := "arca-reg-a-"+tag, "arca-reg-b-"+tag
	env.ShareKeyManagers(t)
	t.Cleanup(func() {
		env.RemoveRegion(t, region, first)
		env.RemoveRegion(t, region, second)
	})
	conf := filepath.Join(t.TempDir(), "arca.conf")
	if err := os.WriteFile(conf, []byte("[DEFAULT]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(testenv.Binaries(t), "arca-manage")
	register := func(args ...string) (string, error) {
		t.Helper()
		return testenv.Run(env.OpenRC(testenv.UserAdmin, env.Region), "", bin, append([]string{"--config-file", conf, "register", "--region", region}, args...)...)
	}
	const urlA, urlB = "http://127.0.0.1:19311", "http://127.0.0.1:29311"

	if out, err := register("--name", first, "--url", urlA); err != nil || !strings.Contains(out, "created region "+region) {
		t.Fatalf("register %s: %v\n%s", first, err, out)
	}
	out, err := register("--name", second, "--url", urlB)
	if err == nil {
		t.Fatalf("a second key-manager service was registered over the first:\n%s", out)
	}
	for _, part := range []string{"another key-manager service is registered in this region", `"` + first + `"`, "--replace"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("the refusal does not say %q: %v", part, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := env.Client(t, testenv.UserAdmin)
	serviceID := func(name string) string {
		t.Helper()
		pages, err := services.List(admin, services.ListOpts{Name: name}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		svcs, err := services.ExtractServices(pages)
		if err != nil || len(svcs) > 1 {
			t.Fatalf("services named %s: %v %v", name, svcs, err)
		}
		if len(svcs) == 0 {
			return ""
		}
		if svcs[0].Type != manage.ServiceType {
			t.Errorf("service %s has type %q", name, svcs[0].Type)
		}
		return svcs[0].ID
	}
	// regionEndpoints maps service id -> interface -> URL in the region.
	regionEndpoints := func() map[string]map[string]string {
		t.Helper()
		pages, err := endpoints.List(admin, endpoints.ListOpts{RegionID: region}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := endpoints.ExtractEndpoints(pages)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]map[string]string{}
		for _, ep := range eps {
			if m[ep.ServiceID] == nil {
				m[ep.ServiceID] = map[string]string{}
			}
			m[ep.ServiceID][string(ep.Availability)] = ep.URL
		}
		return m
	}
	all := func(url string) map[string]string {
		return map[string]string{"public": url, "internal": url, "admin": url}
	}
	idA := serviceID(first)
	if got := regionEndpoints(); len(got) != 1 || !maps.Equal(got[idA], all(urlA)) || serviceID(second) != "" {
		t.Fatalf("after the refusal the region holds %v (want only %s's %v)", got, first, all(urlA))
	}

	out, err = register("--name", second, "--url", urlB, "--replace")
	if err != nil {
		t.Fatalf("register --replace: %v\n%s", err, out)
	}
	idB := serviceID(second)
	if got := regionEndpoints(); len(got) != 1 || !maps.Equal(got[idB], all(urlB)) {
		t.Fatalf("after --replace the region holds %v, want only %s (%s): %v", got, second, idB, all(urlB))
	}
	if !strings.Contains(out, "deleted public endpoint "+urlA) || !strings.Contains(out, `created service "`+second+`"`) {
		t.Errorf("register --replace does not report what it did:\n%s", out)
	}
	// Again: nothing to do.
	if out, err := register("--name", second, "--url", urlB); err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("register again: %v\n%s", err, out)
	}

	// A versioned URL is refused before anything is created.
	versioned := "ArcaRegisterV1-" + tag
	t.Cleanup(func() { env.RemoveRegion(t, versioned, "") })
	out, err = testenv.Run(env.OpenRC(testenv.UserAdmin, env.Region), "", bin, "--config-file", conf,
		"register", "--region", versioned, "--name", second, "--url", urlB+"/v1/")
	if err == nil || !strings.Contains(err.Error(), "must be unversioned") {
		t.Fatalf("a /v1 URL: %v\n%s", err, out)
	}
	if _, err := regions.Get(ctx, admin, versioned).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("the refused registration created region %s: %v", versioned, err)
	}
}
