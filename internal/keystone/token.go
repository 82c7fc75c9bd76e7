package keystone

import (
	"slices"
	"strings"
	"time"
)

// Token is what a validated Keystone token tells about its bearer.
type Token struct {
	UserID          string
	UserName        string
	UserDomainID    string
	ProjectID       string // project-scoped tokens
	ProjectName     string
	ProjectDomainID string
	DomainID        string // domain-scoped tokens
	// SystemScope is "all" for a system-scoped token (Keystone's
	// "system": {"all": true}), as oslo.policy's system_scope credential.
	SystemScope string
	Roles       []string
	ExpiresAt   time.Time
	IssuedAt    time.Time
	AuditIDs    []string
	// IsAdminProject is Keystone's is_admin_project; true when Keystone does not
	// say (no admin project configured), as keystonemiddleware assumes.
	IsAdminProject bool
}

// SystemScopeAll is Token.SystemScope for a token scoped to the whole system.
const SystemScopeAll = "all"

// ProjectScoped reports whether the token is scoped to a project. Every Arca
// resource belongs to a project; domain- and system-scoped tokens reach only
// the routes whose rules name them.
func (t *Token) ProjectScoped() bool { return t.ProjectID != "" }

// HasRole reports whether the token carries one of roles; role names compare
// case-insensitively, as in oslo.policy.
func (t *Token) HasRole(roles ...string) bool {
	for _, have := range t.Roles {
		for _, want := range roles {
			if strings.EqualFold(have, want) {
				return true
			}
		}
	}
	return false
}

func (t *Token) clone() *Token {
	c := *t
	c.Roles = slices.Clone(t.Roles)
	c.AuditIDs = slices.Clone(t.AuditIDs)
	return &c
}

// tokenBody is the part of the "token" object of Keystone's GET /v3/auth/tokens
// answer that Arca reads (gophercloud's ExtractInto unwraps the "token" key).
type tokenBody struct {
	Token struct {
		ExpiresAt string   `json:"expires_at"`
		IssuedAt  string   `json:"issued_at"`
		AuditIDs  []string `json:"audit_ids"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"project"`
		Domain *struct {
			ID string `json:"id"`
		} `json:"domain"`
		// Keystone writes "system": {"all": true} into system-scoped tokens.
		System map[string]any `json:"system"`
		Roles  []struct {
			Name string `json:"name"`
		} `json:"roles"`
		IsAdminProject *bool `json:"is_admin_project"`
	}
}

// parseTime reads a Keystone timestamp. Most carry a zone
// ("2026-01-02T15:04:05.000000Z"), but a token capped by an application
// credential's expiry has that credential's expires_at as Keystone stored
// it, without one ("2026-01-02T15:04:05.123456"): UTC, as oslo's
// parse_isotime (keystonemiddleware) takes it.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}

// toToken checks what Arca requires of a token and converts it.
func (b *tokenBody) toToken(now time.Time) (*Token, error) {
	kt := &b.Token
	exp, err := parseTime(kt.ExpiresAt)
	if err != nil {
		return nil, invalid("token without a valid expires_at")
	}
	if !now.Before(exp) {
		return nil, invalid("token expired")
	}
	if kt.User.ID == "" {
		return nil, invalid("token without a user")
	}
	t := &Token{
		UserID:         kt.User.ID,
		UserName:       kt.User.Name,
		UserDomainID:   kt.User.Domain.ID,
		ExpiresAt:      exp,
		AuditIDs:       kt.AuditIDs,
		IsAdminProject: kt.IsAdminProject == nil || *kt.IsAdminProject,
	}
	if iss, err := parseTime(kt.IssuedAt); err == nil {
		t.IssuedAt = iss
	}
	// Exactly one scope. The scope is what policy checks compare against, so
	// a token whose scope is ambiguous is refused rather than read one way.
	scopes := 0
	if kt.Project != nil && kt.Project.ID != "" {
		t.ProjectID, t.ProjectName, t.ProjectDomainID = kt.Project.ID, kt.Project.Name, kt.Project.Domain.ID
		scopes++
	}
	if kt.Domain != nil && kt.Domain.ID != "" {
		t.DomainID = kt.Domain.ID
		scopes++
	}
	if all, _ := kt.System["all"].(bool); all {
		t.SystemScope = SystemScopeAll
		scopes++
	}
	switch {
	case scopes == 0:
		// Unscoped: such a token carries no roles and can do nothing here.
		return nil, invalid("token not scoped to a project, a domain or the system")
	case scopes > 1:
		return nil, invalid("token with more than one scope")
	}
	for _, r := range kt.Roles {
		t.Roles = append(t.Roles, r.Name)
	}
	return t, nil
}
