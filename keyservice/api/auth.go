package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/keyservice"
)

// Authenticator establishes who a request acts for. It returns an error
// wrapping ErrUnauthenticated (401) or keyservice.ErrUnavailable (503).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (keyservice.Caller, error)
	// Challenge is the WWW-Authenticate value sent with a 401 ("" for none).
	Challenge() string
}

// Target is what a policy rule is checked against. It is built from stored
// rows only, never from query parameters or request bodies (CVE-2022-3100).
type Target struct {
	// Kind is the resource kind ("secret", "order", "container",
	// "project_key"), empty for collection routes.
	Kind      string
	ProjectID string
	CreatorID string
	// ACLs are the resource's stored ACLs by operation ("read").
	ACLs map[string]ACL
}

// ACL is one stored ACL of a secret or container for one operation.
type ACL struct {
	Users []string
	// ProjectAccess is the stored project-access flag, nil when unset.
	ProjectAccess *bool
}

// Authorizer decides whether caller may apply rule to target. It returns nil
// or an error wrapping keyservice.ErrForbidden.
type Authorizer interface {
	Authorize(ctx context.Context, rule string, caller keyservice.Caller, target Target) error
}

// NoAuth is the development authenticator, like Barbican's unauthenticated
// pipeline: the project comes from X-Project-Id, the user from X-User-Id and
// roles from X-Roles, all trusted. Never use it where a client could reach.
// Its callers go through the same policy as Keystone's (PolicyAuthorizer):
// only the source of the identity differs.
//
// Without X-Roles the caller holds NoAuthDefaultRoles. Barbican's pipeline
// defaults to its admin role alone; with the new defaults that role passes
// none of the member rules, so the default here is what a Keystone token of
// a project admin carries (admin implies member implies reader): "make run"
// and the README's curl and barbican --no-auth examples work unchanged.
// Send X-Roles to act as anything else (X-Roles: reader,
// X-Roles: key-manager:object-server, ...). "OpenStack-System-Scope: all"
// (keystonemiddleware's header) instead of X-Project-Id makes a
// system-scoped caller.
type NoAuth struct{}

// NoAuthDefaultRoles are a no-auth caller's roles when X-Roles is absent.
var NoAuthDefaultRoles = []string{"admin", "member", "reader"}

// Authenticate reads the identity headers.
func (NoAuth) Authenticate(_ context.Context, r *http.Request) (keyservice.Caller, error) {
	caller := keyservice.Caller{UserID: strings.TrimSpace(r.Header.Get("X-User-Id"))}
	project := strings.TrimSpace(r.Header.Get("X-Project-Id"))
	system := strings.TrimSpace(r.Header.Get(systemScopeHeaderKey))
	switch {
	case system != "" && project != "":
		return keyservice.Caller{}, keyservice.Errorf(ErrUnauthenticated, "No-auth mode: send X-Project-Id or OpenStack-System-Scope, not both.")
	case system != "":
		if system != "all" {
			return keyservice.Caller{}, keyservice.Errorf(ErrUnauthenticated, "No-auth mode: OpenStack-System-Scope must be 'all'.")
		}
		caller.SystemScope = keyservice.SystemScopeAll
	case project == "" || len(project) > 255:
		return keyservice.Caller{}, keyservice.Errorf(ErrUnauthenticated, "No-auth mode: the X-Project-Id header is required.")
	default:
		caller.ProjectID = project
	}
	for _, role := range strings.Split(r.Header.Get("X-Roles"), ",") {
		// Lower-cased as Barbican's pipeline does; policy compares roles without case anyway.
		if role = strings.ToLower(strings.TrimSpace(role)); role != "" {
			caller.Roles = append(caller.Roles, role)
		}
	}
	if len(caller.Roles) == 0 {
		caller.Roles = slices.Clone(NoAuthDefaultRoles)
	}
	return caller, nil
}

// systemScopeHeaderKey is keystonemiddleware's OpenStack-System-Scope as
// net/http keys it: the mixed-case name would be canonicalized into a new
// string on every no-auth request.
const systemScopeHeaderKey = "Openstack-System-Scope"

// Challenge is empty: there is nothing to authenticate against.
func (NoAuth) Challenge() string { return "" }

// PolicyAuthorizer is the one authorizer of arca-api, in every
// authentication mode: oslo-style rules (package policy) against a target
// built from stored rows.
type PolicyAuthorizer struct {
	Enforcer *policy.Enforcer
}

// Authorize checks rule for caller against target.
func (p *PolicyAuthorizer) Authorize(_ context.Context, rule string, caller keyservice.Caller, target Target) error {
	creds := policy.Credentials{
		UserID: caller.UserID, UserDomainID: caller.UserDomainID,
		ProjectID: caller.ProjectID, ProjectDomainID: caller.ProjectDomainID,
		DomainID: caller.DomainID, SystemScope: caller.SystemScope,
		Roles: caller.Roles, IsService: caller.IsService, IsAdminProject: caller.IsAdminProject,
	}
	ok, err := p.Enforcer.Enforce(rule, creds, PolicyTarget(target, caller.UserID))
	if err != nil {
		return fmt.Errorf("policy rule %s: %w", rule, err)
	}
	if !ok {
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: policy does not allow this operation.")
	}
	return nil
}

// PolicyTarget converts an API target into oslo's flat target.
func PolicyTarget(t Target, callerUserID string) policy.Target {
	resource := policy.Resource{ProjectID: t.ProjectID, CreatorID: t.CreatorID}
	if len(t.ACLs) > 0 {
		resource.ACLs = map[string]policy.ACL{}
		for op, acl := range t.ACLs {
			resource.ACLs[op] = policy.ACL{Users: acl.Users, ProjectAccess: acl.ProjectAccess}
		}
	}
	switch t.Kind {
	case "secret":
		return policy.SecretTarget(resource, callerUserID)
	case "container":
		return policy.ContainerTarget(resource, callerUserID)
	case "order":
		return policy.OrderTarget(t.ProjectID)
	case "project_key":
		return policy.ProjectKeyTarget(t.ProjectID)
	}
	return policy.Target{"project_id": t.ProjectID}
}
