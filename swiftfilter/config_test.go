package swiftfilter

import (
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
)

// TestSampleConfig: the shipped sample loads and says what it documents.
func TestSampleConfig(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	f, err := config.Load(filepath.Join(filepath.Dir(file), "..", "etc", "arca", "swift-filter.conf.sample"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.BindPort != 8080 || s.Filter.Upstream != "http://127.0.0.1:8081" || s.Keys.ActiveTTL != 60*time.Second ||
		s.Keys.Credentials.Username != "arca-filter" || s.Metrics.Bind != "127.0.0.1:18080" || s.Keystone.TokenCacheTime != 300*time.Second ||
		len(s.Filter.ResellerPrefixes) != 1 || s.Filter.IdleConnTimeout != DefaultIdleConnTimeout || s.Pipeline.Socket != "" || s.Pipeline.IdleTimeout != 5*time.Minute ||
		s.Filter.WWWAuthenticate != `Keystone uri="http://127.0.0.1:5000/v3"` || s.MaxProcs != 0 {
		t.Errorf("sample settings: %+v", s)
	}
}

func TestSettingsErrors(t *testing.T) {
	f, _ := config.Parse([]byte("[DEFAULT]\nbind_port = 99999\nlog_format = xml\n[keystone_authtoken]\nauth_url = http://k/v3\n"))
	if _, err := LoadSettings(f); err == nil {
		t.Error("bad values accepted")
	}
	f, _ = config.Parse([]byte("[DEFAULT]\n"))
	if _, err := LoadSettings(f); err == nil {
		t.Error("missing auth_url accepted")
	}
	f, _ = config.Parse([]byte("[keystone_authtoken]\nauth_url = http://k/v3\nusername = a\n[key_service]\nauth_url = http://other/v3\nusername = b\n"))
	s, err := LoadSettings(f)
	if err != nil || s.Keys.Credentials.Username != "b" || s.Keys.Credentials.AuthURL != "http://other/v3" {
		t.Errorf("[key_service] credentials: %+v %v", s.Keys.Credentials, err)
	}
	f, _ = config.Parse([]byte("[keystone_authtoken]\nauth_url = http://k/v3\n[pipeline]\nsocket = /run/arca/d.sock\nsocket_group = swift\nidle_timeout = 7\n"))
	s, err = LoadSettings(f)
	if err != nil || s.Pipeline != (PipelineSettings{Socket: "/run/arca/d.sock", Group: "swift", IdleTimeout: 7 * time.Second}) {
		t.Errorf("[pipeline]: %+v %v", s.Pipeline, err)
	}
}

// TestMaxProcsSetting: [DEFAULT] max_procs is read (0, Go's default, when
// unset) and bounded; SetMaxProcs applies a value above 0 and leaves the
// process alone at 0.
func TestMaxProcsSetting(t *testing.T) {
	const ks = "[keystone_authtoken]\nauth_url = http://k/v3\n"
	for _, bad := range []string{"-1", "4097", "two"} {
		f, _ := config.Parse([]byte("[DEFAULT]\nmax_procs = " + bad + "\n" + ks))
		if _, err := LoadSettings(f); err == nil {
			t.Errorf("max_procs = %s accepted", bad)
		}
	}
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	set := 1
	if prev == 1 {
		set = 2 // differ from the process's value, so that the check can fail
	}
	f, _ := config.Parse([]byte("[DEFAULT]\nmax_procs = " + strconv.Itoa(set) + "\n" + ks))
	s, err := LoadSettings(f)
	if err != nil || s.MaxProcs != set {
		t.Fatalf("max_procs = %d: %d %v", set, s.MaxProcs, err)
	}
	s.SetMaxProcs()
	if got := runtime.GOMAXPROCS(0); got != set {
		t.Errorf("after SetMaxProcs with max_procs = %d: GOMAXPROCS %d", set, got)
	}
	runtime.GOMAXPROCS(prev)
	f, _ = config.Parse([]byte(ks))
	if s, err = LoadSettings(f); err != nil || s.MaxProcs != 0 {
		t.Fatalf("max_procs unset: %d %v", s.MaxProcs, err)
	}
	s.SetMaxProcs()
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("max_procs unset changed GOMAXPROCS from %d to %d", prev, got)
	}
}
