package objectserver

import (
	"strings"
	"testing"
)

// TestShownMeta: the allocation-free classification answers as the
// lower-casing one it replaced, for ASCII, non-ASCII and long names.
func TestShownMeta(t *testing.T) {
	s := &Server{allowed: map[string]bool{}}
	for _, h := range DefaultAllowedHeaders {
		s.allowed[h] = true
	}
	old := func(k string) bool {
		lk := strings.ToLower(k)
		return !isArcaMeta(lk) && (isUserMeta(lk) || isSysMeta(lk) || isTransientSysMeta(lk) || s.allowed[lk])
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"X-Object-Meta-Color", true},
		{"x-object-meta-color", true},
		{"X-Object-Meta-", false},
		{"X-Object-Sysmeta-Foo", true},
		{"X-Object-Sysmeta-", false},
		{"X-Object-Sysmeta-Arca-Key-Id", false},
		{"x-object-sysmeta-arca-wrapped-key", false},
		{"X-Object-Transient-Sysmeta-", true},
		{"X-Object-Transient-Sysmeta-Crypto-Meta", true},
		{"Content-Disposition", true},
		{"CONTENT-ENCODING", true},
		{"X-Delete-At", true},
		{"Content-Type", false},
		{"Content-Length", false},
		{"ETag", false},
		{"X-Timestamp", false},
		{"name", false},
		{"", false},
		{"X-Object-Meta-\u00fc", true},
		{"X-Object-Meta-\xff", true},
		{"\u212Aeep", false},
		{"X-Object-Meta-" + strings.Repeat("L", 200), true},
		{strings.Repeat("x", 300), false},
	} {
		if got := s.shownMeta(tc.name); got != tc.want || got != old(tc.name) {
			t.Errorf("shownMeta(%q) = %v, want %v (lower-casing: %v)", tc.name, got, tc.want, old(tc.name))
		}
	}
}
