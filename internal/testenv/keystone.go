package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/keystone"
)

// Names of the users the stack provisions.
const (
	UserAdmin = "admin"
	UserDemo  = "demo"
	UserAlt   = "alt"
	UserArca  = "arca" // arca-api's service user: roles admin and service in project service
	// UserArcaObject is the object servers' user: only key-manager:object-server
	// (key material and active key ids of any project).
	UserArcaObject = "arca-object"
	// UserArcaFilter is the filter's user: service (to validate tokens) and
	// key-manager:swift-filter (active key ids of any project, no material).
	UserArcaFilter = "arca-filter"
)

// KeystoneUser is one test user's credentials.
type KeystoneUser struct {
	Name, Password, Project string
}

// KeystoneEnv is the stack's Keystone as described by `tools/stack.sh env`.
type KeystoneEnv struct {
	URL           string // versioned, e.g. http://127.0.0.1:5000/v3
	Region        string
	UserDomain    string
	ProjectDomain string
	Users         map[string]KeystoneUser
}

// LoadKeystone reads the environment and checks that Keystone answers.
func LoadKeystone(t testing.TB) *KeystoneEnv {
	t.Helper()
	e := &KeystoneEnv{
		URL:           os.Getenv("ARCA_TEST_KEYSTONE_URL"),
		Region:        os.Getenv("ARCA_TEST_REGION"),
		UserDomain:    envOr("ARCA_TEST_USER_DOMAIN", "Default"),
		ProjectDomain: envOr("ARCA_TEST_PROJECT_DOMAIN", "Default"),
		Users:         map[string]KeystoneUser{},
	}
	if e.URL == "" {
		StackMissing(t, "no real Keystone: ARCA_TEST_KEYSTONE_URL is not set")
	}
	for _, who := range []string{UserAdmin, UserDemo, UserAlt, UserArca, UserArcaObject, UserArcaFilter} {
		up := strings.ReplaceAll(strings.ToUpper(who), "-", "_")
		u := KeystoneUser{Name: os.Getenv("ARCA_TEST_" + up + "_USER"), Password: os.Getenv("ARCA_TEST_" + up + "_PASSWORD"),
			Project: os.Getenv("ARCA_TEST_" + up + "_PROJECT")}
		if u.Name == "" || u.Password == "" || u.Project == "" {
			StackMissing(t, "no real Keystone: ARCA_TEST_"+up+"_{USER,PASSWORD,PROJECT} are not all set")
		}
		e.Users[who] = u
	}
	parsed, err := url.Parse(e.URL)
	if err != nil || parsed.Host == "" {
		t.Fatalf("ARCA_TEST_KEYSTONE_URL=%q is not a URL", e.URL)
	}
	c, err := net.DialTimeout("tcp", parsed.Host, 2*time.Second)
	if err != nil {
		StackMissing(t, "no real Keystone: Keystone at "+parsed.Host+" does not answer")
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
func (e *KeystoneEnv) ServiceConfig() keystone.Config { return e.UserConfig(UserArca) }

// UserConfig is a [keystone_authtoken] for one of the stack's service users
// (UserArca, UserArcaObject, UserArcaFilter).
func (e *KeystoneEnv) UserConfig(who string) keystone.Config {
	u := e.Users[who]
	return keystone.Config{
		WWWAuthenticateURI: e.URL,
		Credentials: keystone.Credentials{
			AuthURL:           e.URL,
			AuthType:          keystone.AuthTypePassword,
			Username:          u.Name,
			Password:          u.Password,
			ProjectName:       u.Project,
			UserDomainName:    e.UserDomain,
			ProjectDomainName: e.ProjectDomain,
		},
		RegionName: e.Region,
	}
}

// authOptions are the gophercloud credentials of one test user, scoped to their project.
func (e *KeystoneEnv) authOptions(t testing.TB, who string) gophercloud.AuthOptions {
	t.Helper()
	u, ok := e.Users[who]
	if !ok {
		t.Fatalf("testenv: unknown user %q", who)
	}
	return gophercloud.AuthOptions{
		IdentityEndpoint: e.URL, Username: u.Name, Password: u.Password, DomainName: e.UserDomain,
		Scope: &gophercloud.AuthScope{ProjectName: u.Project, DomainName: e.ProjectDomain},
	}
}

// Client is an identity v3 client authenticated as who.
func (e *KeystoneEnv) Client(t testing.TB, who string) *gophercloud.ServiceClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ao := e.authOptions(t, who)
	pc, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		t.Fatalf("testenv: authenticating as %s: %v", who, err)
	}
	ic, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatalf("testenv: identity client: %v", err)
	}
	return ic
}

// Token issues a fresh project-scoped token for who (UserAdmin, UserDemo, ...).
func (e *KeystoneEnv) Token(t testing.TB, who string) string {
	t.Helper()
	id, _ := e.createToken(t, who)
	return id
}

