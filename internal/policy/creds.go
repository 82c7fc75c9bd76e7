package policy

import "opendev.org/x/arca/internal/keystone"

// CredentialsFromToken builds Credentials from a validated user token; isService
// is the verdict of keystone.Validator.ValidateService on the request's
// X-Service-Token.
func CredentialsFromToken(t *keystone.Token, isService bool) Credentials {
	return Credentials{
		UserID:          t.UserID,
		UserDomainID:    t.UserDomainID,
		ProjectID:       t.ProjectID,
		ProjectDomainID: t.ProjectDomainID,
		DomainID:        t.DomainID,
		SystemScope:     t.SystemScope,
		Roles:           append([]string(nil), t.Roles...),
		IsService:       isService,
		IsAdminProject:  t.IsAdminProject,
	}
}
