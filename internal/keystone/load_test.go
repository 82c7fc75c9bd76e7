package keystone_test

import (
	"reflect"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keystone"
)

// TestLoadConfig: every option of [keystone_authtoken] any Arca binary
// reads, under keystonemiddleware's names, and the defaults of those left
// out.
func TestLoadConfig(t *testing.T) {
	f, err := config.Parse([]byte(`[keystone_authtoken]
auth_uri = http://public:5000/v3
auth_url = http://keystone:5000/v3
username = arca
user_id = u1
password = se#cret
user_domain_id = d1
project_name = service
project_domain_name = Services
application_credential_name = ac
region_name = R1
interface = internal
memcached_servers = m1:11211, m2:11211
token_cache_time = 60
negative_cache_time = 2
token_cache_size = 50
service_token_roles = service, admin
service_token_roles_required = true
http_connect_timeout = 3
`))
	if err != nil {
		t.Fatal(err)
	}
	got := keystone.LoadConfig(f)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	want := keystone.Config{
		WWWAuthenticateURI: "http://public:5000/v3",
		Credentials: keystone.Credentials{AuthURL: "http://keystone:5000/v3", AuthType: keystone.AuthTypePassword,
			Username: "arca", UserID: "u1", Password: "se#cret", UserDomainID: "d1", ProjectName: "service",
			ProjectDomainName: "Services", ApplicationCredentialName: "ac"},
		RegionName: "R1", Interface: "internal", MemcachedServers: []string{"m1:11211", "m2:11211"},
		TokenCacheTime: time.Minute, NegativeCacheTime: 2 * time.Second, CacheSize: 50,
		ServiceTokenRoles: []string{"service", "admin"}, ServiceTokenRolesRequired: true, HTTPTimeout: 3 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadConfig\n got %+v\nwant %+v", got, want)
	}

	empty, _ := config.Parse([]byte("[keystone_authtoken]\nauth_url = http://k/v3\nwww_authenticate_uri = http://w\nauth_uri = http://old\n"))
	def := keystone.LoadConfig(empty)
	if def.WWWAuthenticateURI != "http://w" || def.AuthType != keystone.AuthTypePassword ||
		def.TokenCacheTime != keystone.DefaultTokenCacheTime || def.NegativeCacheTime != keystone.DefaultNegativeCacheTime ||
		def.CacheSize != keystone.DefaultCacheSize || def.HTTPTimeout != keystone.DefaultHTTPTimeout ||
		!reflect.DeepEqual(def.ServiceTokenRoles, []string{"service"}) || def.ServiceTokenRolesRequired {
		t.Fatalf("defaults: %+v", def)
	}

	bad, _ := config.Parse([]byte("[keystone_authtoken]\ntoken_cache_size = 0\nhttp_connect_timeout = soon\n"))
	keystone.LoadConfig(bad)
	if bad.Err() == nil {
		t.Fatal("bad values accepted")
	}
}

// TestLoadCredentialsDefaults: a section's own values win over the
// defaults its reader gives (the object server's [arca] names the
// service project and Default domains unless told otherwise).
func TestLoadCredentialsDefaults(t *testing.T) {
	f, _ := config.Parse([]byte("[arca]\nauth_url = http://k/v3\nusername = obj\npassword = pw\nproject_name = other\n"))
	got := keystone.LoadCredentials(f, "arca", keystone.Credentials{UserDomainName: "Default", ProjectName: "service"})
	want := keystone.Credentials{AuthURL: "http://k/v3", Username: "obj", Password: "pw", UserDomainName: "Default", ProjectName: "other"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
