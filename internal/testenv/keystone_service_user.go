package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"opendev.org/x/arca/internal/keystone"
)

// NewServiceUser creates, as the admin, a service user of the test's own
// in the stack's user domain with roles on the service project (the stack
// service users' project), for a credential no stack user has: the roles of
// two releases at once during an upgrade, say. The user (and so its role
// assignments) is deleted when the test ends. It returns the user's
// configuration, as UserConfig does for the stack's users.
func (e *KeystoneEnv) NewServiceUser(t testing.TB, roleNames ...string) keystone.Config {
	t.Helper()
	ic := e.Client(t, UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	project := e.Users[UserArcaObject].Project
	cfg := e.UserConfig(UserArcaObject)
	cfg.Username, cfg.Password = "arca-test-"+RandomHex(t, 6), RandomHex(t, 12)

	pages, err := domains.List(ic, domains.ListOpts{Name: e.UserDomain}).AllPages(ctx)
	if err != nil {
		t.Fatalf("testenv: listing domain %s: %v", e.UserDomain, err)
	}
	doms, err := domains.ExtractDomains(pages)
	if err != nil || len(doms) != 1 {
		t.Fatalf("testenv: domain %s: %d found, %v", e.UserDomain, len(doms), err)
	}
	pages, err = projects.List(ic, projects.ListOpts{Name: project}).AllPages(ctx)
	if err != nil {
		t.Fatalf("testenv: listing project %s: %v", project, err)
	}
	projs, err := projects.ExtractProjects(pages)
	if err != nil || len(projs) != 1 {
		t.Fatalf("testenv: project %s: %d found, %v", project, len(projs), err)
	}

	enabled := true
	user, err := users.Create(ctx, ic, users.CreateOpts{Name: cfg.Username, DomainID: doms[0].ID, Password: cfg.Password,
		Enabled: &enabled, Description: "created by an Arca test; removed when it ends"}).Extract()
	if err != nil {
		t.Fatalf("testenv: creating user %s: %v", cfg.Username, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := users.Delete(ctx, ic, user.ID).ExtractErr(); err != nil {
			t.Errorf("cleanup: deleting user %s: %v", cfg.Username, err)
		}
	})
	for _, role := range roleNames {
		opts := roles.AssignOpts{UserID: user.ID, ProjectID: projs[0].ID}
		if err := roles.Assign(ctx, ic, e.roleID(ctx, t, ic, role), opts).ExtractErr(); err != nil {
			t.Fatalf("testenv: assigning %s on project %s to %s: %v", role, project, cfg.Username, err)
		}
	}
	return cfg
}
