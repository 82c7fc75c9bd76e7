package keystone

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 28, 1, 42, 59, 210382000, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-28T01:42:59.210382Z", want, true},                // Keystone's usual form
		{"2026-11-28T01:42:59.210382", want, true},                 // capped by an application credential: no zone, UTC
		{"2026-11-28T02:42:59.210382+01:00", want, true},           // any zone RFC 3339 allows
		{"2026-11-28T01:42:59Z", want.Truncate(time.Second), true}, // no fraction
		{"2026-11-28T01:42:59", want.Truncate(time.Second), true},  // neither
		{"", time.Time{}, false},                                   // missing
		{"2026-11-28 01:42:59", time.Time{}, false},                // not ISO 8601's T
		{"2026-13-28T01:42:59", time.Time{}, false},                // no such month
		{"1764294179", time.Time{}, false},                         // epoch seconds are not Keystone's
		{"2026-11-28T01:42:59.210382Zjunk", time.Time{}, false},    // trailing bytes
		{"2026-11-28T01:42:59.210382-25:00", time.Time{}, false},   // no such offset
	} {
		got, err := parseTime(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseTime(%q): err = %v, want ok = %v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzTokenBody feeds arbitrary token bodies, as Keystone's answer would
// carry them, to the conversion: it must never panic, and a token it
// accepts must be unexpired, have a user and be scoped.
func FuzzTokenBody(f *testing.F) {
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T02:00:00.000000Z","issued_at":"2026-11-28T00:00:00.000000Z","user":{"id":"u"},"project":{"id":"p"},"roles":[{"name":"member"}]}}`))
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T02:00:00.123456","user":{"id":"u"},"domain":{"id":"d"}}}`))
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T00:59:59Z","user":{"id":"u"},"project":{"id":"p"}}}`))
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T02:00:00Z","user":{"id":""},"project":{"id":"p"}}}`))
	f.Add([]byte(`{"token":{}}`))
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T02:00:00Z","user":{"id":"u"},"system":{"all":true}}}`))
	f.Add([]byte(`{"token":{"expires_at":"2026-11-28T02:00:00Z","user":{"id":"u"},"system":{"all":true},"project":{"id":"p"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b tokenBody
		if json.Unmarshal(data, &b) != nil {
			return
		}
		tok, err := b.toToken(now)
		if err != nil {
			return
		}
		if !now.Before(tok.ExpiresAt) {
			t.Fatalf("accepted a token that expired at %v (now %v)", tok.ExpiresAt, now)
		}
		scopes := 0
		for _, s := range []string{tok.ProjectID, tok.DomainID, tok.SystemScope} {
			if s != "" {
				scopes++
			}
		}
		if tok.UserID == "" || scopes != 1 {
			t.Fatalf("accepted a token without a user or with %d scopes: %+v", scopes, tok)
		}
		if tok.SystemScope != "" && tok.SystemScope != SystemScopeAll {
			t.Fatalf("system scope %q, want %q", tok.SystemScope, SystemScopeAll)
		}
	})
}

// The scope a token carries decides what policy compares against: each of
// Keystone's three scopes is read into its own field, and a token with none,
// or with more than one, is refused.
func TestTokenScopes(t *testing.T) {
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	const head = `{"token":{"expires_at":"2026-11-28T02:00:00Z","user":{"id":"u","domain":{"id":"default"}},"roles":[{"name":"admin"}]`
	for _, tc := range []struct {
		name                      string
		body                      string
		project, domain, system   string
		projectScoped, wantAccept bool
	}{
		{"project", head + `,"project":{"id":"p","name":"demo","domain":{"id":"default"}}}}`, "p", "", "", true, true},
		{"domain", head + `,"domain":{"id":"d","name":"other"}}}`, "", "d", "", false, true},
		{"system", head + `,"system":{"all":true}}}`, "", "", SystemScopeAll, false, true},
		{"unscoped", head + `}}`, "", "", "", false, false},
		{"system not all", head + `,"system":{"all":false}}}`, "", "", "", false, false},
		{"system of another shape", head + `,"system":{"all":"true"}}}`, "", "", "", false, false},
		{"empty project id", head + `,"project":{"id":""}}}`, "", "", "", false, false},
		{"project and system", head + `,"project":{"id":"p"},"system":{"all":true}}}`, "", "", "", false, false},
		{"project and domain", head + `,"project":{"id":"p"},"domain":{"id":"d"}}}`, "", "", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b tokenBody
			if err := json.Unmarshal([]byte(tc.body), &b); err != nil {
				t.Fatal(err)
			}
			tok, err := b.toToken(now)
			if !tc.wantAccept {
				if err == nil {
					t.Fatalf("accepted: %+v", tok)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.ProjectID != tc.project || tok.DomainID != tc.domain || tok.SystemScope != tc.system {
				t.Errorf("scope = project %q domain %q system %q, want %q %q %q",
					tok.ProjectID, tok.DomainID, tok.SystemScope, tc.project, tc.domain, tc.system)
			}
			if tok.ProjectScoped() != tc.projectScoped {
				t.Errorf("ProjectScoped() = %v", tok.ProjectScoped())
			}
		})
	}
}
