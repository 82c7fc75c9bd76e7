package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/testenv"
)

// TestContainersAndACLsRealStack drives containers and ACLs with the real
// openstack CLI through the catalog as demo, and checks with alt's real
// token that alt reaches nothing of demo's until an ACL grants it read,
// and then exactly read. The isolation checks go over HTTP with the token
// (each CLI call costs seconds); one read goes through alt's CLI too.
func TestContainersAndACLsRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	region := registerInFreshRegion(t, env, srv)
	demo := openstackCLI(t, env, testenv.UserDemo, region)
	altCLI := openstackCLI(t, env, testenv.UserAlt, region)
	demoToken, altToken := env.Token(t, testenv.UserDemo), env.Token(t, testenv.UserAlt)

	altClient := env.Client(t, testenv.UserAlt)
	altUser, err := tokens.Get(context.Background(), altClient, altToken).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}

	request := func(token, method, url, body string) (int, string) {
		t.Helper()
		code, b := testenv.Do(t, method, url, body, map[string]string{"X-Auth-Token": token})
		return code, string(b)
	}
	create := func(path, body, refKey string) string {
		t.Helper()
		status, out := request(demoToken, "POST", srv.URL+path, body)
		var m map[string]string
		if (status != http.StatusCreated && status != http.StatusAccepted) || json.Unmarshal([]byte(out), &m) != nil || m[refKey] == "" {
			t.Fatalf("POST %s: %d %s", path, status, out)
		}
		return m[refKey]
	}
	secretRef := create("/v1/secrets", `{"name":"acl-secret","payload":"shared-by-demo","payload_content_type":"text/plain"}`, "secret_ref")
	orderRef := create("/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`, "order_ref")

	// Containers through the CLI.
	containerRef := mustCLI(t, demo, "secret", "container", "create", "--name", "cli-box", "--type", "generic",
		"--secret", "one="+secretRef, "-f", "value", "-c", "Container href")
	if !strings.HasPrefix(containerRef, srv.URL+"/v1/containers/") {
		t.Fatalf("container href %q", containerRef)
	}
	if out := mustCLI(t, demo, "secret", "container", "list", "-f", "value", "-c", "Container href"); !strings.Contains(out, containerRef) {
		t.Fatalf("container list %q", out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, demo, "secret", "container", "get", containerRef, "-f", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got["Name"] != "cli-box" || got["Type"] != "generic" || !strings.Contains(fmtAny(got["Secrets"]), secretRef) {
		t.Fatalf("container get %v", got)
	}

	// alt: nothing of demo's, whatever the method.
	type probe struct {
		method, url, body string
		want              []int
	}
	denied := []int{http.StatusForbidden, http.StatusNotFound}
	check := func(stage string, probes []probe) {
		t.Helper()
		for _, p := range probes {
			status, body := request(altToken, p.method, p.url, p.body)
			ok := false
			for _, w := range p.want {
				ok = ok || status == w
			}
			if !ok {
				t.Errorf("%s: alt %s %s: %d %s, want one of %v", stage, p.method, p.url, status, body, p.want)
			}
		}
	}
	writesDenied := []probe{
		{"DELETE", secretRef, "", denied},
		{"PUT", secretRef + "/acl", `{"read":{"users":["x"]}}`, denied},
		{"GET", secretRef + "/acl", "", denied},
		{"PUT", secretRef + "/metadata", `{"metadata":{"a":"b"}}`, denied},
		{"DELETE", containerRef, "", denied},
		{"POST", containerRef + "/secrets", `{"name":"x","secret_ref":"` + secretRef + `"}`, denied},
		{"GET", orderRef, "", denied},
		{"DELETE", orderRef, "", denied},
	}
	check("before any ACL", append([]probe{
		{"GET", secretRef, "", denied},
		{"GET", secretRef + "/payload", "", denied},
		{"GET", containerRef, "", denied},
	}, writesDenied...))
	if _, err := altCLI("secret", "get", "--payload", secretRef); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("alt read demo's payload without an ACL: %v", err)
	}

	// An ACL on the secret: alt reads it, and only reads.
	mustCLI(t, demo, "acl", "submit", "--user", altUser.ID, secretRef)
	if out := mustCLI(t, demo, "acl", "get", secretRef, "-f", "json"); !strings.Contains(out, altUser.ID) {
		t.Fatalf("acl get %s", out)
	}
	if got := mustCLI(t, altCLI, "secret", "get", "--payload", secretRef, "-f", "value", "-c", "Payload"); got != "shared-by-demo" {
		t.Fatalf("alt's payload through the ACL %q", got)
	}
	check("secret ACL", append([]probe{
		{"GET", secretRef, "", []int{http.StatusOK}},
		{"GET", containerRef, "", denied},
	}, writesDenied...))
	if status, body := request(altToken, "GET", srv.URL+"/v1/secrets", ""); status != http.StatusOK || strings.Contains(body, secretRef) {
		t.Errorf("alt's list shows demo's secret: %d %s", status, body)
	}

	mustCLI(t, demo, "acl", "user", "remove", "--user", altUser.ID, secretRef)
	check("ACL user removed", []probe{{"GET", secretRef + "/payload", "", denied}})

	// An ACL on the container: alt reads the container, not its secret.
	mustCLI(t, demo, "acl", "user", "add", "--user", altUser.ID, containerRef)
	check("container ACL", append([]probe{
		{"GET", containerRef, "", []int{http.StatusOK}},
		{"GET", secretRef + "/payload", "", denied},
	}, writesDenied...))
	mustCLI(t, demo, "acl", "delete", containerRef)
	check("container ACL deleted", []probe{{"GET", containerRef, "", denied}})

	mustCLI(t, demo, "secret", "container", "delete", containerRef)
	if status, _ := request(demoToken, "GET", containerRef, ""); status != http.StatusNotFound {
		t.Fatalf("deleted container: %d", status)
	}
	// demo's own resources were untouched by alt's attempts.
	for _, ref := range []string{secretRef, orderRef} {
		if status, body := request(demoToken, "GET", ref, ""); status != http.StatusOK {
			t.Errorf("demo GET %s: %d %s", ref, status, body)
		}
	}
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
