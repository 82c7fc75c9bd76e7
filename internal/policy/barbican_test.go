package policy

import (
	"bytes"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// arcaOnlyRules are the rules Arca defines that Barbican does not: version
// discovery (unguarded in Barbican) and the project-keys extension.
var arcaOnlyRules = []string{
	"arca_object_server", "arca_swift_filter",
	"project_key:create", "project_key:delete", "project_key:get_active", "project_key:get_listing_key", "project_key:list", "project_key:payload", "project_key:rotate",
	"project_key_project_match", "version:get",
}

// barbicanDefaults runs oslo's sample generator over the installed Barbican
// and returns its rules' defaults and, for the rules Barbican deprecated, the
// deprecated (legacy) check strings.
func barbicanDefaults(t *testing.T) (defaults, deprecated map[string]string) {
	t.Helper()
	// barbican-common and python3-oslo.policy provide it (tools/stack.sh install).
	testenv.RequireTools(t, "oslopolicy-sample-generator")
	gen, err := exec.LookPath("oslopolicy-sample-generator")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(gen, "--namespace", "barbican")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --namespace barbican: %v\n%s", gen, err, stderr.String())
	}
	// Defaults are the lines `#"name": "check"`; YAML reads them once uncommented.
	var uncommented [][]byte
	for _, m := range regexp.MustCompile(`(?m)^#(".*": ".*")$`).FindAllSubmatch(out, -1) {
		uncommented = append(uncommented, m[1])
	}
	defaults, err = ParseRules(bytes.Join(uncommented, []byte("\n")))
	if err != nil {
		t.Fatalf("parsing the generator's defaults: %v", err)
	}
	if len(defaults) < 60 {
		t.Fatalf("the generator printed %d Barbican rules; is barbican installed?\n%s", len(defaults), out)
	}
	// A deprecated default follows "# DEPRECATED" as `# "name":"check"`,
	// wrapped over comment lines, up to "has been deprecated since".
	deprecated = map[string]string{}
	block := regexp.MustCompile(`(?s)^"([^"]+)":"(.*)" has been deprecated since`)
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if l != "# DEPRECATED" {
			continue
		}
		var joined []string
		for _, next := range lines[i+1:] {
			if !strings.HasPrefix(next, "# ") {
				break
			}
			joined = append(joined, strings.TrimPrefix(next, "# "))
		}
		m := block.FindStringSubmatch(strings.Join(joined, " "))
		if m == nil {
			t.Fatalf("cannot read the deprecated default after line %d: %q", i+1, joined)
		}
		deprecated[m[1]] = m[2]
	}
	if len(deprecated) == 0 {
		t.Fatal("the generator printed no deprecated defaults")
	}
	return defaults, deprecated
}

// normalize collapses runs of blanks: oslo splits check strings on
// whitespace, and Barbican writes some container rules with double spaces.
func normalize(check string) string { return strings.Join(strings.Fields(check), " ") }

// Every Barbican rule exists in Arca with Barbican's default in the new set
// and Barbican's deprecated default (or its only default) in the legacy set;
// the only rules beyond Barbican's are arcaOnlyRules. Barbican's defaults come
// from the installed Barbican, through oslo's own generator.
func TestDefaultsMatchBarbican(t *testing.T) {
	barbican, deprecated := barbicanDefaults(t)
	newSet, legacySet := Defaults(true), Defaults(false)
	for name, want := range barbican {
		got, ok := newSet[name]
		if !ok {
			t.Errorf("Barbican rule %s missing from Arca", name)
			continue
		}
		if normalize(got) != normalize(want) {
			t.Errorf("%s: new default\n\tArca     %q\n\tBarbican %q", name, got, want)
		}
		wantLegacy := want
		if d, ok := deprecated[name]; ok {
			wantLegacy = d
		}
		if normalize(legacySet[name]) != normalize(wantLegacy) {
			t.Errorf("%s: legacy default\n\tArca     %q\n\tBarbican %q", name, legacySet[name], wantLegacy)
		}
	}
	for name := range deprecated {
		if _, ok := barbican[name]; !ok {
			t.Errorf("deprecated Barbican rule %s has no current default", name)
		}
	}
	var extra []string
	for name := range newSet {
		if _, ok := barbican[name]; !ok {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	if !slices.Equal(extra, arcaOnlyRules) {
		t.Errorf("rules Arca has beyond Barbican's:\n\tgot  %q\n\twant %q", extra, arcaOnlyRules)
	}
}
