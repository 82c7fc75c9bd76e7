package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	goslo "github.com/databus23/goslo.policy"
	"gopkg.in/yaml.v3"
)

var (
	// ErrUnknownRule is returned by Enforce for a rule name that no default and no
	// override defines. The request must be denied: a typo in a handler's rule name
	// must not open an endpoint.
	ErrUnknownRule = errors.New("policy: unknown rule")
	// ErrInvalidPolicy is returned when a policy file or an override cannot be parsed.
	ErrInvalidPolicy = errors.New("policy: invalid policy")
)

// maxPolicyFile bounds what LoadFile reads; real policy files are a few tens of KiB.
const maxPolicyFile = 1 << 20

// Credentials describe the caller, from a validated Keystone token (or the no-auth
// headers). Empty fields never match anything: an empty user id must not equal an
// empty creator id.
type Credentials struct {
	UserID          string
	UserDomainID    string
	ProjectID       string
	ProjectDomainID string
	DomainID        string // domain-scoped tokens
	// SystemScope is "all" for a system-scoped token (oslo's system_scope
	// credential, checked by Barbican's system_reader and system_admin rules),
	// empty otherwise.
	SystemScope string
	Roles       []string
	// IsService is true when the request also carried an X-Service-Token with one of
	// [keystone_authtoken] service_token_roles (see keystone.Validator.ValidateService).
	IsService      bool
	IsAdminProject bool
}

// Target is the flat oslo-style target: keys such as "target.secret.project_id".
// Build it with the helpers in target.go from stored rows, never from request
// parameters (see the package documentation).
type Target map[string]string

// Options configure an Enforcer.
type Options struct {
	// EnforceNewDefaults selects the member/reader/admin defaults (true, Arca's
	// default) or Barbican's legacy admin/creator/observer/audit defaults (false),
	// like [oslo_policy] enforce_new_defaults.
	EnforceNewDefaults bool
	// PolicyFile is an optional policy.yaml (or JSON) whose rules override the
	// defaults. Unlike oslo.policy, a configured file that does not exist is an
	// error: an operator who names a file expects it to be used.
	PolicyFile string
	// Overrides are applied after PolicyFile (tests, programmatic configuration).
	Overrides map[string]string
}

// Enforcer decides whether credentials may perform a rule on a target. It is
// immutable and safe for concurrent use; build a new one to reload a policy file.
type Enforcer struct {
	newDefaults bool
	checks      map[string]string // effective check strings, as written
	engine      *goslo.Enforcer
}

// New builds an Enforcer from the defaults chosen by opts, then the policy file,
// then opts.Overrides.
func New(opts Options) (*Enforcer, error) {
	rules := Defaults(opts.EnforceNewDefaults)
	if opts.PolicyFile != "" {
		file, err := LoadFile(opts.PolicyFile)
		if err != nil {
			return nil, err
		}
		for k, v := range file {
			rules[k] = v
		}
	}
	for k, v := range opts.Overrides {
		rules[k] = v
	}
	translated := make(map[string]string, len(rules))
	for name, check := range rules {
		prepared, err := prepare(check)
		if err != nil {
			return nil, fmt.Errorf("%w: rule %q: %w", ErrInvalidPolicy, name, err)
		}
		translated[name] = prepared
	}
	if c := findCycle(translated); c != "" {
		return nil, fmt.Errorf("%w: rule %q refers to itself through rule: references", ErrInvalidPolicy, c)
	}
	engine, err := parseRules(translated)
	if err != nil {
		return nil, err
	}
	// oslo.policy compares role names case-insensitively; goslo's built-in check does not.
	engine.AddCheck("role", roleCheck)
	return &Enforcer{newDefaults: opts.EnforceNewDefaults, checks: rules, engine: engine}, nil
}

// parseRules hands the rules to goslo, turning a panic inside its generated
// parser into an error so that a hostile policy file cannot crash the service.
func parseRules(rules map[string]string) (e *goslo.Enforcer, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, r)
		}
	}()
	e, err = goslo.NewEnforcer(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	return e, nil
}

