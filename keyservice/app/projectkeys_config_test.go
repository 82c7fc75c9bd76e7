package app_test

import (
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/app"
)

// TestActiveKeyCacheTTLOption: [project_keys] active_key_cache_ttl, the
// destroy guard, defaults to the object servers' default active-key cache
// lifetime plus a margin and refuses 0 (which would let a key be destroyed while object
// servers still write under it) and garbage.
func TestActiveKeyCacheTTLOption(t *testing.T) {
	for _, tc := range []struct {
		conf    string
		want    time.Duration
		wantErr string
	}{
		{"", keyservice.DefaultActiveKeyCacheTTL, ""},
		{"[project_keys]\nactive_key_cache_ttl = 90\n", 90 * time.Second, ""},
		{"[project_keys]\nactive_key_cache_ttl = 2.5\n", 2500 * time.Millisecond, ""},
		{"[project_keys]\nactive_key_cache_ttl = 0\n", 0, "active_key_cache_ttl must be more than 0"},
		{"[project_keys]\nactive_key_cache_ttl = soon\n", 0, "active_key_cache_ttl"},
		{"[project_keys]\nactive_key_cache_ttl = -5\n", 0, "active_key_cache_ttl"},
	} {
		f, err := config.Parse([]byte("[database]\nconnection = sqlite:////tmp/x.sqlite\n[crypto]\nmaster_key_file = /tmp/k\n" + tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		c, err := app.ConfigFrom(f)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: %v, want an error naming %q", tc.conf, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.ActiveKeyCacheTTL != tc.want {
			t.Errorf("%q: %s %v, want %s", tc.conf, c.ActiveKeyCacheTTL, err, tc.want)
		}
	}
}

// TestSecretStoresOption: [secretstore] enable_multiple_secret_stores is off
// by default and, when on, needs both stores configured.
func TestSecretStoresOption(t *testing.T) {
	const pkcs11 = "[pkcs11]\nlibrary_path = /usr/lib/softhsm/libsofthsm2.so\ntoken_label = arca\n"
	for _, tc := range []struct {
		crypto, rest string
		want         bool
		wantErr      string
	}{
		{"master_key_file = /tmp/k\n", "", false, ""},
		{"master_key_file = /tmp/k\n", pkcs11 + "[secretstore]\nenable_multiple_secret_stores = true\n", true, ""},
		{"master_key_file = /tmp/k\n", "[secretstore]\nenable_multiple_secret_stores = true\n", false, "needs both stores"},
		{"master_key_file =\nmaster_key_backend = pkcs11\n", pkcs11 + "[secretstore]\nenable_multiple_secret_stores = true\n", false, "needs both stores"},
		{"master_key_file = /tmp/k\n", pkcs11 + "[secretstore]\nenable_multiple_secret_stores = maybe\n", false, "enable_multiple_secret_stores"},
	} {
		f, err := config.Parse([]byte("[database]\nconnection = sqlite:////tmp/x.sqlite\n[crypto]\n" + tc.crypto + tc.rest))
		if err != nil {
			t.Fatal(err)
		}
		c, err := app.ConfigFrom(f)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: %v, want an error naming %q", tc.rest, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.MultipleSecretStores != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.rest, c.MultipleSecretStores, err, tc.want)
		}
	}
}
