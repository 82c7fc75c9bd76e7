package keystone

import (
	"reflect"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

func TestAuthOptions(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Credentials
		want    gophercloud.AuthOptions
		wantErr bool
	}{
		{
			name: "application credential: no user, no scope",
			cfg: Credentials{AuthURL: "http://k/v3", AuthType: "v3applicationcredential", ApplicationCredentialID: "ac",
				ApplicationCredentialSecret: "s", Username: "ignored", ProjectName: "ignored"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true,
				ApplicationCredentialID: "ac", ApplicationCredentialSecret: "s"},
		},
		{
			name: "application credential under keystoneauth's other spelling",
			cfg: Credentials{AuthURL: "http://k/v3", AuthType: "v3_application_credential", ApplicationCredentialID: "ac",
				ApplicationCredentialSecret: "s"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true,
				ApplicationCredentialID: "ac", ApplicationCredentialSecret: "s"},
		},
		{
			name: "password: unset domains are the default domain",
			cfg:  Credentials{AuthURL: "http://k/v3", Username: "arca", Password: "pw", ProjectName: "service"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, Username: "arca", Password: "pw",
				DomainID: "default", Scope: &gophercloud.AuthScope{ProjectName: "service", DomainID: "default"}},
		},
		{
			name: "password: named domains",
			cfg: Credentials{AuthURL: "http://k/v3", AuthType: "password", Username: "arca", Password: "pw", UserDomainName: "Users",
				ProjectName: "service", ProjectDomainName: "Services"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, Username: "arca", Password: "pw",
				DomainName: "Users", Scope: &gophercloud.AuthScope{ProjectName: "service", DomainName: "Services"}},
		},
		{
			name: "password without a project: unscoped",
			cfg:  Credentials{AuthURL: "http://k/v3", Username: "arca", Password: "pw", UserDomainID: "d"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, Username: "arca", Password: "pw", DomainID: "d"},
		},
		{
			name: "auth_type unset, an application credential named for its user",
			cfg: Credentials{AuthURL: "http://k/v3", ApplicationCredentialName: "ac", ApplicationCredentialSecret: "s",
				Username: "arca", UserDomainName: "Users"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, ApplicationCredentialName: "ac",
				ApplicationCredentialSecret: "s", Username: "arca", DomainName: "Users"},
		},
		{
			name: "password: user and project by ID need no domain",
			cfg: Credentials{AuthURL: "http://k/v3", UserID: "u1", Password: "pw", UserDomainName: "Users", ProjectID: "p1",
				ProjectName: "ignored", ProjectDomainName: "Services"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, UserID: "u1", Password: "pw",
				Scope: &gophercloud.AuthScope{ProjectID: "p1"}},
		},
		{
			name: "password: a domain ID wins over a name",
			cfg: Credentials{AuthURL: "http://k/v3", Username: "arca", Password: "pw", UserDomainName: "Default", UserDomainID: "d1",
				ProjectName: "service", ProjectDomainName: "Default", ProjectDomainID: "d2"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", AllowReauth: true, Username: "arca", Password: "pw",
				DomainID: "d1", Scope: &gophercloud.AuthScope{ProjectName: "service", DomainID: "d2"}},
		},
		{name: "unknown auth_type", cfg: Credentials{AuthURL: "http://k/v3", AuthType: "token", Username: "a", Password: "p"}, wantErr: true},
		{name: "application credential without its secret", cfg: Credentials{AuthURL: "http://k/v3", AuthType: "v3applicationcredential", ApplicationCredentialID: "ac"}, wantErr: true},
		{name: "password without a user", cfg: Credentials{AuthURL: "http://k/v3", Password: "pw"}, wantErr: true},
		{name: "no auth_url", cfg: Credentials{Username: "arca", Password: "pw"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.AuthOptions()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("auth options\n got %+v (scope %+v)\nwant %+v (scope %+v)", got, got.Scope, tt.want, tt.want.Scope)
			}
		})
	}
}
