// Package policy is Arca's oslo.policy-compatible authorization: Barbican's rule
// names and check strings, in both of Barbican's default sets, plus Arca's own
// project_key:* rules, with overrides from a policy.yaml.
//
// The default set follows [oslo_policy] enforce_new_defaults. Arca defaults to
// true (member/reader/admin), unlike Barbican, whose legacy set
// (admin/creator/observer/audit/key-manager:service-admin) answers 403 to a plain
// Keystone member. Both sets are Barbican 15's exactly (a test compares them
// with oslopolicy-sample-generator --namespace barbican): in particular an admin
// of one project has no power over another project's secrets, and project
// quotas belong to a system-scoped reader or admin.
//
// Project keys (project_key:*) are Arca's own. The object servers hold
// key-manager:object-server (rule arca_object_server: key material and active
// key ids of any project), the Swift filter key-manager:swift-filter (rule
// arca_swift_filter: active key ids only). Rotation and destruction belong to
// the project's own admin, key-manager:service-admin and a system-scoped admin.
// The plain service and admin roles and is_service (an X-Service-Token) grant
// nothing on another project's keys: every OpenStack service holds them. Every rule can be overridden from a YAML or JSON policy file;
// etc/arca/policy.yaml.sample lists them all with their defaults.
//
// Enforce fails closed: an unknown rule is denied with ErrUnknownRule, a missing
// target key or an empty credential matches nothing.
//
// # Targets come from stored rows only
//
// Callers build a Target with SecretTarget, ContainerTarget, OrderTarget and
// ProjectKeyTarget from what the store holds (owning project, creator, ACL rows),
// never from query parameters, headers or the request body. Barbican let query
// parameters reach the policy target and a caller could thereby supply the very
// values the rule compared against (CVE-2022-3100). The one request value a
// target may carry is the project addressed with ?project_id= on project_key:*
// rules: there it names the resource, and the rules allow it only to the
// roles above or to a caller whose token project is that project.
//
// The package evaluates rules with github.com/databus23/goslo.policy, with two
// things done around it (see syntax.go): colon-containing role names and a syntax
// check that keeps goslo from leaking goroutines on malformed rules. The token's
// scope reaches checks as oslo's credentials do: project_id for a project-scoped
// token, domain_id for a domain-scoped one, system_scope:all for a system-scoped
// one (Barbican's system_reader and system_admin rules). Not here: token
// validation (package keystone), HTTP status mapping, and which routes a
// non-project token may reach at all (the API's route table decides that, in
// the place of oslo's enforce_scope).
package policy
