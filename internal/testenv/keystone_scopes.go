package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// Tokens of the two scopes besides a project: system (keystone-manage
// bootstrap gives admin the admin role on the system) and domain (a user
// the test creates in a domain of its own, with a role on that domain).

// SystemToken issues a system-scoped token ("system": {"all": true}) for who.
func (e *KeystoneEnv) SystemToken(t testing.TB, who string) string {
	t.Helper()
	u, ok := e.Users[who]
	if !ok {
		t.Fatalf("testenv: unknown user %q", who)
	}
	return e.issue(t, gophercloud.AuthOptions{
		IdentityEndpoint: e.URL, Username: u.Name, Password: u.Password, DomainName: e.UserDomain,
		Scope: &gophercloud.AuthScope{System: true},
	})
}

// DomainUser is a user the test created in a domain of its own.
type DomainUser struct {
	DomainID, DomainName string
	UserID, UserName     string
	password             string
}

// NewDomainUser creates, as the admin, a domain, a user in it and a role
// assignment of role on that domain (no project anywhere), and removes all
// three when the test ends.
func (e *KeystoneEnv) NewDomainUser(t testing.TB, role string) DomainUser {
	t.Helper()
	ic := e.Client(t, UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := RandomHex(t, 6)
	d := DomainUser{DomainName: "arca-test-" + suffix, UserName: "arca-test-" + suffix, password: RandomHex(t, 6) + RandomHex(t, 6)}

	enabled := true
	dom, err := domains.Create(ctx, ic, domains.CreateOpts{Name: d.DomainName, Enabled: &enabled,
		Description: "created by an Arca test; removed when it ends"}).Extract()
	if err != nil {
		t.Fatalf("testenv: creating domain %s: %v", d.DomainName, err)
	}
	d.DomainID = dom.ID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Keystone deletes only disabled domains; deleting one removes its users and assignments.
		disabled := false
		if _, err := domains.Update(ctx, ic, dom.ID, domains.UpdateOpts{Enabled: &disabled}).Extract(); err != nil {
			t.Errorf("cleanup: disabling domain %s: %v", d.DomainName, err)
			return
		}
		if err := domains.Delete(ctx, ic, dom.ID).ExtractErr(); err != nil {
			t.Errorf("cleanup: deleting domain %s: %v", d.DomainName, err)
		}
	})
	user, err := users.Create(ctx, ic, users.CreateOpts{Name: d.UserName, DomainID: dom.ID, Password: d.password, Enabled: &enabled}).Extract()
	if err != nil {
		t.Fatalf("testenv: creating user %s: %v", d.UserName, err)
	}
	d.UserID = user.ID
	roleID := e.roleID(ctx, t, ic, role)
	if err := roles.Assign(ctx, ic, roleID, roles.AssignOpts{UserID: user.ID, DomainID: dom.ID}).ExtractErr(); err != nil {
		t.Fatalf("testenv: assigning %s on domain %s: %v", role, d.DomainName, err)
	}
	return d
}

// Token issues a domain-scoped token for the user.
func (d DomainUser) Token(t testing.TB, e *KeystoneEnv) string {
	t.Helper()
	return e.issue(t, gophercloud.AuthOptions{
		IdentityEndpoint: e.URL, Username: d.UserName, Password: d.password, DomainID: d.DomainID,
		Scope: &gophercloud.AuthScope{DomainID: d.DomainID},
	})
}

func (e *KeystoneEnv) roleID(ctx context.Context, t testing.TB, ic *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := roles.List(ic, roles.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatalf("testenv: listing role %s: %v", name, err)
	}
	list, err := roles.ExtractRoles(pages)
	if err != nil || len(list) != 1 {
		t.Fatalf("testenv: role %s: %d found, %v", name, len(list), err)
	}
	return list[0].ID
}

// issue creates a token with ao: one request to Keystone.
func (e *KeystoneEnv) issue(t testing.TB, ao gophercloud.AuthOptions) string {
	t.Helper()
	id, err := e.createWith(t, ao).ExtractTokenID()
	if err != nil {
		t.Fatalf("testenv: token for %s: %v", ao.Username, err)
	}
	return id
}
