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
		if tok.UserID == "" || (tok.ProjectID == "" && tok.DomainID == "") {
			t.Fatalf("accepted a token without a user or a scope: %+v", tok)
		}
	})
}
