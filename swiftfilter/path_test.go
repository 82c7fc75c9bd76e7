package swiftfilter

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		path string
		want Target
		bad  bool
	}{
		{"/v1/AUTH_p/c/o", Target{"v1", "AUTH_p", "c", "o"}, false},
		{"/v1.0/AUTH_p/c/o", Target{"v1.0", "AUTH_p", "c", "o"}, false},
		{"/v1/AUTH_p/c/a/b/../c", Target{"v1", "AUTH_p", "c", "a/b/../c"}, false}, // no normalization
		{"/v1/AUTH_p/c//o", Target{"v1", "AUTH_p", "c", "/o"}, false},
		{"/v1/AUTH_p/c/", Target{"v1", "AUTH_p", "c", ""}, false}, // container request
		{"/v1/AUTH_p/c", Target{"v1", "AUTH_p", "c", ""}, false},
		{"/v1/AUTH_p//o", Target{"v1", "AUTH_p", "", "o"}, false}, // not an object
		{"/v1/AUTH_p", Target{"v1", "AUTH_p", "", ""}, false},
		{"/v1/", Target{"v1", "", "", ""}, false},
		{"/v1", Target{}, false},
		{"//v1/AUTH_p/c/o", Target{}, false}, // Swift: invalid path, 404
		{"/v2/AUTH_p/c/o", Target{}, false},  // Swift: 400
		{"/info", Target{}, false},
		{"/healthcheck", Target{}, false},
		{"*", Target{}, false},
		{"", Target{}, false},
		{"/v1/AUTH_p/c/o\x00", Target{}, true},
		{"/v1/AUTH_p/c/\xff", Target{}, true},
		{"/v1/AUTH_p/c/\u00e9t\u00e9", Target{"v1", "AUTH_p", "c", "\u00e9t\u00e9"}, false},
	}
	for _, tc := range cases {
		got, err := ParsePath(tc.path)
		if tc.bad {
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("ParsePath(%q) = %+v, %v; want ErrBadRequest", tc.path, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.want)
		}
	}
}

func TestPrefixes(t *testing.T) {
	cases := []struct {
		list    []string
		want    Prefixes
		account string
		project string
		ok      bool
	}{
		{nil, Prefixes{"AUTH_"}, "AUTH_abc", "abc", true},
		{nil, Prefixes{"AUTH_"}, "SERVICE_abc", "", false},
		{[]string{"AUTH", " SERVICE_ "}, Prefixes{"AUTH_", "SERVICE_"}, "SERVICE_abc", "abc", true},
		{[]string{"''", "AUTH"}, Prefixes{"", "AUTH_"}, "AUTH_abc", "abc", true}, // empty prefix tried last
		{[]string{"''", "AUTH"}, Prefixes{"", "AUTH_"}, "abc", "abc", true},
		{[]string{"AUTH", "AUTH_"}, Prefixes{"AUTH_"}, "AUTH_", "", true},
		{[]string{"A", "AB"}, Prefixes{"A_", "AB_"}, "AB_x", "x", true},
	}
	for _, tc := range cases {
		ps := ParsePrefixes(tc.list)
		if strings.Join(ps, "|") != strings.Join(tc.want, "|") || len(ps) != len(tc.want) {
			t.Errorf("ParsePrefixes(%q) = %q, want %q", tc.list, ps, tc.want)
		}
		p, ok := ps.ProjectOf(tc.account)
		if p != tc.project || ok != tc.ok {
			t.Errorf("%q.ProjectOf(%q) = %q, %v; want %q, %v", ps, tc.account, p, ok, tc.project, tc.ok)
		}
	}
}

func TestDecodeAccountHeader(t *testing.T) {
	good := map[string]string{"AUTH_alt": "AUTH_alt", "AUTH%5Falt": "AUTH_alt"}
	for in, want := range good {
		if got, err := DecodeAccountHeader(in); err != nil || got != want {
			t.Errorf("DecodeAccountHeader(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "%zz", "AUTH_a%2Fb", "AUTH_a/b", "a%00", "a%ff"} {
		if _, err := DecodeAccountHeader(in); !errors.Is(err, ErrBadRequest) {
			t.Errorf("DecodeAccountHeader(%q): %v, want ErrBadRequest", in, err)
		}
	}
}

func TestIsKeyIDName(t *testing.T) {
	for _, n := range []string{"X-Arca-Key-Id", "x-arca-key-id", "X_ARCA_KEY_ID", "x-Arca_key-ID"} {
		if !isKeyIDName(n) {
			t.Errorf("isKeyIDName(%q) = false", n)
		}
	}
	for _, n := range []string{"X-Arca-Key-Ids", "X-Arca-Key", "X-Object-Meta-Arca-Key-Id", "XAArcaKeyIId"} {
		if isKeyIDName(n) {
			t.Errorf("isKeyIDName(%q) = true", n)
		}
	}
}

// FuzzParsePath: never panics, and what it calls an object is exactly the
// path Swift would split into those parts.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v1/AUTH_p/c/o", "/v1/AUTH_p/c/", "//v1/a/c/o", "/v1.0/a/c/o/x/../y", "/v1/a//o", "/info", "/v1/a/c/\x00", "/v1/\xff/c/o"} {
		f.Add(s)
	}
	f.Add("/v1/a/\x00versions\x00c/\x00o\x001")
	f.Fuzz(func(t *testing.T, path string) {
		if rt, err := ParseReservedPath(path); err == nil && strings.IndexByte(path, 0) >= 0 &&
			(strings.IndexByte(rt.Account, 0) >= 0 || !strings.HasPrefix(rt.Container, "\x00")) {
			t.Fatalf("%q: NUL outside the reserved namespace accepted: %+v", path, rt)
		}
		tg, err := ParsePath(path)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if tg.Version == "" && (tg.Account != "" || tg.Container != "" || tg.Object != "") {
			t.Fatalf("%q: parts without a version: %+v", path, tg)
		}
		if strings.Contains(tg.Account, "/") || strings.Contains(tg.Container, "/") {
			t.Fatalf("%q: slash in account or container: %+v", path, tg)
		}
		if tg.IsObject() {
			if got := "/" + tg.Version + "/" + tg.Account + "/" + tg.Container + "/" + tg.Object; got != path {
				t.Fatalf("%q: reassembled as %q", path, got)
			}
			if !strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1.0/") {
				t.Fatalf("%q: object without a valid version", path)
			}
		}
	})
}
