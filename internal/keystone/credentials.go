package keystone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// Credentials are a service user's, with keystoneauth's option names: a
// password (Username or UserID, Password, and the project the token is
// scoped to) or an application credential (ID, or Name with the user, and
// Secret). The validator's service user ([keystone_authtoken]), the key
// clients' ([key_service] of the filter, [arca] of the object server) and
// arca-manage register's all log in through AuthOptions, so no two of them
// can read one section differently.
type Credentials struct {
	// AuthURL is Keystone, versioned (http://keystone:5000/v3) or not.
	AuthURL string
	// AuthType is "password" or "v3applicationcredential" (keystoneauth's
	// other spellings accepted). Empty: an application credential when one
	// is set, else a password.
	AuthType string

	Username       string
	UserID         string
	Password       string
	UserDomainName string
	UserDomainID   string

	ProjectName       string
	ProjectID         string
	ProjectDomainName string
	ProjectDomainID   string

	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string
}

// authType resolves AuthType to AuthTypePassword or
// AuthTypeApplicationCredential.
func (c Credentials) authType() (string, error) {
	switch strings.ToLower(c.AuthType) {
	case "":
		if c.ApplicationCredentialID != "" || c.ApplicationCredentialName != "" {
			return AuthTypeApplicationCredential, nil
		}
		return AuthTypePassword, nil
	case AuthTypePassword:
		return AuthTypePassword, nil
	case AuthTypeApplicationCredential, "v3_application_credential", "application_credential":
		return AuthTypeApplicationCredential, nil
	}
	return "", fmt.Errorf("keystone: unsupported auth_type %q (want %s or %s)", c.AuthType, AuthTypePassword, AuthTypeApplicationCredential)
}

// AuthOptions are gophercloud's options for c: its application
// credential, which carries its own project, or its password with a token
// scoped to the project (unscoped without one). A user or project domain
// left unset is Keystone's "default" domain; a user or project given by ID
// needs none. Re-authentication is allowed, so a long-lived client replaces
// an expired or revoked token by itself.
func (c Credentials) AuthOptions() (gophercloud.AuthOptions, error) {
	ao := gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, AllowReauth: true}
	if c.AuthURL == "" {
		return ao, errors.New("keystone: auth_url is required")
	}
	kind, err := c.authType()
	if err != nil {
		return ao, err
	}
	if kind == AuthTypeApplicationCredential {
		return c.applicationCredential(ao)
	}
	if (c.Username == "" && c.UserID == "") || c.Password == "" {
		return ao, fmt.Errorf("keystone: auth_type %s needs username (or user_id) and password", AuthTypePassword)
	}
	ao.Username, ao.UserID, ao.Password = c.Username, c.UserID, c.Password
	if c.UserID == "" {
		ao.DomainName, ao.DomainID = domain(c.UserDomainName, c.UserDomainID)
	}
	switch {
	case c.ProjectID != "":
		ao.Scope = &gophercloud.AuthScope{ProjectID: c.ProjectID}
	case c.ProjectName != "":
		ao.Scope = &gophercloud.AuthScope{ProjectName: c.ProjectName}
		ao.Scope.DomainName, ao.Scope.DomainID = domain(c.ProjectDomainName, c.ProjectDomainID)
	}
	return ao, nil
}

func (c Credentials) applicationCredential(ao gophercloud.AuthOptions) (gophercloud.AuthOptions, error) {
	if (c.ApplicationCredentialID == "" && c.ApplicationCredentialName == "") || c.ApplicationCredentialSecret == "" {
		return ao, fmt.Errorf("keystone: auth_type %s needs application_credential_id (or _name) and application_credential_secret", AuthTypeApplicationCredential)
	}
	ao.ApplicationCredentialID = c.ApplicationCredentialID
	ao.ApplicationCredentialSecret = c.ApplicationCredentialSecret
	if c.ApplicationCredentialID == "" {
		// A credential named, not identified, belongs to a named user.
		ao.ApplicationCredentialName = c.ApplicationCredentialName
		ao.Username, ao.UserID = c.Username, c.UserID
		if c.UserID == "" {
			ao.DomainName, ao.DomainID = domain(c.UserDomainName, c.UserDomainID)
		}
	}
	return ao, nil
}

// domain picks the ID over the name, and Keystone's "default" domain when
// neither is set.
func domain(name, id string) (string, string) {
	switch {
	case id != "":
		return "", id
	case name != "":
		return name, ""
	}
	return "", "default"
}
