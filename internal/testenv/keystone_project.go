package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
)

// NewProjectUser creates, in a domain of its own (NewDomainUser's, which
// holds role on the domain), a project and an assignment of role on that
// project to the domain's user, and returns a token scoped to the project
// and the project's id. Everything is removed when the test ends (with the
// domain). With role "reader", the token is the project's own but Swift's
// keystoneauth (operator_roles admin, member) refuses its writes.
func (e *KeystoneEnv) NewProjectUser(t testing.TB, role string) (token, projectID string) {
	t.Helper()
	d := e.NewDomainUser(t, role)
	ic := e.Client(t, UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := projects.Create(ctx, ic, projects.CreateOpts{Name: d.DomainName, DomainID: d.DomainID,
		Description: "created by an Arca test; removed when it ends"}).Extract()
	if err != nil {
		t.Fatalf("testenv: creating project in %s: %v", d.DomainName, err)
	}
	if err := roles.Assign(ctx, ic, e.roleID(ctx, t, ic, role), roles.AssignOpts{UserID: d.UserID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatalf("testenv: assigning %s on project %s: %v", role, p.ID, err)
	}
	return e.issue(t, gophercloud.AuthOptions{
		IdentityEndpoint: e.URL, Username: d.UserName, Password: d.password, DomainID: d.DomainID,
		Scope: &gophercloud.AuthScope{ProjectID: p.ID},
	}), p.ID
}
