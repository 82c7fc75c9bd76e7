package manage_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/manage"
)

// TestRegisterWithApplicationCredentialRealStack runs arca-manage register
// with no OS_* environment and a [keystone_authtoken] that authenticates
// arca-api's service user with an application credential, as a deployment
// without passwords in its files configures it: register must log in with
// that credential (not as a password user with an empty name) and put the
// public, internal and admin endpoints in a region of the test's own.
func TestRegisterWithApplicationCredentialRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The credential carries the arca user's roles in its project, admin
	// among them, which the catalog changes need.
	arca := env.Client(t, testenv.UserArca)
	user, err := tokens.Get(ctx, arca, arca.Token()).ExtractUser()
	if err != nil {
		t.Fatalf("the arca user: %v", err)
	}
	tag := testenv.RandomHex(t, 4)
	cred, err := applicationcredentials.Create(ctx, arca, user.ID, applicationcredentials.CreateOpts{
		Name: "arca-register-" + tag, Description: "arca-manage register test",
	}).Extract()
	if err != nil {
		t.Fatalf("application credential for the arca user: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := applicationcredentials.Delete(ctx, env.Client(t, testenv.UserArca), user.ID, cred.ID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: application credential %s: %v", cred.ID, err)
		}
	})

	region, name := "ArcaRegisterAppCred-"+tag, "arca-appcred-"+tag
	env.ShareKeyManagers(t)
	t.Cleanup(func() { env.RemoveRegion(t, region, name) })

	conf := filepath.Join(t.TempDir(), "arca.conf")
	content := fmt.Sprintf(`[keystone_authtoken]
auth_url = %s
auth_type = v3applicationcredential
application_credential_id = %s
application_credential_secret = %s
`, env.URL, cred.ID, cred.Secret)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "http://127.0.0.1:39311"
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.Binaries(t), "arca-manage"),
		"--config-file", conf, "register", "--region", region, "--name", name, "--url", url)
	cmd.Env = withoutOpenrc(os.Environ())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("arca-manage register with an application credential: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "created region "+region) {
		t.Errorf("register does not report the region it created:\n%s", out)
	}

	admin := env.Client(t, testenv.UserAdmin)
	pages, err := services.List(admin, services.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.ExtractServices(pages)
	if err != nil || len(svcs) != 1 || svcs[0].Type != manage.ServiceType {
		t.Fatalf("services named %s: %+v %v, want one of type %s", name, svcs, err, manage.ServiceType)
	}
	pages, err = endpoints.List(admin, endpoints.ListOpts{ServiceID: svcs[0].ID, RegionID: region}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := endpoints.ExtractEndpoints(pages)
	if err != nil {
		t.Fatal(err)
	}
	got := map[gophercloud.Availability]string{}
	for _, ep := range eps {
		got[ep.Availability] = ep.URL
	}
	want := map[gophercloud.Availability]string{
		gophercloud.AvailabilityPublic: url, gophercloud.AvailabilityInternal: url, gophercloud.AvailabilityAdmin: url,
	}
	if len(eps) != len(want) || !maps.Equal(got, want) {
		t.Errorf("endpoints of %s in %s: %v, want %v", name, region, got, want)
	}
}

// withoutOpenrc is environ without the OS_* variables an openrc sets, which
// arca-manage register would use instead of the configuration file.
func withoutOpenrc(environ []string) []string {
	var kept []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OS_") {
			kept = append(kept, kv)
		}
	}
	return kept
}
