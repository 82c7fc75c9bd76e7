package keystone

import (
	"fmt"
	"strings"
	"time"
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

// Config mirrors the [keystone_authtoken] section; LoadConfig fills it from
// a configuration file. Zero values take the defaults documented on each
// field.
type Config struct {
	// WWWAuthenticateURI is the public Keystone URL clients are pointed to in the
	// WWW-Authenticate header of a 401 (www_authenticate_uri). Empty: AuthURL.
	WWWAuthenticateURI string
	// Credentials are the service user's, who validates tokens. Its
	// AuthURL is also where tokens are validated (auth_url), versioned or
	// not; AuthType defaults to "password".
	Credentials

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
	if cfg.AuthType == "" {
		cfg.AuthType = AuthTypePassword
	}
	if _, err := cfg.AuthOptions(); err != nil {
		return cfg, err
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
