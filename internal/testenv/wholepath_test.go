package testenv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// WholePathProxyConfig keeps the stack's options, sets the whole-path
// pipeline, and leaves one versioned_writes section, with both modes.
func TestWholePathProxyConfig(t *testing.T) {
	dir := t.TempDir()
	stack := `[DEFAULT]
bind_port = 8081
swift_dir = /stack/etc
[pipeline:main]
pipeline = catch_errors proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink
`
	if err := os.WriteFile(filepath.Join(dir, "proxy-server.conf"), []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := testenv.WholePathProxyConfig(t, dir, "/rings", 9999)
	for _, want := range []string{
		"bind_port = 9999\n", "swift_dir = /rings\nuser = root\n", "pipeline = " + testenv.WholePathPipeline + "\n",
		"[app:proxy-server]\nerror_suppression_interval = 0\nuse = egg:swift#proxy\naccount_autocreate = true\n",
		"[filter:versioned_writes]\nuse = egg:swift#versioned_writes\nallow_versioned_writes = true\nallow_object_versioning = true\n",
		"[filter:copy]\nuse = egg:swift#copy\n", "[filter:slo]\n", "[filter:dlo]\n", "[filter:bulk]\n", "[filter:listing_formats]\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("configuration lacks %q:\n%s", want, conf)
		}
	}
	for _, once := range []string{"[filter:versioned_writes]", "[filter:symlink]"} {
		if n := strings.Count(conf, once); n != 1 {
			t.Errorf("%s appears %d times:\n%s", once, n, conf)
		}
	}
}
