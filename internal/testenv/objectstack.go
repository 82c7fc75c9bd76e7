package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// ObjectStack is the object tier's real-stack set-up: Keystone, account
// and container servers from tools/stack.sh, a real arca-api of its own in
// keystone mode, and a Cluster finding arca-api by URL, used as the demo
// user. Its object servers authenticate as the stack's arca-object user,
// whose only role is key-manager:object-server: the role the policy gives
// the object servers, and nothing else (docs/architecture.md).
type ObjectStack struct {
	*Cluster
	API *API
	// ObjectToken is the arca-object user's (key-manager:object-server):
	// it reads the active key id (and key material) of any project, as
	// the object servers do.
	ObjectToken string
	// KeyAdminToken is a system-scoped admin's: it rotates and destroys
	// any project's keys (the object servers' role cannot).
	KeyAdminToken string
	// Token is the demo user's, Project its project id and Storage its
	// account's URL through the proxy.
	Token, Project, Storage string
}

// StartObjectStack starts an ObjectStack. Its object servers are
// configured by o.Object, with Keystone (the arca-object user) and
// KeyServiceURL set here; arca-api's [project_keys] active_key_cache_ttl
// is the object servers' cache lifetime, so that a key deactivated longer
// ago than that may be destroyed without force.
func StartObjectStack(t testing.TB, o ClusterOptions) *ObjectStack {
	t.Helper()
	env := LoadKeystone(t)
	swiftDir := SwiftDir(t)
	ttl := o.Object.CacheTTL
	if ttl <= 0 {
		ttl = 1 // ObjectServerConfig's default
	}
	extra := fmt.Sprintf("\n%s[project_keys]\nactive_key_cache_ttl = %d\n", env.AuthtokenSection(), ttl)
	s := &ObjectStack{API: StartAPI(t, APIOptions{AuthStrategy: "keystone", Extra: extra})}
	s.ObjectToken = env.Token(t, UserArcaObject)
	s.KeyAdminToken = env.SystemToken(t, UserAdmin)
	o.Object.Keystone, o.Object.KeyServiceURL = env.UserConfig(UserArcaObject), s.API.URL
	s.Cluster = StartCluster(t, swiftDir, o)
	s.Token, s.Project = env.ScopedToken(t, UserDemo)
	s.Storage = s.ProxyURL + "/v1/AUTH_" + s.Project
	return s
}

// KeyService calls arca-api's project-keys API with token (ObjectToken,
// KeyAdminToken) and returns the status and the decoded JSON answer (nil
// when there is none).
func (s *ObjectStack) KeyService(t testing.TB, token, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.API.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
