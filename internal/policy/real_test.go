package policy_test

import (
	"context"
	"testing"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/internal/testenv"
)

// Real tokens through the default (new) rules: demo may store and read its own
// secret, alt may not until an ACL names it; only arca-object reads key
// payloads (not arca, whose token has the service and admin roles), and a
// system-scoped admin manages quotas but reads no secret.
func TestRealTokensThroughPolicy(t *testing.T) {
	env := testenv.LoadKeystone(t)
	ctx := context.Background()
	v, err := keystone.NewValidator(env.ServiceConfig())
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(policy.Options{EnforceNewDefaults: true})
	if err != nil {
		t.Fatal(err)
	}
	credsOf := func(token string) policy.Credentials {
		tok, err := v.Validate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return policy.CredentialsFromToken(tok, false)
	}
	creds := func(who string) policy.Credentials { return credsOf(env.Token(t, who)) }
	demo, alt, arca := creds(testenv.UserDemo), creds(testenv.UserAlt), creds(testenv.UserArca)
	object, filter, admin := creds(testenv.UserArcaObject), creds(testenv.UserArcaFilter), creds(testenv.UserAdmin)
	system := credsOf(env.SystemToken(t, testenv.UserAdmin))
	if system.SystemScope != "all" || system.ProjectID != "" {
		t.Fatalf("system-scoped credentials = %+v", system)
	}
	secret := policy.Resource{ProjectID: demo.ProjectID, CreatorID: demo.UserID}
	shared := secret
	shared.ACLs = map[string]policy.ACL{"read": {Users: []string{alt.UserID}}}

	for _, c := range []struct {
		name   string
		rule   string
		creds  policy.Credentials
		target policy.Target
		want   bool
	}{
		{"demo stores", "secrets:post", demo, nil, true},
		{"demo decrypts own", "secret:decrypt", demo, policy.SecretTarget(secret, demo.UserID), true},
		{"alt cannot read demo's", "secret:get", alt, policy.SecretTarget(secret, alt.UserID), false},
		{"alt cannot delete demo's", "secret:delete", alt, policy.SecretTarget(secret, alt.UserID), false},
		{"alt reads with ACL", "secret:decrypt", alt, policy.SecretTarget(shared, alt.UserID), true},
		{"alt still cannot delete with ACL", "secret:delete", alt, policy.SecretTarget(shared, alt.UserID), false},
		{"demo cannot read key payload", "project_key:payload", demo, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca (service, admin) cannot read demo's key payload", "project_key:payload", arca, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca (service, admin) cannot get demo's active key", "project_key:get_active", arca, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca (service, admin) cannot destroy demo's key", "project_key:delete", arca, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca-object reads demo's key payload", "project_key:payload", object, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"arca-object cannot rotate demo's key", "project_key:rotate", object, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca-filter gets demo's active key", "project_key:get_active", filter, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"arca-filter cannot create demo's first key", "project_key:create", filter, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca-object creates demo's first key", "project_key:create", object, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"arca (service, admin) cannot create demo's first key", "project_key:create", arca, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca-filter cannot read demo's key payload", "project_key:payload", filter, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca-filter reads demo's listing key", "project_key:get_listing_key", filter, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"arca-object cannot read demo's listing key", "project_key:get_listing_key", object, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"arca (service, admin) cannot read demo's listing key", "project_key:get_listing_key", arca, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"demo reads its own listing key", "project_key:get_listing_key", demo, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"admin of project admin cannot read demo's listing key", "project_key:get_listing_key", admin, policy.ProjectKeyTarget(demo.ProjectID), false},
		{"admin of project admin cannot read demo's secret", "secret:get", admin, policy.SecretTarget(secret, admin.UserID), false},
		{"admin of project admin cannot delete demo's secret", "secret:delete", admin, policy.SecretTarget(secret, admin.UserID), false},
		{"admin of project admin cannot set quotas", "project_quotas:put", admin, nil, false},
		{"system admin sets quotas", "project_quotas:put", system, nil, true},
		{"system admin destroys demo's key", "project_key:delete", system, policy.ProjectKeyTarget(demo.ProjectID), true},
		{"system admin cannot decrypt demo's secret", "secret:decrypt", system, policy.SecretTarget(secret, system.UserID), false},
	} {
		got, err := e.Enforce(c.rule, c.creds, c.target)
		if err != nil || got != c.want {
			t.Errorf("%s: Enforce(%s) = %v, %v; want %v", c.name, c.rule, got, err, c.want)
		}
	}
}
