package config

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedSamplesWellFormed: every line of the shipped sample
// configurations is blank, a comment, an "option = value" line or a
// section header alone, and each sample loads. An edit once spliced one section's text into another's
// comment, leaving a line "[keystone_authtoken] password or" that an INI
// parser reads as a section and arca-api's operators would copy.
func TestShippedSamplesWellFormed(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join("..", "..", "etc", "arca", "*.conf.sample"))
	if err != nil || len(samples) < 3 {
		t.Fatalf("samples: %v, %v", samples, err)
	}
	header := regexp.MustCompile(`^\[([a-z0-9_:-]+|DEFAULT)\]$`)
	option := regexp.MustCompile(`^[a-z0-9_]+ = `)
	for _, path := range samples {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case line == "", strings.HasPrefix(line, "#"), strings.HasPrefix(line, ";"):
			case strings.HasPrefix(line, "["):
				if !header.MatchString(line) {
					t.Errorf("%s:%d: not a section header: %q", filepath.Base(path), n, line)
				}
			case option.MatchString(line):
			default:
				t.Errorf("%s:%d: neither a comment, an option nor a section header: %q", filepath.Base(path), n, line)
			}
		}
		f.Close()
		if _, err := Load(path); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
}
