package config_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/testenv"
)

// osloParse is oslo.config's own INI parser (oslo_config.iniparser, the
// one cfg.ConfigOpts reads files with), printing each section's keys as
// cfg sees a string option: the last assignment, its lines joined by "\n".
const osloParse = `
import json, sys
from oslo_config import iniparser
class P(iniparser.BaseParser):
    def __init__(self):
        super().__init__()
        self.values, self.section = {}, None
    def new_section(self, section):
        self.section = section
    def assignment(self, key, value):
        self.values.setdefault(self.section, {})[key] = "\n".join(value)
p = P()
with open(sys.argv[1]) as f:
    p.parse(f)
print(json.dumps(p.values))
`

// TestOsloParsesTheSame: the values an operator writes, quoted, with
// comment characters, continued, read by oslo.config (installed with
// Keystone, the reference every OpenStack service's files are written
// for) and by this package: the same strings. It found that oslo strips a
// pair of quotes, which this package once kept.
func TestOsloParsesTheSame(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import oslo_config.iniparser").Run(); err != nil {
		testenv.StackMissing(t, "oslo.config is not importable by "+python+" (tools/stack.sh install brings it with Keystone): "+err.Error())
	}
	conf := `[DEFAULT]
debug = True
[keystone_authtoken]
password = se#cret ;not-a-comment
quoted = "se#cret"
single = 'x y'
inner = "a" b "c"
unbalanced = "half
spaces =    padded value   
empty =
colon: value
percent = 100%
url = mysql+pymysql://arca:p%40ss@127.0.0.1/arca?charset=utf8
multi = first
    second
[pkcs11]
pin = 1234
`
	path := filepath.Join(t.TempDir(), "arca.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", osloParse, path).Output()
	if err != nil {
		t.Fatalf("oslo: %v", err)
	}
	var oslo map[string]map[string]string
	if err := json.Unmarshal(out, &oslo); err != nil {
		t.Fatalf("oslo's answer %q: %v", out, err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for section, keys := range oslo {
		for key, want := range keys {
			n++
			if got := f.String(section, key, "<absent>"); got != want {
				t.Errorf("[%s] %s: %q here, %q in oslo.config", section, key, got, want)
			}
		}
	}
	if n < 13 {
		t.Fatalf("oslo read %d values: %s", n, out)
	}
}
