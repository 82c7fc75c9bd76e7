package swiftfilter

import (
	"path/filepath"
	"runtime"
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
		s.Filter.WWWAuthenticate != `Keystone uri="http://127.0.0.1:5000/v3"` {
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
