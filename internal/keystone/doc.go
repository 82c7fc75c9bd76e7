// Package keystone validates OpenStack Keystone tokens for Arca's services, in
// the manner of keystonemiddleware's auth_token, without any HTTP framework: the
// key service and the Swift filter both call Validator.Validate with the value of
// X-Auth-Token and map the error to 401 (ErrInvalidToken, with the header from
// WWWAuthenticate) or 503 (ErrUnavailable).
//
// The Validator authenticates as the service user of [keystone_authtoken]
// (password or application credential) through gophercloud, lazily on first use,
// and lets gophercloud re-authenticate when that service token expires. Tokens are
// validated with GET /v3/auth/tokens.
//
// # Cache
//
// Results are cached in process, in a bounded LRU keyed by the SHA-256 of the
// token (the raw token is never kept as a key, and never logged). A valid token is
// trusted until TokenCacheTime has passed or the token expires, whichever comes
// first. As with keystonemiddleware, a token revoked in Keystone therefore keeps
// working here for up to TokenCacheTime; lower it (or disable the cache with a
// negative value) where that matters more than Keystone's load. Invalid tokens are
// remembered for NegativeCacheTime (seconds) so that a flood of bad tokens does not
// become a flood of Keystone requests. Concurrent validations of one uncached token
// share one Keystone request. memcached_servers is accepted and ignored: every
// process has its own cache; a shared memcached would also share the risk of a
// poisoned cache between services.
//
// X-Service-Token is examined with ValidateService, which says whether it carries
// one of service_token_roles.
//
// # Configuration and credentials
//
// LoadConfig is the one reader of [keystone_authtoken] (arca-api, the filter,
// arca-manage register), and LoadCredentials the one reader of a service user's
// credentials in any section (also the filter's [key_service] and the object
// server's [arca]). Credentials.AuthOptions is the one builder of gophercloud's
// options from them, used by the Validator, the key clients (internal/keyclient)
// and arca-manage register.
//
// Not here: the no-auth mode, policy decisions (package policy).
package keystone
