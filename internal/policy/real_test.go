package policy_test

import (
	"context"
	"testing"

	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/internal/testkeystone"
)

// Real tokens through the default (new) rules: demo may store and read its own
// secret, alt may not until an ACL names it, arca (service) reads key payloads.
func TestRealTokensThroughPolicy(t *testing.T) {
	env := testkeystone.Load(t)
	ctx := context.Background()
	v, err := keystone.NewValidator(ctx, env.ServiceConfig())
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(policy.Options{EnforceNewDefaults: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := func(who string) policy.Credentials {
		tok, err := v.Validate(ctx, env.Token(t, who))
		if err != nil {
			t.Fatal(err)
		}
		return policy.CredentialsFromToken(tok, false)
	}
	demo, alt, arca := creds(testkeystone.Demo), creds(testkeystone.Alt), creds(testkeystone.Arca)
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
		{"arca reads demo's key payload", "project_key:payload", arca, policy.ProjectKeyTarget(demo.ProjectID), true},
	} {
		got, err := e.Enforce(c.rule, c.creds, c.target)
		if err != nil || got != c.want {
			t.Errorf("%s: Enforce(%s) = %v, %v; want %v", c.name, c.rule, got, err, c.want)
		}
	}
}
