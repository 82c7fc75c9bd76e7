package docs_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// block is one fenced code block of a Markdown page: its info string
// ("sh", "ini") and its text, with the line it starts on.
type block struct {
	lang string
	text string
	line int
}

// fencedBlocks returns the page's fenced code blocks in order. Fences
// indented under a list item (as the prerequisites' ini excerpt) count
// too; their indentation is removed.
func fencedBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out    []block
		cur    *block
		indent string
		body   strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			indent = line[:len(line)-len(trimmed)]
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: n}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(strings.TrimPrefix(line, indent))
			body.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: a code block is never closed", path, cur.line)
	}
	return out
}

// step is what the test does for a piece of a shell block: a shell
// script, or one systemctl command that the test carries out itself.
type step struct {
	line      int
	script    string   // when systemctl is nil
	systemctl []string // the command's arguments
}

// A systemctl line the test carries out: plain words, nothing for the
// shell to expand, so that what the guide says is what the test does.
var systemctlLine = regexp.MustCompile(`^systemctl( [a-z0-9@.-]+| --now)+$`)

// steps splits a shell block at its systemctl lines.
func steps(t *testing.T, b block) []step {
	t.Helper()
	var out []step
	var script strings.Builder
	start := b.line + 1
	flush := func(next int) {
		if strings.TrimSpace(script.String()) != "" {
			out = append(out, step{line: start, script: script.String()})
		}
		script.Reset()
		start = next
	}
	for i, line := range strings.Split(strings.TrimSuffix(b.text, "\n"), "\n") {
		n := b.line + 1 + i
		if !strings.HasPrefix(line, "systemctl") {
			script.WriteString(line + "\n")
			continue
		}
		if !systemctlLine.MatchString(line) {
			t.Fatalf("docs/install.md:%d: the test runs systemctl lines itself and takes only plain words: %q", n, line)
		}
		flush(n + 1)
		out = append(out, step{line: n, systemctl: strings.Fields(line)[1:]})
	}
	flush(0)
	return out
}

// execStart is the command line of a unit file's [Service] ExecStart=,
// split into words as systemd splits it (spaces; double or single quotes
// around a word), without the prefixes that change how systemd runs it.
func execStart(t *testing.T, unitFile string) []string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	section, found := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok && section == "[Service]" {
			if found != "" {
				t.Fatalf("%s: more than one ExecStart=", unitFile)
			}
			found = strings.TrimLeft(v, "-@:+!")
		}
	}
	if found == "" {
		t.Fatalf("%s: no ExecStart= in [Service]", unitFile)
	}
	words, err := splitUnitWords(found)
	if err != nil {
		t.Fatalf("%s: ExecStart=%s: %v", unitFile, found, err)
	}
	if !filepath.IsAbs(words[0]) {
		t.Fatalf("%s: ExecStart= names %q, not an absolute path", unitFile, words[0])
	}
	return words
}

// serviceValues is every value of a [Service] directive of a unit file
// (ReadWritePaths=), split into words, the "-" prefix (ignore if missing)
// removed.
func serviceValues(t *testing.T, unitFile, key string) []string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if v, ok := strings.CutPrefix(line, key+"="); ok && section == "[Service]" {
			words, err := splitUnitWords(v)
			if err != nil {
				t.Fatalf("%s: %s=%s: %v", unitFile, key, v, err)
			}
			for _, w := range words {
				out = append(out, strings.TrimPrefix(w, "-"))
			}
		}
	}
	return out
}

// requireWritable fails unless path is inside one of the unit's
// ReadWritePaths=: under ProtectSystem=strict nothing else is writable.
func requireWritable(t *testing.T, unitFile, path string) {
	t.Helper()
	rw := serviceValues(t, unitFile, "ReadWritePaths")
	if !writableIn(rw, path) {
		t.Errorf("%s: ReadWritePaths=%s leaves %s read-only (ProtectSystem=strict)", unitFile, strings.Join(rw, " "), path)
	}
}

// writableIn reports whether path is one of dirs or inside one.
func writableIn(dirs []string, path string) bool {
	for _, d := range dirs {
		rel, err := filepath.Rel(filepath.Clean(d), filepath.Clean(path))
		if err == nil && filepath.IsAbs(d) && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func TestWritableIn(t *testing.T) {
	for _, c := range []struct {
		dirs []string
		path string
		want bool
	}{
		{[]string{"/srv/node"}, "/srv/node", true},
		{[]string{"/srv/node"}, "/srv/node/d1/objects", true},
		{[]string{"/var/lib/arca", "/srv/node/"}, "/srv/node/d1", true},
		{[]string{"/srv/node"}, "/srv/nodes", false},
		{[]string{"/srv/node"}, "/srv", false},
		{[]string{"/srv/node"}, "/tmp/x/node", false},
		{[]string{"/srv/node"}, "/srv/node/../swift", false},
		{[]string{"srv/node"}, "srv/node", false},
		{nil, "/srv/node", false},
	} {
		if got := writableIn(c.dirs, c.path); got != c.want {
			t.Errorf("writableIn(%q, %q) = %v, want %v", c.dirs, c.path, got, c.want)
		}
	}
}

func splitUnitWords(s string) ([]string, error) {
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if q := s[0]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			words = append(words, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		words = append(words, s[:end])
		s = s[end:]
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty command line")
	}
	return words, nil
}

func TestSplitUnitWords(t *testing.T) {
	for in, want := range map[string]string{
		`/usr/bin/a --config-file /etc/a.conf`: `/usr/bin/a|--config-file|/etc/a.conf`,
		`/x "a b"  'c'`:                        `/x|a b|c`,
	} {
		got, err := splitUnitWords(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("splitUnitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `/x "open`} {
		if _, err := splitUnitWords(bad); err == nil {
			t.Errorf("splitUnitWords(%q) took it", bad)
		}
	}
}

// TestGuideBlocks checks the guide's shape without a stack: a variables
// block first, then shell blocks whose systemctl lines the test can carry
// out, and units that exist with an ExecStart the test can run.
func TestGuideBlocks(t *testing.T) {
	blocks := fencedBlocks(t, "install.md")
	var sh []block
	for _, b := range blocks {
		switch b.lang {
		case "sh":
			sh = append(sh, b)
		case "ini":
		default:
			t.Errorf("install.md:%d: a %q block: the test runs sh blocks and shows ini ones, nothing else", b.line, b.lang)
		}
	}
	if len(sh) < 10 {
		t.Fatalf("install.md has %d sh blocks", len(sh))
	}
	if !strings.Contains(sh[0].text, "ARCA_ETC=${ARCA_ETC:-/etc/arca}") {
		t.Errorf("install.md's first block is not the variables block:\n%s", sh[0].text)
	}
	started := map[string]bool{}
	for _, b := range sh[1:] {
		for _, s := range steps(t, b) {
			if s.systemctl != nil {
				for _, w := range s.systemctl[1:] {
					if strings.HasPrefix(w, "arca-") {
						started[w] = true
					}
				}
			}
		}
	}
	for _, u := range []string{"arca-api", "arca-swift-filter", "arca-object-server"} {
		if !started[u] {
			t.Errorf("install.md never starts %s", u)
		}
		if w := execStart(t, filepath.Join("..", "etc", "systemd", u+".service")); filepath.Base(w[0]) != u {
			t.Errorf("%s.service runs %q", u, w)
		}
	}
	// The guide's default SWIFT_DEVICES; the guide's sed moves it with the variable.
	requireWritable(t, filepath.Join("..", "etc", "systemd", "arca-object-server.service"), "/srv/node")
}
