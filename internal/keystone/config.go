package keystone

import (
	"fmt"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Auth types accepted in Config.AuthType, as in keystoneauth's auth_type.
const (
	AuthTypePassword              = "password"
	AuthTypeApplicationCredential = "v3applicationcredential"
)

// Defaults, keystonemiddleware's where it has one.
const (
	DefaultTokenCacheTime    = 300 * time.Second
	DefaultNegativeCacheTime = 5 * time.Second
	DefaultCacheSize         = 10000
	DefaultHTTPTimeout       = 10 * time.Second
)

// Config mirrors the [keystone_authtoken] section. The config package fills it
// from arca.conf; zero values take the defaults documented on each field.
type Config struct {
	// WWWAuthenticateURI is the public Keystone URL clients are pointed to in the
	// WWW-Authenticate header of a 401 (www_authenticate_uri). Empty: AuthURL.
	WWWAuthenticateURI string
	// AuthURL is the Keystone endpoint the service user authenticates against
	// and tokens are validated at (auth_url), versioned or not.
	AuthURL string
	// AuthType is "password" (default) or "v3applicationcredential".
	AuthType string

	// password
	Username          string
	Password          string
	ProjectName       string
	UserDomainName    string
	UserDomainID      string
	ProjectDomainName string
	ProjectDomainID   string

	// v3applicationcredential
	ApplicationCredentialID     string
	ApplicationCredentialSecret string

	// RegionName and Interface: when Interface is set (public, internal, admin),
	// tokens are validated at the identity endpoint of that interface (and region)
	// from the service user's catalog instead of at AuthURL.
	RegionName string
	Interface  string

	// MemcachedServers is accepted so that a keystonemiddleware configuration
	// loads, but unused: the cache is in-process only (see the package docs).
	MemcachedServers []string

	// TokenCacheTime bounds how long a validated token is trusted without asking
	// Keystone again (token_cache_time). 0: DefaultTokenCacheTime. Negative: no
	// cache at all, every request asks Keystone.
	TokenCacheTime time.Duration
	// NegativeCacheTime is how long an invalid token is remembered as invalid.
	// 0: DefaultNegativeCacheTime. Negative: invalid tokens are not cached.
	NegativeCacheTime time.Duration
	// CacheSize bounds the number of cached tokens. 0: DefaultCacheSize.
	CacheSize int

	// ServiceTokenRoles: an X-Service-Token must carry one of these roles to be
	// treated as a service's (service_token_roles). nil: ["service"].
	ServiceTokenRoles []string
	// ServiceTokenRolesRequired: a service token lacking those roles makes the
	// request fail with 401 rather than being ignored (service_token_roles_required).
	ServiceTokenRolesRequired bool

	// HTTPTimeout bounds each request to Keystone. 0: DefaultHTTPTimeout.
	HTTPTimeout time.Duration
}

// withDefaults returns cfg with zero values replaced and the auth settings checked.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.AuthURL == "" {
		return cfg, fmt.Errorf("keystone: auth_url is required")
	}
	switch strings.ToLower(cfg.AuthType) {
	case "", AuthTypePassword:
		cfg.AuthType = AuthTypePassword
		if cfg.Username == "" || cfg.Password == "" {
			return cfg, fmt.Errorf("keystone: auth_type password needs username and password")
		}
	case AuthTypeApplicationCredential, "v3_application_credential", "application_credential":
		cfg.AuthType = AuthTypeApplicationCredential
		if cfg.ApplicationCredentialID == "" || cfg.ApplicationCredentialSecret == "" {
			return cfg, fmt.Errorf("keystone: auth_type %s needs application_credential_id and application_credential_secret", AuthTypeApplicationCredential)
		}
	default:
		return cfg, fmt.Errorf("keystone: unsupported auth_type %q (want %s or %s)", cfg.AuthType, AuthTypePassword, AuthTypeApplicationCredential)
	}
	if cfg.TokenCacheTime == 0 {
		cfg.TokenCacheTime = DefaultTokenCacheTime
	}
	if cfg.NegativeCacheTime == 0 {
		cfg.NegativeCacheTime = DefaultNegativeCacheTime
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ServiceTokenRoles == nil {
		cfg.ServiceTokenRoles = []string{"service"}
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	return cfg, nil
}

// AuthOptions are gophercloud's credentials for the service user cfg
// describes: its application credential, which carries its own project, or
// its password with a token scoped to project_name (unscoped without one).
// A user or project domain left unset is Keystone's "default" domain.
// Re-authentication is allowed, so a long-lived client replaces an expired
// token by itself. The validator and arca-manage register both log in
// with these, so the two cannot read one section differently.
func (cfg Config) AuthOptions() (gophercloud.AuthOptions, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return gophercloud.AuthOptions{}, err
	}
	ao := gophercloud.AuthOptions{IdentityEndpoint: cfg.AuthURL, AllowReauth: true}
	if cfg.AuthType == AuthTypeApplicationCredential {
		ao.ApplicationCredentialID = cfg.ApplicationCredentialID
		ao.ApplicationCredentialSecret = cfg.ApplicationCredentialSecret
		return ao, nil
	}
	ao.Username, ao.Password = cfg.Username, cfg.Password
	ao.DomainName, ao.DomainID = cfg.UserDomainName, cfg.UserDomainID
	if ao.DomainName == "" && ao.DomainID == "" {
		ao.DomainID = "default"
	}
	if cfg.ProjectName != "" {
		ao.Scope = &gophercloud.AuthScope{ProjectName: cfg.ProjectName,
			DomainName: cfg.ProjectDomainName, DomainID: cfg.ProjectDomainID}
		if ao.Scope.DomainName == "" && ao.Scope.DomainID == "" {
			ao.Scope.DomainID = "default"
		}
	}
	return ao, nil
}

// WWWAuthenticate is the WWW-Authenticate header value of a 401, as
// keystonemiddleware sends it: Keystone uri="<www_authenticate_uri>".
func WWWAuthenticate(cfg Config) string {
	uri := cfg.WWWAuthenticateURI
	if uri == "" {
		uri = cfg.AuthURL
	}
	// A quote or line break in the configured URI must not break the header.
	uri = strings.NewReplacer(`"`, "%22", "\r", "", "\n", "").Replace(uri)
	return fmt.Sprintf("Keystone uri=%q", uri)
}
