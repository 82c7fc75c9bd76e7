package keystone

import "opendev.org/x/arca/internal/config"

// Section is keystonemiddleware's section, read by arca-api, the filter
// and arca-manage register alike.
const Section = "keystone_authtoken"

// LoadCredentials reads a service user's credentials from section with
// keystoneauth's option names (auth_url, auth_type, username, user_id,
// password, user_domain_name, user_domain_id, project_name, project_id,
// project_domain_name, project_domain_id, application_credential_id,
// application_credential_name, application_credential_secret); def holds
// the values of options the section leaves unset. Bad values are recorded
// in f (f.Err).
func LoadCredentials(f *config.File, section string, def Credentials) Credentials {
	s := func(key, d string) string { return f.String(section, key, d) }
	return Credentials{
		AuthURL:                     s("auth_url", def.AuthURL),
		AuthType:                    s("auth_type", def.AuthType),
		Username:                    s("username", def.Username),
		UserID:                      s("user_id", def.UserID),
		Password:                    s("password", def.Password),
		UserDomainName:              s("user_domain_name", def.UserDomainName),
		UserDomainID:                s("user_domain_id", def.UserDomainID),
		ProjectName:                 s("project_name", def.ProjectName),
		ProjectID:                   s("project_id", def.ProjectID),
		ProjectDomainName:           s("project_domain_name", def.ProjectDomainName),
		ProjectDomainID:             s("project_domain_id", def.ProjectDomainID),
		ApplicationCredentialID:     s("application_credential_id", def.ApplicationCredentialID),
		ApplicationCredentialName:   s("application_credential_name", def.ApplicationCredentialName),
		ApplicationCredentialSecret: s("application_credential_secret", def.ApplicationCredentialSecret),
	}
}

// LoadConfig reads [keystone_authtoken] with keystonemiddleware's option
// names, so an operator's existing section works unchanged: the
// credentials (LoadCredentials; auth_type defaults to password),
// www_authenticate_uri (or its old name auth_uri), region_name, interface,
// memcached_servers (accepted, unused), token_cache_time,
// negative_cache_time, token_cache_size, service_token_roles,
// service_token_roles_required and http_connect_timeout. Bad values are
// recorded in f (f.Err); an unset auth_url is the caller's to refuse, in
// its own words.
func LoadConfig(f *config.File) Config {
	const k = Section
	return Config{
		WWWAuthenticateURI:        f.String(k, "www_authenticate_uri", f.String(k, "auth_uri", "")),
		Credentials:               LoadCredentials(f, k, Credentials{AuthType: AuthTypePassword}),
		RegionName:                f.String(k, "region_name", ""),
		Interface:                 f.String(k, "interface", ""),
		MemcachedServers:          f.List(k, "memcached_servers", nil),
		TokenCacheTime:            f.Seconds(k, "token_cache_time", DefaultTokenCacheTime),
		NegativeCacheTime:         f.Seconds(k, "negative_cache_time", DefaultNegativeCacheTime),
		CacheSize:                 f.Int(k, "token_cache_size", DefaultCacheSize, 1, 10000000),
		ServiceTokenRoles:         f.List(k, "service_token_roles", []string{"service"}),
		ServiceTokenRolesRequired: f.Bool(k, "service_token_roles_required", false),
		HTTPTimeout:               f.Seconds(k, "http_connect_timeout", DefaultHTTPTimeout),
	}
}
