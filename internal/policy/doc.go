// Package policy is Arca's oslo.policy-compatible authorization: Barbican's rule
// names and check strings, in both of Barbican's default sets, plus Arca's own
// project_key:* rules, with overrides from a policy.yaml.
//
// The default set follows [oslo_policy] enforce_new_defaults. Arca defaults to
// true (member/reader/admin), unlike Barbican, whose legacy set
// (admin/creator/observer/audit/key-manager:service-admin) answers 403 to a plain
// Keystone member. Every rule can be overridden from a YAML or JSON policy file;
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
// target may carry is the project a service addresses with ?project_id= on
// project_key:* rules: there it names the resource, and the rules allow it only
// to a service or to a caller whose token project is that project.
//
// The package evaluates rules with github.com/databus23/goslo.policy, with two
// things done around it (see syntax.go): colon-containing role names and a syntax
// check that keeps goslo from leaking goroutines on malformed rules. Not here:
// token validation (package keystone), HTTP status mapping, scope types
// (oslo's enforce_scope is not implemented; all Barbican rules are project-scoped).
package policy