// ScopedToken issues a fresh token for who and returns it with the id of
// the project it is scoped to (Swift's account is AUTH_<project id>).
func (e *KeystoneEnv) ScopedToken(t testing.TB, who string) (token, projectID string) {
	t.Helper()
	id, res := e.createToken(t, who)
	proj, err := res.ExtractProject()
	if err != nil || proj == nil {
		t.Fatalf("testenv: project of the token for %s: %v", who, err)
	}
	return id, proj.ID
}

// createToken authenticates who with a password, without the catalog
// lookups of an authenticated client: one request to Keystone.
func (e *KeystoneEnv) createToken(t testing.TB, who string) (string, tokens.CreateResult) {
	t.Helper()
	res := e.createWith(t, e.authOptions(t, who))
	id, err := res.ExtractTokenID()
	if err != nil {
		t.Fatalf("testenv: token for %s: %v", who, err)
	}
	return id, res
}

// createWith sends one token request with ao, without the catalog lookups
// of an authenticated client.
func (e *KeystoneEnv) createWith(t testing.TB, ao gophercloud.AuthOptions) tokens.CreateResult {
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
	return tokens.Create(ctx, ic, &ao)
}

// AuthtokenSection is a [keystone_authtoken] section for the service user
// arca (ServiceConfig), as arca-api and arca-swift-filter read it. It ends
// with a newline, so options or sections may follow.
func (e *KeystoneEnv) AuthtokenSection() string {
	c := e.ServiceConfig()
	return fmt.Sprintf("[keystone_authtoken]\nwww_authenticate_uri = %s\nauth_type = %s\n", c.WWWAuthenticateURI, c.AuthType) +
		PasswordOptions(c)
}

// PasswordOptions are the lines of c's password authentication to
// Keystone (auth_url, username, password, the project and the domains,
// region_name), under the option names that both [keystone_authtoken] and
// arca-object-server's [arca] section use.
func PasswordOptions(c keystone.Config) string {
	return fmt.Sprintf(`auth_url = %s
username = %s
password = %s
project_name = %s
user_domain_name = %s
project_domain_name = %s
region_name = %s
`, c.AuthURL, c.Username, c.Password, c.ProjectName, c.UserDomainName, c.ProjectDomainName, c.RegionName)
}

// OpenRC is the openstack CLI's environment for who in region, with the
// variables DevStack's openrc writes (OS_USER_DOMAIN_NAME,
// OS_PROJECT_DOMAIN_NAME). OS_CLOUD is emptied so that no clouds.yaml
// entry of the machine's can take over.
func (e *KeystoneEnv) OpenRC(who, region string) []string {
	u := e.Users[who]
	return []string{
		"OS_AUTH_URL=" + e.URL, "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=" + u.Name, "OS_PASSWORD=" + u.Password,
		"OS_PROJECT_NAME=" + u.Project, "OS_USER_DOMAIN_NAME=" + e.UserDomain, "OS_PROJECT_DOMAIN_NAME=" + e.ProjectDomain,
		"OS_REGION_NAME=" + region, "OS_INTERFACE=public", "OS_CLOUD=",
	}
}

// RemoveRegion deletes, as the admin, a test's private region of the
// catalog: its endpoints, the services named serviceName (none when it is
// empty: a shared service such as key-manager must stay) and the region.
// A failed deletion fails the test; the others are still tried.
func (e *KeystoneEnv) RemoveRegion(t testing.TB, region, serviceName string) {
	t.Helper()
	ic := e.Client(t, UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pages, err := endpoints.List(ic, endpoints.ListOpts{RegionID: region}).AllPages(ctx); err == nil {
		eps, _ := endpoints.ExtractEndpoints(pages)
		for _, ep := range eps {
			if err := endpoints.Delete(ctx, ic, ep.ID).ExtractErr(); err != nil {
				t.Errorf("cleanup: endpoint %s: %v", ep.ID, err)
			}
		}
	}
	if serviceName != "" {
		if pages, err := services.List(ic, services.ListOpts{Name: serviceName}).AllPages(ctx); err == nil {
			svcs, _ := services.ExtractServices(pages)
			for _, s := range svcs {
				if err := services.Delete(ctx, ic, s.ID).ExtractErr(); err != nil {
					t.Errorf("cleanup: service %s: %v", s.ID, err)
				}
			}
		}
	}
	if err := regions.Delete(ctx, ic, region).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("cleanup: region %s: %v", region, err)
	}
}

// Revoke revokes token in Keystone (as the admin user).
func (e *KeystoneEnv) Revoke(t testing.TB, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tokens.Revoke(ctx, e.Client(t, UserAdmin), token).Err; err != nil {
		t.Fatalf("testenv: revoking a token: %v", err)
	}
}
