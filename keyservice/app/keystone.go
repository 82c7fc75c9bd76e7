package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// KeystoneConfig reads [keystone_authtoken] with keystonemiddleware's option
// names, so an operator's existing section works unchanged.
func KeystoneConfig(f *config.File) (keystone.Config, error) {
	const s = "keystone_authtoken"
	cfg := keystone.Config{
		WWWAuthenticateURI:          f.String(s, "www_authenticate_uri", f.String(s, "auth_uri", "")),
		AuthURL:                     f.String(s, "auth_url", ""),
		AuthType:                    f.String(s, "auth_type", keystone.AuthTypePassword),
		Username:                    f.String(s, "username", ""),
		Password:                    f.String(s, "password", ""),
		ProjectName:                 f.String(s, "project_name", ""),
		UserDomainName:              f.String(s, "user_domain_name", ""),
		UserDomainID:                f.String(s, "user_domain_id", ""),
		ProjectDomainName:           f.String(s, "project_domain_name", ""),
		ProjectDomainID:             f.String(s, "project_domain_id", ""),
		ApplicationCredentialID:     f.String(s, "application_credential_id", ""),
		ApplicationCredentialSecret: f.String(s, "application_credential_secret", ""),
		RegionName:                  f.String(s, "region_name", ""),
		Interface:                   f.String(s, "interface", ""),
		MemcachedServers:            f.List(s, "memcached_servers", nil),
		TokenCacheTime:              f.Seconds(s, "token_cache_time", keystone.DefaultTokenCacheTime),
		ServiceTokenRoles:           f.List(s, "service_token_roles", []string{"service"}),
		ServiceTokenRolesRequired:   f.Bool(s, "service_token_roles_required", false),
		HTTPTimeout:                 f.Seconds(s, "http_connect_timeout", keystone.DefaultHTTPTimeout),
	}
	if err := f.Err(); err != nil {
		return cfg, err
	}
	if cfg.AuthURL == "" {
		return cfg, errors.New("[keystone_authtoken] auth_url is not set (auth_strategy = keystone needs it)")
	}
	return cfg, nil
}

// keystoneAuth wires Keystone token validation and oslo policy.
func (a *App) keystoneAuth(ctx context.Context, opts *api.Options) error {
	kcfg, err := KeystoneConfig(a.Config.Raw)
	if err != nil {
		return err
	}
	validator, err := keystone.NewValidator(ctx, kcfg, keystone.WithLogger(a.Log))
	if err != nil {
		return fmt.Errorf("keystone: %w", err)
	}
	enforcer, err := policy.New(policy.Options{EnforceNewDefaults: a.Config.EnforceNewDefaults, PolicyFile: a.Config.PolicyFile})
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	opts.Authenticator = &TokenAuthenticator{Validator: validator, challenge: keystone.WWWAuthenticate(kcfg)}
	opts.Authorizer = &PolicyAuthorizer{Enforcer: enforcer}
	return nil
}

// TokenAuthenticator validates X-Auth-Token with Keystone. Identity headers
// a client sends itself (X-Project-Id, X-Roles, ...) are never read.
type TokenAuthenticator struct {
	Validator *keystone.Validator
	challenge string
}

// Authenticate validates the request's tokens.
func (k *TokenAuthenticator) Authenticate(ctx context.Context, r *http.Request) (keyservice.Caller, error) {
	token := strings.TrimSpace(r.Header.Get("X-Auth-Token"))
	if token == "" {
		return keyservice.Caller{}, keyservice.Errorf(api.ErrUnauthenticated, "The request you have made requires authentication.")
	}
	tok, err := k.Validator.Validate(ctx, token)
	if err != nil {
		return keyservice.Caller{}, tokenError(err)
	}
	caller := keyservice.Caller{
		ProjectID: tok.ProjectID, ProjectDomainID: tok.ProjectDomainID,
		UserID: tok.UserID, UserDomainID: tok.UserDomainID,
		Roles: tok.Roles, IsAdminProject: tok.IsAdminProject,
	}
	if st := strings.TrimSpace(r.Header.Get("X-Service-Token")); st != "" {
		_, isService, err := k.Validator.ValidateService(ctx, st)
		if err != nil {
			return keyservice.Caller{}, tokenError(err)
		}
		caller.IsService = isService
	}
	return caller, nil
}

func tokenError(err error) error {
	if errors.Is(err, keystone.ErrUnavailable) {
		return fmt.Errorf("validating token: %w: %w", keyservice.ErrUnavailable, err)
	}
	return keyservice.Errorf(api.ErrUnauthenticated, "The request you have made requires authentication.")
}

// Challenge points clients at Keystone.
func (k *TokenAuthenticator) Challenge() string { return k.challenge }

// PolicyAuthorizer enforces oslo-style policy rules.
type PolicyAuthorizer struct {
	Enforcer *policy.Enforcer
}

// Authorize checks rule for caller against target.
func (p *PolicyAuthorizer) Authorize(_ context.Context, rule string, caller keyservice.Caller, target api.Target) error {
	creds := policy.Credentials{
		UserID: caller.UserID, UserDomainID: caller.UserDomainID,
		ProjectID: caller.ProjectID, ProjectDomainID: caller.ProjectDomainID,
		Roles: caller.Roles, IsService: caller.IsService, IsAdminProject: caller.IsAdminProject,
	}
	ok, err := p.Enforcer.Enforce(rule, creds, PolicyTarget(target, caller.UserID))
	if err != nil {
		return fmt.Errorf("policy rule %s: %w", rule, err)
	}
	if !ok {
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: policy does not allow this operation.")
	}
	return nil
}

// PolicyTarget converts an API target into oslo's flat target.
func PolicyTarget(t api.Target, callerUserID string) policy.Target {
	resource := policy.Resource{ProjectID: t.ProjectID, CreatorID: t.CreatorID}
	if len(t.ACLs) > 0 {
		resource.ACLs = map[string]policy.ACL{}
		for op, acl := range t.ACLs {
			resource.ACLs[op] = policy.ACL{Users: acl.Users, ProjectAccess: acl.ProjectAccess}
		}
	}
	switch t.Kind {
	case "secret":
		return policy.SecretTarget(resource, callerUserID)
	case "container":
		return policy.ContainerTarget(resource, callerUserID)
	case "order":
		return policy.OrderTarget(t.ProjectID)
	case "project_key":
		return policy.ProjectKeyTarget(t.ProjectID)
	}
	return policy.Target{"project_id": t.ProjectID}
}
