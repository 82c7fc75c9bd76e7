package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite etc/arca/policy.yaml.sample")

func mustNew(t *testing.T, opts Options) *Enforcer {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return e
}

func boolp(b bool) *bool { return &b }

const (
	projA, projB = "proj-a", "proj-b"
	userA1       = "user-a1" // creator of the secrets below
	userA2       = "user-a2" // same project, not the creator
	userB        = "user-b"  // other project
)

var (
	plainSecret = Resource{ProjectID: projA, CreatorID: userA1}
	// private: project access off, userB granted read
	privateSecret = Resource{ProjectID: projA, CreatorID: userA1,
		ACLs: map[string]ACL{"read": {Users: []string{userB}, ProjectAccess: boolp(false)}}}
	// project access kept, userB granted read
	sharedSecret = Resource{ProjectID: projA, CreatorID: userA1,
		ACLs: map[string]ACL{"read": {Users: []string{userB}, ProjectAccess: boolp(true)}}}
)

func creds(user, project string, roles ...string) Credentials {
	return Credentials{UserID: user, ProjectID: project, Roles: roles}
}

type enforceCase struct {
	name   string
	rule   string
	creds  Credentials
	target Target
	want   bool
}

func runCases(t *testing.T, e *Enforcer, cases []enforceCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.Enforce(c.rule, c.creds, c.target)
			if err != nil {
				t.Fatalf("Enforce(%s): %v", c.rule, err)
			}
			if got != c.want {
				t.Errorf("Enforce(%s, %+v, %v) = %v, want %v", c.rule, c.creds, c.target, got, c.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	e := mustNew(t, Options{EnforceNewDefaults: true})
	memberA1 := creds(userA1, projA, "member", "reader")
	memberA2 := creds(userA2, projA, "member", "reader")
	readerA2 := creds(userA2, projA, "reader")
	adminA := creds("admin-a", projA, "admin", "member", "reader")
	memberB := creds(userB, projB, "member", "reader")
	other := creds("user-c", projB, "member", "reader") // other project, no ACL
	systemAdmin := Credentials{UserID: "sys", SystemScope: "all", Roles: []string{"admin", "member", "reader"}}
	systemReader := Credentials{UserID: "sysr", SystemScope: "all", Roles: []string{"reader"}}
	s := func(r Resource, caller Credentials) Target { return SecretTarget(r, caller.UserID) }
	c := func(r Resource, caller Credentials) Target { return ContainerTarget(r, caller.UserID) }

	runCases(t, e, []enforceCase{
		{"member creates secret", "secrets:post", memberA1, nil, true},
		{"member lists secrets", "secrets:get", memberA1, nil, true},
		{"reader cannot create", "secrets:post", readerA2, nil, false},
		{"no roles cannot create", "secrets:post", creds(userA1, projA), nil, false},
		{"legacy creator role alone cannot create", "secrets:post", creds(userA1, projA, "creator"), nil, false},
		{"creator reads own", "secret:get", memberA1, s(plainSecret, memberA1), true},
		{"creator decrypts own", "secret:decrypt", memberA1, s(plainSecret, memberA1), true},
		{"project member reads non-private", "secret:decrypt", memberA2, s(plainSecret, memberA2), true},
		{"project member deletes non-private", "secret:delete", memberA2, s(plainSecret, memberA2), true},
		{"project reader cannot decrypt", "secret:decrypt", readerA2, s(plainSecret, readerA2), false},
		{"other project cannot read", "secret:get", other, s(plainSecret, other), false},
		{"other project cannot decrypt", "secret:decrypt", other, s(plainSecret, other), false},
		{"other project cannot delete", "secret:delete", other, s(plainSecret, other), false},
		{"private: member not creator denied", "secret:decrypt", memberA2, s(privateSecret, memberA2), false},
		{"private: creator allowed", "secret:decrypt", memberA1, s(privateSecret, memberA1), true},
		{"private: project admin allowed", "secret:decrypt", adminA, s(privateSecret, adminA), true},
		{"ACL user of other project reads", "secret:get", memberB, s(privateSecret, memberB), true},
		{"ACL user of other project decrypts", "secret:decrypt", memberB, s(sharedSecret, memberB), true},
		{"ACL user cannot delete", "secret:delete", memberB, s(sharedSecret, memberB), false},
		{"ACL user cannot change ACL", "secret_acls:put_patch", memberB, s(sharedSecret, memberB), false},
		{"ACL user cannot read ACL", "secret_acls:get", memberB, s(sharedSecret, memberB), false},
		{"ACL user cannot put payload", "secret:put", memberB, s(sharedSecret, memberB), false},
		{"ACL user reads metadata", "secret_meta:get", memberB, s(sharedSecret, memberB), true},
		{"ACL for someone else grants nothing", "secret:get", other, s(sharedSecret, other), false},
		{"creator edits ACL", "secret_acls:put_patch", memberA1, s(privateSecret, memberA1), true},
		// Barbican 15: an admin of one project has no power over another's secrets.
		{"admin of other project cannot get", "secret:get", creds("admin-b", projB, "admin", "member", "reader"), s(plainSecret, Credentials{}), false},
		{"admin of other project cannot decrypt", "secret:decrypt", creds("admin-b", projB, "admin"), s(plainSecret, Credentials{}), false},
		{"admin of other project cannot delete", "secret:delete", creds("admin-b", projB, "admin", "member", "reader"), s(privateSecret, Credentials{}), false},
		{"admin of other project cannot get a consumer", "consumer:get", creds("admin-b", projB, "admin", "member", "reader"), c(plainSecret, Credentials{}), false},
		{"project admin deletes private", "secret:delete", adminA, s(privateSecret, adminA), true},
		{"project admin gets a consumer", "consumer:get", adminA, c(privateSecret, adminA), true},
		{"system admin registers a secret consumer", "secret_consumers:post", systemAdmin, s(privateSecret, systemAdmin), true},
		{"system admin cannot decrypt", "secret:decrypt", systemAdmin, s(plainSecret, systemAdmin), false},
		{"system admin cannot delete", "secret:delete", systemAdmin, s(plainSecret, systemAdmin), false},
		{"role names are case-insensitive", "secrets:post", creds(userA1, projA, "Member"), nil, true},

		{"container member own", "container:get", memberA2, c(plainSecret, memberA2), true},
		{"container other project", "container:get", other, c(plainSecret, other), false},
		{"container ACL reader", "container:get", memberB, c(privateSecret, memberB), true},
		{"container ACL reader cannot delete", "container:delete", memberB, c(privateSecret, memberB), false},
		{"container consumer via ACL", "container_consumers:post", memberB, c(privateSecret, memberB), true},

		{"order own project", "order:get", memberA2, OrderTarget(projA), true},
		{"order other project", "order:get", memberB, OrderTarget(projA), false},
		{"order delete own project", "order:delete", memberA2, OrderTarget(projA), true},

		{"reader reads quotas", "quotas:get", readerA2, nil, true},
		{"member cannot set project quotas", "project_quotas:put", memberA1, nil, false},
		{"project admin cannot set project quotas", "project_quotas:put", adminA, nil, false},
		{"project admin cannot read project quotas", "project_quotas:get", adminA, nil, false},
		{"system admin sets project quotas", "project_quotas:put", systemAdmin, nil, true},
		{"system reader reads project quotas", "project_quotas:get", systemReader, nil, true},
		{"system reader cannot set project quotas", "project_quotas:put", systemReader, nil, false},
		{"system scope of another value is not system", "project_quotas:put",
			Credentials{UserID: "u", SystemScope: "some", Roles: []string{"admin"}}, nil, false},
		{"project admin cannot post transport keys", "transport_keys:post", adminA, nil, false},
		{"reader lists secret stores", "secretstores:get", readerA2, nil, true},
		{"anyone gets version", "version:get", Credentials{}, nil, true},
	})
}

func TestLegacyDefaults(t *testing.T) {
	e := mustNew(t, Options{EnforceNewDefaults: false})
	creatorA1 := creds(userA1, projA, "creator")
	creatorA2 := creds(userA2, projA, "creator")
	observerA := creds("obs", projA, "observer")
	auditA := creds("aud", projA, "audit")
	adminA := creds("adm", projA, "admin")
	memberA := creds(userA1, projA, "member", "reader")
	serviceAdmin := creds("sa", projB, "key-manager:service-admin")
	s := func(r Resource, caller Credentials) Target { return SecretTarget(r, caller.UserID) }

	runCases(t, e, []enforceCase{
		{"member alone gets 403", "secrets:post", memberA, nil, false},
		{"member cannot list", "secrets:get", memberA, nil, false},
		{"member cannot read own", "secret:get", memberA, s(plainSecret, memberA), false},
		{"creator creates", "secrets:post", creatorA1, nil, true},
		{"admin creates", "secrets:post", adminA, nil, true},
		{"observer cannot create", "secrets:post", observerA, nil, false},
		{"observer lists", "secrets:get", observerA, nil, true},
		{"audit cannot list", "secrets:get", auditA, nil, false},
		{"observer decrypts", "secret:decrypt", observerA, s(plainSecret, observerA), true},
		{"audit reads metadata", "secret:get", auditA, s(plainSecret, auditA), true},
		{"audit cannot decrypt", "secret:decrypt", auditA, s(plainSecret, auditA), false},
		{"observer other project", "secret:decrypt", creds("o2", projB, "observer"), s(plainSecret, Credentials{}), false},
		{"creator deletes own", "secret:delete", creatorA1, s(plainSecret, creatorA1), true},
		{"creator deletes non-private of others", "secret:delete", creatorA2, s(plainSecret, creatorA2), true},
		{"creator cannot delete private of others", "secret:delete", creatorA2, s(privateSecret, creatorA2), false},
		{"observer cannot delete", "secret:delete", observerA, s(plainSecret, observerA), false},
		{"admin deletes private", "secret:delete", adminA, s(privateSecret, adminA), true},
		{"private: observer denied", "secret:decrypt", observerA, s(privateSecret, observerA), false},
		{"ACL user of other project reads", "secret:get", creds(userB, projB), s(privateSecret, Credentials{UserID: userB}), true},
		{"order get other project", "order:get", creds("o", projB, "observer"), OrderTarget(projA), false},
		{"order delete needs admin", "order:delete", creatorA1, OrderTarget(projA), false},
		{"order delete admin", "order:delete", adminA, OrderTarget(projA), true},
		{"service-admin (colon role) sets project quotas", "project_quotas:put", serviceAdmin, nil, true},
		{"admin cannot set project quotas", "project_quotas:put", adminA, nil, false},
		{"service-admin reads quotas", "quotas:get", serviceAdmin, nil, true},
		{"member cannot read quotas", "quotas:get", memberA, nil, false},
		{"colon role is not split", "project_quotas:get", creds("x", projA, "key-manager"), nil, false},
	})
}

// Project keys: the object-server role reads key material and active ids of
// any project, the filter role active ids only; rotation and destruction
// belong to the project's admin, key-manager:service-admin and a system
// admin. The plain service and admin roles and an X-Service-Token grant
// nothing beyond a user's own project.
func TestProjectKeyRules(t *testing.T) {
	member := creds(userA1, projA, "member", "reader", "creator")
	reader := creds(userA2, projA, "reader")
	admin := creds("adm", projA, "admin", "member", "reader")
	adminB := creds("adm-b", projB, "admin", "member", "reader")
	service := creds("nova", "service-proj", "service", "admin", "member", "reader")
	withServiceToken := creds("u", projB, "member", "reader")
	withServiceToken.IsService = true
	objectServer := creds("arca-object", "service-proj", "key-manager:object-server")
	filter := creds("arca-filter", "service-proj", "service", "key-manager:swift-filter")
	serviceAdmin := creds("kmsa", "service-proj", "key-manager:service-admin")
	systemAdmin := Credentials{UserID: "sys", SystemScope: "all", Roles: []string{"admin", "member", "reader"}}
	systemReader := Credentials{UserID: "sysr", SystemScope: "all", Roles: []string{"reader"}}
	domainAdmin := Credentials{UserID: "dom", DomainID: "d", Roles: []string{"admin", "member", "reader"}}

	type who struct {
		name  string
		creds Credentials
	}
	callers := []who{
		{"member", member}, {"reader", reader}, {"project admin", admin}, {"admin of another project", adminB},
		{"service role", service}, {"X-Service-Token", withServiceToken}, {"object-server role", objectServer},
		{"filter role", filter}, {"key-manager:service-admin", serviceAdmin}, {"system admin", systemAdmin},
		{"system reader", systemReader}, {"domain admin", domainAdmin},
	}
	// Who may apply each rule to project A's keys; everyone else may not.
	allowed := map[string][]string{
		"project_key:get_active": {"member", "project admin", "object-server role", "filter role"},
		"project_key:create":     {"member", "project admin", "object-server role"},
		"project_key:payload":    {"object-server role"},
		// the listing key: the filter, and whoever may list P anyway
		"project_key:get_listing_key": {"member", "reader", "project admin", "filter role"},
		"project_key:list":            {"member", "reader", "project admin", "key-manager:service-admin", "system admin", "system reader"},
		"project_key:rotate":          {"project admin", "key-manager:service-admin", "system admin"},
		"project_key:delete":          {"project admin", "key-manager:service-admin", "system admin"},
	}
	for _, newDefaults := range []bool{true, false} {
		e := mustNew(t, Options{EnforceNewDefaults: newDefaults})
		for rule, names := range allowed {
			for _, c := range callers {
				want := slices.Contains(names, c.name)
				if !newDefaults && c.name == "reader" && (rule == "project_key:list" || rule == "project_key:get_listing_key") {
					want = false // legacy: all_users, and reader is not a legacy role
				}
				got, err := e.Enforce(rule, c.creds, ProjectKeyTarget(projA))
				if err != nil || got != want {
					t.Errorf("enforce_new_defaults=%v: %s by %s = %v, %v; want %v", newDefaults, rule, c.name, got, err, want)
				}
			}
		}
		// A user's own project only; an empty project matches nothing.
		for _, tc := range []enforceCase{
			{"member cannot get another project's key", "project_key:get_active", member, ProjectKeyTarget(projB), false},
			{"admin cannot rotate another project's keys", "project_key:rotate", admin, ProjectKeyTarget(projB), false},
			{"no project cannot get active", "project_key:get_active", creds(userA1, "", "member"), ProjectKeyTarget(""), false},
		} {
			if got, err := e.Enforce(tc.rule, tc.creds, tc.target); err != nil || got != tc.want {
				t.Errorf("enforce_new_defaults=%v: %s = %v, %v", newDefaults, tc.name, got, err)
			}
		}
	}
}

func TestUnknownRuleFailsClosed(t *testing.T) {
	e := mustNew(t, Options{EnforceNewDefaults: true})
	ok, err := e.Enforce("secrets:gett", creds(userA1, projA, "admin"), nil)
	if ok || !errors.Is(err, ErrUnknownRule) {
		t.Fatalf("Enforce(unknown) = %v, %v; want false, ErrUnknownRule", ok, err)
	}
}

func TestEmptyValuesNeverMatch(t *testing.T) {
	e := mustNew(t, Options{EnforceNewDefaults: true, Overrides: map[string]string{
		"owner": "user_id:%(target.secret.creator_id)s",
	}})
	ok, err := e.Enforce("owner", Credentials{}, SecretTarget(Resource{}, ""))
	if err != nil || ok {
		t.Fatalf("empty user vs empty creator = %v, %v; want false", ok, err)
	}
}

// Every rule:X a default references must exist, in both sets.
func TestDefaultsAreClosed(t *testing.T) {
	ref := regexp.MustCompile(`rule:([A-Za-z0-9_:]+)`)
	for _, nd := range []bool{true, false} {
		rules := Defaults(nd)
		for name, check := range rules {
			for _, m := range ref.FindAllStringSubmatch(check, -1) {
				if _, ok := rules[m[1]]; !ok {
					t.Errorf("enforce_new_defaults=%v: %s references missing rule %s", nd, name, m[1])
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range defaultRules {
		if seen[r.Name] {
			t.Errorf("rule %s defined twice", r.Name)
		}
		seen[r.Name] = true
	}
	for _, want := range []string{
		"secrets:post", "secrets:get", "secret:get", "secret:decrypt", "secret:put", "secret:delete",
		"secret_meta:get", "secret_meta:post", "secret_meta:put", "secret_meta:delete",
		"orders:post", "orders:get", "order:get", "order:delete",
		"containers:post", "containers:get", "container:get", "container:delete",
		"container_secret:post", "container_secret:delete",
		"consumer:get", "container_consumers:get", "container_consumers:post", "container_consumers:delete",
		"secret_consumers:get", "secret_consumers:post", "secret_consumers:delete",
		"secret_acls:get", "secret_acls:put_patch", "secret_acls:delete",
		"container_acls:get", "container_acls:put_patch", "container_acls:delete",
		"quotas:get", "project_quotas:get", "project_quotas:put", "project_quotas:delete",
		"secretstores:get", "secretstores:get_global_default", "secretstores:get_preferred",
		"secretstore_preferred:post", "secretstore_preferred:delete", "secretstore:get", "version:get",
		"system_reader", "system_admin", "arca_object_server", "arca_swift_filter",
		"project_key:get_active", "project_key:create", "project_key:rotate", "project_key:list", "project_key:payload", "project_key:delete",
		"project_key:get_listing_key",
	} {
		if !seen[want] {
			t.Errorf("rule %s missing", want)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyFileOverrides(t *testing.T) {
	member := creds(userA1, projA, "member")
	cases := []struct {
		name, file, content string
		rule                string
		creds               Credentials
		want                bool
	}{
		{"yaml denies member", "policy.yaml", "# ops override\n\"secrets:post\": \"role:admin\"\n", "secrets:post", member, false},
		{"yaml plain scalar", "policy.yaml", "secrets:post: role:admin or role:member\n", "secrets:post", member, true},
		{"yaml block scalar", "policy.yaml", "\"secrets:post\": >\n  role:admin\n  or role:member\n", "secrets:post", member, true},
		{"json", "policy.json", `{"secrets:post": "!"}`, "secrets:post", creds("a", projA, "admin", "member"), false},
		{"empty check allows", "policy.yaml", `"secrets:post": ""`, "secrets:post", Credentials{}, true},
		{"colon role in override", "policy.yaml", `"secrets:post": "role:key-manager:service-admin or (role:x:y:z and not role:member)"`,
			"secrets:post", creds("sa", projB, "key-manager:service-admin"), true},
		{"colon role, three parts", "policy.yaml", `"secrets:post": "role:key-manager:service-admin or (role:x:y:z and not role:member)"`,
			"secrets:post", creds("sa", projB, "X:Y:Z"), true},
		{"new rule referenced by override", "policy.yaml", "arca_ops: role:ops\n\"secrets:get\": rule:arca_ops\n", "secrets:get", creds("o", projA, "ops"), true},
		{"untouched rule keeps default", "policy.yaml", `"secrets:get": "!"`, "secrets:post", member, true},
		{"empty file", "policy.yaml", "# nothing\n", "secrets:post", member, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustNew(t, Options{EnforceNewDefaults: true, PolicyFile: writeFile(t, c.file, c.content)})
			got, err := e.Enforce(c.rule, c.creds, nil)
			if err != nil || got != c.want {
				t.Fatalf("Enforce(%s) = %v, %v; want %v", c.rule, got, err, c.want)
			}
		})
	}
}

func TestPolicyFileErrors(t *testing.T) {
	for name, content := range map[string]string{
		"syntax":             `"secrets:post": "role:admin and"`,
		"unbalanced":         `"secrets:post": "(role:admin"`,
		"list format":        `{"secrets:post": [["role:admin"]]}`,
		"number":             "secrets:post: 3\n",
		"not a mapping":      "- a\n- b\n",
		"bad yaml":           "secrets:post: [\n",
		"bad json":           `{"secrets:post": }`,
		"bad variable":       `"x": "user_id:%(target.secret.creator_id"`,
		"const on left":      `"x": "True:role"`,
		"self cycle":         `"secrets:post": "rule:secrets:post or role:admin"`,
		"cycle via defaults": "admin: rule:all_users\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(Options{EnforceNewDefaults: true, PolicyFile: writeFile(t, "policy.yaml", content)})
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("New = %v, want ErrInvalidPolicy", err)
			}
		})
	}
	if _, err := New(Options{PolicyFile: filepath.Join(t.TempDir(), "missing.yaml")}); err == nil {
		t.Fatal("a configured but missing policy file must be an error")
	}
}

func TestQuoteColonRoles(t *testing.T) {
	for in, want := range map[string]string{
		"role:admin":                          "role:admin",
		"role:key-manager:service-admin":      "role:'key-manager:service-admin'",
		"(role:a:b)":                          "(role:'a:b')",
		"not role:a:b or role:c":              "not role:'a:b' or role:c",
		"'role:a:b':%(x)s":                    "'role:a:b':%(x)s",
		"user_id:%(role:a:b)s":                "user_id:%(role:a:b)s",
		"myrole:a:b":                          "myrole:a:b",
		"role:%(target.role)s":                "role:%(target.role)s",
		"rule:admin or role:key-manager:x:y ": "rule:admin or role:'key-manager:x:y' ",
	} {
		if got := quoteColonRoles(in); got != want {
			t.Errorf("quoteColonRoles(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "etc", "arca", "policy.yaml.sample")
	want := Sample()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/policy -run TestSampleFile -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is out of date: run go test ./internal/policy -run TestSampleFile -update", path)
	}
	// Uncommenting every rule must give exactly the new defaults.
	uncommented := regexp.MustCompile(`(?m)^#(".*": ".*")$`).ReplaceAll(got, []byte("$1"))
	rules, err := ParseRules(uncommented)
	if err != nil {
		t.Fatal(err)
	}
	defaults := Defaults(true)
	if len(rules) != len(defaults) {
		t.Fatalf("sample has %d rules, defaults %d", len(rules), len(defaults))
	}
	for k, v := range defaults {
		if rules[k] != v {
			t.Errorf("sample %s = %q, default %q", k, rules[k], v)
		}
	}
}