func roleCheck(c goslo.Context, _, match string) bool {
	for _, r := range c.Roles {
		if strings.EqualFold(r, match) {
			return true
		}
	}
	return false
}

// Defaults returns a fresh copy of the default rules of one set.
func Defaults(enforceNewDefaults bool) map[string]string {
	m := make(map[string]string, len(defaultRules))
	for _, r := range defaultRules {
		if enforceNewDefaults {
			m[r.Name] = r.New
		} else {
			m[r.Name] = r.Legacy
		}
	}
	return m
}

// RuleNames lists every rule the Enforcer knows, sorted.
func (e *Enforcer) RuleNames() []string {
	names := make([]string, 0, len(e.checks))
	for n := range e.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check returns the effective check string of a rule, as configured.
func (e *Enforcer) Check(rule string) (string, bool) {
	c, ok := e.checks[rule]
	return c, ok
}

// Enforce reports whether creds may perform rule on target. An unknown rule is
// denied with ErrUnknownRule.
func (e *Enforcer) Enforce(rule string, creds Credentials, target Target) (bool, error) {
	if _, ok := e.checks[rule]; !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownRule, rule)
	}
	auth := make(map[string]string, 8)
	put := func(k, v string) {
		if v != "" {
			auth[k] = v
		}
	}
	put("user_id", creds.UserID)
	put("user_domain_id", creds.UserDomainID)
	put("project_id", creds.ProjectID)
	put("project_domain_id", creds.ProjectDomainID)
	put("domain_id", creds.DomainID)
	put("system_scope", creds.SystemScope)
	auth["is_service"] = pyBool(creds.IsService)
	auth["is_admin_project"] = pyBool(creds.IsAdminProject)

	req := make(map[string]string, len(target)+1)
	for k, v := range target {
		if v != "" { // an empty stored value must not match an empty credential
			req[k] = v
		}
	}
	// Barbican passes this into every target so that its new-default check strings
	// ("True:%(enforce_new_defaults)s and ...") are false in legacy mode.
	req["enforce_new_defaults"] = pyBool(e.newDefaults)

	return e.engine.Enforce(rule, goslo.Context{Auth: auth, Roles: creds.Roles, Request: req}), nil
}

// pyBool spells a boolean the way Python's str() does, which is what oslo check
// strings such as "True:%(...)s" compare against.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// LoadFile reads a policy file: YAML (policy.yaml) or JSON (policy.json), a
// mapping of rule name to check string.
func LoadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s: %w", path, err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// ParseRules parses the contents of a policy file and checks every rule's syntax.
func ParseRules(data []byte) (map[string]string, error) {
	if len(data) > maxPolicyFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidPolicy, maxPolicyFile)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrInvalidPolicy)
	}
	rules := map[string]string{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return rules, nil // oslo accepts an empty file (everything commented out)
	}
	var raw map[string]any
	var err error
	if trimmed[0] == '{' {
		err = json.Unmarshal(trimmed, &raw)
	} else {
		err = yaml.Unmarshal(trimmed, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	for name, v := range raw {
		if name == "" {
			return nil, fmt.Errorf("%w: empty rule name", ErrInvalidPolicy)
		}
		var check string
		switch v := v.(type) {
		case string:
			check = v
		case nil:
			check = "" // "rule:" with no value: oslo treats it as an empty check (always true)
		default:
			// Lists (the pre-2014 oslo format) and numbers are refused rather than guessed at.
			return nil, fmt.Errorf("%w: rule %q: check must be a string, not %T", ErrInvalidPolicy, name, v)
		}
		if _, err := prepare(check); err != nil {
			return nil, fmt.Errorf("%w: rule %q: %w", ErrInvalidPolicy, name, err)
		}
		rules[name] = check
	}
	return rules, nil
}
