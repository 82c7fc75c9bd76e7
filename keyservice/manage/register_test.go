package manage

import (
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

func TestAuthOptionsFromOpenrc(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want gophercloud.AuthOptions
	}{
		{
			name: "devstack openrc",
			env: map[string]string{"OS_AUTH_URL": "http://k/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "pw",
				"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "http://k/v3", Username: "admin", Password: "pw", DomainName: "Default",
				Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"}},
		},
		{
			name: "one domain for both",
			env:  map[string]string{"OS_AUTH_URL": "u", "OS_USERNAME": "a", "OS_PASSWORD": "p", "OS_TENANT_NAME": "t", "OS_DOMAIN_ID": "d"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "u", Username: "a", Password: "p", DomainID: "d",
				Scope: &gophercloud.AuthScope{ProjectName: "t", DomainID: "d"}},
		},
		{
			name: "project id needs no domain",
			env:  map[string]string{"OS_AUTH_URL": "u", "OS_USER_ID": "uid", "OS_PASSWORD": "p", "OS_PROJECT_ID": "pid", "OS_PROJECT_DOMAIN_NAME": "Default"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "u", UserID: "uid", Password: "p", Scope: &gophercloud.AuthScope{ProjectID: "pid"}},
		},
		{
			name: "application credential",
			env:  map[string]string{"OS_AUTH_URL": "u", "OS_APPLICATION_CREDENTIAL_ID": "ac", "OS_APPLICATION_CREDENTIAL_SECRET": "s", "OS_PROJECT_NAME": "x"},
			want: gophercloud.AuthOptions{IdentityEndpoint: "u", ApplicationCredentialID: "ac", ApplicationCredentialSecret: "s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := authOptionsFromOpenrc(func(k string) string { return tt.env[k] })
			gotScope, wantScope := got.Scope, tt.want.Scope
			got.Scope, tt.want.Scope = nil, nil
			if got != tt.want {
				t.Errorf("auth options\n got %+v\nwant %+v", got, tt.want)
			}
			if (gotScope == nil) != (wantScope == nil) || (gotScope != nil && *gotScope != *wantScope) {
				t.Errorf("scope %+v, want %+v", gotScope, wantScope)
			}
		})
	}
}
