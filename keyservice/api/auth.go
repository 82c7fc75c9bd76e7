package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

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
type NoAuth struct{}

// Authenticate reads the identity headers.
func (NoAuth) Authenticate(_ context.Context, r *http.Request) (keyservice.Caller, error) {
	project := strings.TrimSpace(r.Header.Get("X-Project-Id"))
	if project == "" || len(project) > 255 {
		return keyservice.Caller{}, keyservice.Errorf(ErrUnauthenticated, "No-auth mode: the X-Project-Id header is required.")
	}
	caller := keyservice.Caller{ProjectID: project, UserID: strings.TrimSpace(r.Header.Get("X-User-Id"))}
	for _, role := range strings.Split(r.Header.Get("X-Roles"), ",") {
		if role = strings.TrimSpace(role); role != "" {
			caller.Roles = append(caller.Roles, role)
		}
	}
	return caller, nil
}

// Challenge is empty: there is nothing to authenticate against.
func (NoAuth) Challenge() string { return "" }

// ProjectIsolation is the authorizer of no-auth mode: any operation within
// the caller's own project, nothing across projects, except that stored
// ACLs apply as under Barbican's policy: a user in a resource's "read" ACL
// may use the read rules from any project, and a resource whose read ACL
// has project-access off is left to its creator, project admins and the
// ACL's users.
type ProjectIsolation struct{}

// aclReadRules are the rules a "read" ACL grants (Barbican's defaults:
// the rules whose check string includes secret_acl_read or
// container_acl_read).
var aclReadRules = map[string]bool{
	"secret:get": true, "secret:decrypt": true, "secret_meta:get": true,
	"secret_consumers:get": true, "secret_consumers:post": true, "secret_consumers:delete": true,
	"container:get": true, "consumer:get": true,
	"container_consumers:get": true, "container_consumers:post": true, "container_consumers:delete": true,
}

// Authorize allows the caller's own project, and ACL reads.
func (ProjectIsolation) Authorize(_ context.Context, rule string, caller keyservice.Caller, target Target) error {
	read := target.ACLs["read"]
	aclUser := caller.UserID != "" && aclReadRules[rule] && slices.Contains(read.Users, caller.UserID)
	switch {
	case target.ProjectID == "" || aclUser:
		return nil
	case target.ProjectID != caller.ProjectID:
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: the resource belongs to another project.")
	case read.ProjectAccess != nil && !*read.ProjectAccess &&
		(caller.UserID == "" || caller.UserID != target.CreatorID) && !slices.Contains(caller.Roles, "admin"):
		return keyservice.Errorf(keyservice.ErrForbidden, "Forbidden: the resource is private to its creator.")
	}
	return nil
}
