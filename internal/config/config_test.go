package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOsloSemantics(t *testing.T) {
	f, err := Parse([]byte(`[DEFAULT]
debug = True
[keystone_authtoken]
password = se#cret ;not-a-comment
quoted = "removed, as oslo does"
single = 'se#cret'
inner = "a" b "c"
unbalanced = "half
roles = service, admin ,
multi = first
    second
empty =
[database]
connection = mysql+pymysql://arca:p@127.0.0.1/arca?charset=utf8
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ section, key, want string }{
		{"keystone_authtoken", "password", "se#cret ;not-a-comment"},
		{"keystone_authtoken", "quoted", `removed, as oslo does`},
		{"keystone_authtoken", "single", `se#cret`},
		{"keystone_authtoken", "inner", `a" b "c`},
		{"keystone_authtoken", "unbalanced", `"half`},
		{"keystone_authtoken", "multi", "first\nsecond"},
		{"database", "connection", "mysql+pymysql://arca:p@127.0.0.1/arca?charset=utf8"},
		{"DEFAULT", "absent", "fallback"},
		{"keystone_authtoken", "empty", ""},
	}
	for _, tt := range tests {
		if got := f.String(tt.section, tt.key, "fallback"); got != tt.want {
			t.Errorf("[%s] %s = %q, want %q", tt.section, tt.key, got, tt.want)
		}
	}
	if !f.Bool("DEFAULT", "debug", false) {
		t.Error("debug = True not read as true")
	}
	if got := f.List("keystone_authtoken", "roles", nil); strings.Join(got, "|") != "service|admin" {
		t.Errorf("roles = %q", got)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestBadValuesAreAllReported(t *testing.T) {
	f, err := Parse([]byte("[DEFAULT]\ndebug = maybe\nbind_port = 99999\ntimeout = soon\nmode = loud\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.Bool("DEFAULT", "debug", false)
	f.Int("DEFAULT", "bind_port", 9311, 1, 65535)
	f.Seconds("DEFAULT", "timeout", time.Second)
	f.Choice("DEFAULT", "mode", "text", "text", "json")
	err = f.Err()
	if err == nil {
		t.Fatal("no error for four bad values")
	}
	for _, want := range []string{"[DEFAULT] debug", "[DEFAULT] bind_port", "[DEFAULT] timeout", "[DEFAULT] mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestLaterFilesOverride(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	if err := os.WriteFile(a, []byte("[DEFAULT]\nx = 1\ny = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("[DEFAULT]\ny = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if f.String("", "x", "") != "1" || f.String("", "y", "") != "2" {
		t.Fatalf("x=%q y=%q", f.String("", "x", ""), f.String("", "y", ""))
	}
	if _, err := Load(filepath.Join(dir, "missing.conf")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[DEFAULT]\ndebug = true\n"))
	f.Add([]byte("[s]\nk = v # c\n  continued\n"))
	f.Add([]byte("k=v\n[\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		cfg.Bool("DEFAULT", "debug", false)
		cfg.Int("DEFAULT", "n", 0, 0, 10)
		cfg.Seconds("s", "k", 0)
		cfg.List("s", "k", nil)
		_ = cfg.Err()
	})
}
