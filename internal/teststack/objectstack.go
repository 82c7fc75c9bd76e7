package teststack

import (
	"encoding/json"
	"net/http"
	"testing"

	"opendev.org/x/arca/internal/testapi"
	"opendev.org/x/arca/internal/testkeystone"
)

// ObjectStack is the object tier's real-stack set-up: Keystone, account
// and container servers from tools/stack.sh, a real arca-api of its own in
// keystone mode, and a Cluster finding arca-api by URL, used as the demo
// user.
type ObjectStack struct {
	*Cluster
	API *testapi.Server
	// ServiceToken is the arca service user's, for arca-api's
	// project-keys API.
	ServiceToken string
	// Token is the demo user's, Project its project id and Storage its
	// account's URL through the proxy.
	Token, Project, Storage string
}

// StartObjectStack starts an ObjectStack. Its object servers are
// configured by o.Object, with Keystone and KeyServiceURL set here.
func StartObjectStack(t testing.TB, o ClusterOptions) *ObjectStack {
	t.Helper()
	env := testkeystone.Load(t)
	swiftDir := SwiftDir(t)
	s := &ObjectStack{API: testapi.Start(t, testapi.Options{AuthStrategy: "keystone", Extra: "\n" + env.AuthtokenSection()})}
	s.ServiceToken = env.Token(t, testkeystone.Arca)
	o.Object.Keystone, o.Object.KeyServiceURL = env.ServiceConfig(), s.API.URL
	s.Cluster = StartCluster(t, swiftDir, o)
	s.Token, s.Project = env.ScopedToken(t, testkeystone.Demo)
	s.Storage = s.ProxyURL + "/v1/AUTH_" + s.Project
	return s
}

// KeyService calls arca-api as the service user and returns the status
// and the decoded JSON answer (nil when there is none).
func (s *ObjectStack) KeyService(t testing.TB, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.API.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.ServiceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
