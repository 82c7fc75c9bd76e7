// Package testkeystone gives tests the real Keystone of the project's stack
// (tools/stack.sh): its URL, the service configuration for user arca, and fresh
// tokens for the test users demo and alt (members of projects demo and alt),
// admin, and arca (service). Set the environment with
//
//	eval "$(tools/stack.sh env)"
//
// Without it a test is skipped, or fails when ARCA_REQUIRE_STACK=1 (CI, make
// test): nothing is silently skipped where the stack is supposed to be up.
package testkeystone

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/keystone"
)

// User names the stack provisions.
const (
	Admin = "admin"
	Demo  = "demo"
	Alt   = "alt"
	Arca  = "arca" // service user: roles admin and service in project service
)

// User is one test user's credentials.
type User struct {
	Name, Password, Project string
}

// Env is the stack's Keystone as described by `tools/stack.sh env`.
type Env struct {
	URL           string // versioned, e.g. http://127.0.0.1:5000/v3
	Region        string
	UserDomain    string
	ProjectDomain string
	Users         map[string]User
}

// unavailable skips or fails the test, as ARCA_REQUIRE_STACK says.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("ARCA_REQUIRE_STACK") == "1" {
		t.Fatalf("real Keystone required (ARCA_REQUIRE_STACK=1) but %s; run tools/stack.sh up", why)
	}
	t.Skipf("skipping: no real Keystone (%s); run tools/stack.sh up and eval \"$(tools/stack.sh env)\"", why)
}

// Load reads the environment and checks that Keystone answers.
func Load(t testing.TB) *Env {
	t.Helper()
	e := &Env{
		URL:           os.Getenv("ARCA_TEST_KEYSTONE_URL"),
		Region:        os.Getenv("ARCA_TEST_REGION"),
		UserDomain:    envOr("ARCA_TEST_USER_DOMAIN", "Default"),
		ProjectDomain: envOr("ARCA_TEST_PROJECT_DOMAIN", "Default"),
		Users:         map[string]User{},
	}
	if e.URL == "" {
		unavailable(t, "ARCA_TEST_KEYSTONE_URL is not set")
	}
	for _, who := range []string{Admin, Demo, Alt, Arca} {
		up := strings.ToUpper(who)
		u := User{Name: os.Getenv("ARCA_TEST_" + up + "_USER"), Password: os.Getenv("ARCA_TEST_" + up + "_PASSWORD"),
			Project: os.Getenv("ARCA_TEST_" + up + "_PROJECT")}
		if u.Name == "" || u.Password == "" || u.Project == "" {
			unavailable(t, "ARCA_TEST_"+up+"_{USER,PASSWORD,PROJECT} are not all set")
		}
		e.Users[who] = u
	}
	parsed, err := url.Parse(e.URL)
	if err != nil || parsed.Host == "" {
		t.Fatalf("ARCA_TEST_KEYSTONE_URL=%q is not a URL", e.URL)
	}
	c, err := net.DialTimeout("tcp", parsed.Host, 2*time.Second)
	if err != nil {
		unavailable(t, "Keystone at "+parsed.Host+" does not answer")
	} else {
		c.Close()
	}
	return e
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// ServiceConfig is a [keystone_authtoken] for the service user arca.
func (e *Env) ServiceConfig() keystone.Config {
	u := e.Users[Arca]
	return keystone.Config{
		WWWAuthenticateURI: e.URL,
		AuthURL:            e.URL,
		AuthType:           keystone.AuthTypePassword,
		Username:           u.Name,
		Password:           u.Password,
		ProjectName:        u.Project,
		UserDomainName:     e.UserDomain,
		ProjectDomainName:  e.ProjectDomain,
		RegionName:         e.Region,
	}
}

// authOptions are the gophercloud credentials of one test user, scoped to their project.
func (e *Env) authOptions(t testing.TB, who string) gophercloud.AuthOptions {
	t.Helper()
	u, ok := e.Users[who]
	if !ok {
		t.Fatalf("testkeystone: unknown user %q", who)
	}
	return gophercloud.AuthOptions{
		IdentityEndpoint: e.URL, Username: u.Name, Password: u.Password, DomainName: e.UserDomain,
		Scope: &gophercloud.AuthScope{ProjectName: u.Project, DomainName: e.ProjectDomain},
	}
}

// Client is an identity v3 client authenticated as who.
func (e *Env) Client(t testing.TB, who string) *gophercloud.ServiceClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ao := e.authOptions(t, who)
	pc, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		t.Fatalf("testkeystone: authenticating as %s: %v", who, err)
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatalf("testkeystone: identity client: %v", err)
	}
	return ic
}

// Token issues a fresh project-scoped token for who (Admin, Demo, Alt, Arca).
func (e *Env) Token(t testing.TB, who string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := openstack.NewClient(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ao := e.authOptions(t, who)
	id, err := tokens.Create(ctx, ic, &ao).ExtractTokenID()
	if err != nil {
		t.Fatalf("testkeystone: token for %s: %v", who, err)
	}
	return id
}

// Revoke revokes token in Keystone (as the admin user).
func (e *Env) Revoke(t testing.TB, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tokens.Revoke(ctx, e.Client(t, Admin), token).Err; err != nil {
		t.Fatalf("testkeystone: revoking a token: %v", err)
	}
}
