package objectserver

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTrustedPeer: which TCP peers trusted_networks admits, for IPv4,
// IPv6 and IPv4-mapped IPv6 sources, and the loopback default.
func TestTrustedPeer(t *testing.T) {
	nets, err := parseNetworks([]string{"10.1.0.0/24", " 192.0.2.7 ", "2001:db8::/64"})
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := parseNetworks([]string{"::ffff:10.0.0.0/104", "::ffff:192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.9/32")}; !slices.Equal(mapped, want) {
		t.Errorf("IPv4-mapped entries parse as %v, want %v", mapped, want)
	}
	for _, tc := range []struct {
		nets   []netip.Prefix
		remote string
		want   bool
	}{
		{nets, "10.1.0.9:6200", true},
		{nets, "10.1.1.9:6200", false},
		{nets, "192.0.2.7:1", true},
		{nets, "192.0.2.8:1", false},
		{nets, "[::ffff:10.1.0.9]:1", true}, // a dual-stack listener's view of an IPv4 peer
		{nets, "[2001:db8::1]:1", true},
		{nets, "[2001:db8:1::1]:1", false},
		{nets, "127.0.0.1:1", false}, // configured: loopback is not implied
		{nets, "not an address", false},
		{loopbackNetworks, "127.0.0.1:1", true},
		{loopbackNetworks, "127.0.0.2:1", true},
		{loopbackNetworks, "[::1]:1", true},
		{loopbackNetworks, "10.1.0.9:1", false},
		// written IPv4-mapped, a prefix stands for its IPv4 network
		{mapped, "10.0.3.4:1", true},
		{mapped, "[::ffff:10.0.3.4]:1", true},
		{mapped, "11.0.0.1:1", false},
		{mapped, "192.0.2.9:1", true},
		{mapped, "192.0.2.10:1", false},
	} {
		s := &Server{trusted: tc.nets}
		if got := s.trustedPeer(&http.Request{RemoteAddr: tc.remote}); got != tc.want {
			t.Errorf("%v admits %s: %v, want %v", tc.nets, tc.remote, got, tc.want)
		}
	}
	for _, bad := range [][]string{nil, {"10.1.0.0/33"}, {"example.com"}, {"10.1.0.0/24", ""}, {"::ffff:0:0/80"}} {
		if _, err := parseNetworks(bad); err == nil {
			t.Errorf("trusted_networks = %q accepted", bad)
		}
	}
}

// TestCheckExposure: listening beyond loopback needs trusted_networks.
func TestCheckExposure(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		trusted bool
		ok      bool
	}{
		{"127.0.0.1:6200", false, true},
		{"[::1]:6200", false, true},
		{"0.0.0.0:6200", false, false},
		{"[::]:6200", false, false},
		{"10.1.0.5:6200", false, false},
		{"0.0.0.0:6200", true, true},
	} {
		s := &Server{}
		if tc.trusted {
			s.cfg.TrustedNetworks = loopbackNetworks
		}
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.checkExposure(addr); (err == nil) != tc.ok {
			t.Errorf("%s (trusted_networks set: %v): %v", tc.addr, tc.trusted, err)
		}
	}
}

// TestCheckCredentialFiles: a file with a credential must give group and
// others no access; the message names the file and the fix, never the secret.
func TestCheckCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		body string
		mode os.FileMode
		ok   bool
	}{
		{"[arca]\npassword = pw-secret\n", 0o600, true},
		{"[arca]\npassword = pw-secret\n", 0o640, false},
		{"[arca]\npassword = pw-secret\n", 0o620, false},
		{"[arca]\napplication_credential_secret = ac-secret\n", 0o644, false},
		{"[arca]\nusername = arca-object\n", 0o644, true},
		{"[DEFAULT]\nbind_ip = 127.0.0.1\n", 0o644, true},
	} {
		p := filepath.Join(dir, "object-server.conf")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := CheckCredentialFiles([]string{p})
		if (err == nil) != tc.ok {
			t.Errorf("%q mode %04o: %v", tc.body, tc.mode, err)
		}
		if err != nil && (!strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "pw-secret") || strings.Contains(err.Error(), "ac-secret")) {
			t.Errorf("message: %v", err)
		}
	}
}

// TestParseCutoff: legacy_plaintext_before as a UNIX time or RFC 3339.
func TestParseCutoff(t *testing.T) {
	want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"1767225600", "1767225600.00000", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"} {
		got, err := parseCutoff(v)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", v, got, err)
		}
	}
	for _, v := range []string{"yesterday", "2026-01-01", "-5", "0"} {
		if _, err := parseCutoff(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
