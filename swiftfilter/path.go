package swiftfilter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrBadRequest marks requests the filter refuses with 400 before they reach
// Swift: a path or header Swift would read differently from the filter, or not
// at all.
var ErrBadRequest = errors.New("swiftfilter: bad request")

// Target is what Swift's proxy makes of a request path: the API version and
// the account, container and object it addresses, decoded. Empty fields are
// absent ones; a Target with an empty Version is not an API request (/info,
// /healthcheck, an unsplittable path that Swift answers with 404).
type Target struct {
	Version   string
	Account   string
	Container string
	Object    string
}

// IsObject reports whether Swift routes the request to its object controller.
func (t Target) IsObject() bool {
	return t.Version != "" && t.Account != "" && t.Container != "" && t.Object != ""
}

// validAPIVersion mirrors Swift's default valid_api_versions.
func validAPIVersion(v string) bool { return v == "v1" || v == "v1.0" }

// ParsePath splits a decoded request path (net/http's URL.Path: every
// percent-escape resolved, %2F included) the way Swift 2.30's proxy does:
//
//   - eventlet's WSGI server percent-decodes the whole path, encoded slashes
//     included, into PATH_INFO; nothing is normalized (no "." or ".."
//     resolution, no merging of "//");
//   - the proxy refuses a path that is not UTF-8 or holds a NUL (412; here 400);
//   - get_controller calls split_path(path, 1, 4, rest_with_last=True):
//     path.split('/', 4), the first element must be empty (a leading '/') and
//     the second (the version) non-empty, else the path is invalid (Swift: 404);
//   - the last element keeps its slashes: the object name;
//   - an object needs account, container and object all non-empty
//     ("/v1/a/c/" is a container request, "/v1/a//o" is not an object request),
//     and a version Swift accepts (v1, v1.0; anything else with an account is
//     400 in Swift).
//
// So "/v1/AUTH_p/c/a%2Fb" and "/v1/AUTH_p/c/a/b" are the same object, and
// "/v1/AUTH_p%2Fc/o" is account AUTH_p, container c, object o.
func ParsePath(path string) (Target, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return Target{}, fmt.Errorf("%w: path contains a NUL byte", ErrBadRequest)
	}
	return splitPath(path)
}

// ParseReservedPath is ParsePath for a request Swift's own middleware may
// have built inside the proxy: one into Swift's reserved namespace, a
// container whose name starts with a NUL (object versioning keeps versions
// in "\x00versions\x00<container>", named "\x00<object>\x00<time>").
// Swift's proxy accepts such a path only with X-Backend-Allow-Reserved-Names,
// which its gatekeeper strips from clients' requests. A NUL anywhere else
// (the account, a container not reserved) stays a path Swift refuses.
func ParseReservedPath(path string) (Target, error) {
	if strings.IndexByte(path, 0) < 0 {
		return splitPath(path)
	}
	t, err := splitPath(path)
	if err != nil {
		return Target{}, err
	}
	if strings.IndexByte(t.Account, 0) >= 0 || !strings.HasPrefix(t.Container, "\x00") {
		return Target{}, fmt.Errorf("%w: path contains a NUL byte outside Swift's reserved namespace", ErrBadRequest)
	}
	return t, nil
}

// splitPath is ParsePath's split, NUL bytes allowed.
func splitPath(path string) (Target, error) {
	if !utf8.ValidString(path) {
		return Target{}, fmt.Errorf("%w: path is not valid UTF-8", ErrBadRequest)
	}
	segs := strings.SplitN(path, "/", 5)
	if len(segs) < 2 || segs[0] != "" || segs[1] == "" {
		return Target{}, nil
	}
	if len(segs) < 3 || !validAPIVersion(segs[1]) {
		return Target{}, nil
	}
	t := Target{Version: segs[1], Account: segs[2]}
	if len(segs) > 3 {
		t.Container = segs[3]
	}
	if len(segs) > 4 {
		t.Object = segs[4]
	}
	return t, nil
}

// DecodeAccountHeader decodes a Destination-Account value as Swift's copy
// middleware does (URL-unquoted, then it must be non-empty and hold no '/'),
// with the path's UTF-8 and NUL rules.
func DecodeAccountHeader(v string) (string, error) {
	a, err := url.PathUnescape(v)
	if err != nil {
		return "", fmt.Errorf("%w: Destination-Account is not validly percent-encoded", ErrBadRequest)
	}
	switch {
	case a == "":
		return "", fmt.Errorf("%w: Destination-Account is empty", ErrBadRequest)
	case strings.ContainsAny(a, "/\x00"):
		return "", fmt.Errorf("%w: Destination-Account holds '/' or NUL", ErrBadRequest)
	case !utf8.ValidString(a):
		return "", fmt.Errorf("%w: Destination-Account is not valid UTF-8", ErrBadRequest)
	}
	return a, nil
}

// Prefixes are reseller prefixes, in the order Swift's keystoneauth tries them.
type Prefixes []string

// ParsePrefixes reads a reseller_prefix list as keystoneauth does: blanks
// dropped, a pair of single quotes is the empty prefix, '_' appended to each non-empty prefix
// lacking one, duplicates dropped. An empty list gives the default AUTH_.
func ParsePrefixes(list []string) Prefixes {
	var out Prefixes
	for _, p := range list {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case p == "''" || p == `""`:
			p = ""
		case !strings.HasSuffix(p, "_"):
			p += "_"
		}
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 && len(list) == 0 {
		out = Prefixes{"AUTH_"}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ProjectOf returns the project that owns account: the account minus the
// first non-empty prefix it starts with (in configured order), else minus the
// empty prefix when that is configured. ok is false when no prefix matches:
// such an account belongs to no Keystone project and gets no key id.
func (ps Prefixes) ProjectOf(account string) (project string, ok bool) {
	empty := false
	for _, p := range ps {
		if p == "" {
			empty = true
			continue
		}
		if strings.HasPrefix(account, p) {
			return account[len(p):], true
		}
	}
	if empty {
		return account, true
	}
	return "", false
}

// validProjectID accepts what Keystone project ids look like (and what the
// key service accepts): 1 to 64 letters, digits, '-' or '_'.
func validProjectID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
