package swiftfilter

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
)

// TestKeyIDOnlyForOwner: the filter resolves (and so creates) a project's
// active key only for a write whose user token Keystone validated and whose
// project owns the account written to. Each case is an attacker who must NOT
// make the key service create or hand out a key: the request goes on to
// Swift without a key id (Swift decides) or is refused by the filter, and the
// key service is never asked. Before this rule, 200 anonymous PUTs to
// invented accounts made 200 project keys.
func TestKeyIDOnlyForOwner(t *testing.T) {
	type hdr = map[string][]string
	cases := []struct {
		name    string
		method  string
		path    string
		header  hdr
		status  int    // the client's status (201: forwarded, the upstream's)
		keyID   string // the key id Swift sees; "" none
		created []string
	}{
		{"anonymous PUT to an invented account", "PUT", "/v1/AUTH_invented1/c/o", nil, 201, "", nil},
		{"anonymous PUT to a real account", "PUT", "/v1/AUTH_demo/c/o", nil, 201, "", nil},
		{"anonymous COPY into an invented account", "COPY", "/v1/AUTH_demo/c/o",
			hdr{"Destination": {"c/o"}, "Destination-Account": {"AUTH_invented2"}}, 201, "", nil},
		{"anonymous PUT with forged identity headers", "PUT", "/v1/AUTH_demo/c/o",
			hdr{"X-Identity-Status": {"Confirmed"}, "X-Project-Id": {"demo"}, "X-Tenant-Id": {"demo"}, "X-Roles": {"admin"}}, 201, "", nil},
		{"another project's token, invented account", "PUT", "/v1/AUTH_invented3/c/o", hdr{"X-Auth-Token": {"tok-alt"}}, 201, "", nil},
		{"another project's token, real account (ACL write)", "PUT", "/v1/AUTH_demo/c/o", hdr{"X-Auth-Token": {"tok-alt"}}, 201, "", nil},
		{"another project's token, COPY into the owner's account", "COPY", "/v1/AUTH_alt/c/o",
			hdr{"X-Auth-Token": {"tok-alt"}, "Destination": {"c/o"}, "Destination-Account": {"AUTH_demo"}}, 201, "", nil},
		{"domain-scoped token", "PUT", "/v1/AUTH_default/c/o", hdr{"X-Auth-Token": {"tok-domain"}}, 201, "", nil},
		{"system-scoped token", "PUT", "/v1/AUTH_demo/c/o", hdr{"X-Auth-Token": {"tok-system"}}, 201, "", nil},
		{"owner's token only as X-Service-Token", "PUT", "/v1/AUTH_demo/c/o", hdr{"X-Service-Token": {"tok-demo"}}, 201, "", nil},
		{"another's user token with the owner's service token", "PUT", "/v1/AUTH_demo/c/o",
			hdr{"X-Auth-Token": {"tok-alt"}, "X-Service-Token": {"tok-demo"}}, 201, "", nil},
		// keystonemiddleware reads X-Auth-Token whenever it is present: Swift
		// sees alt (or nobody), whatever X-Storage-Token says.
		{"another's X-Auth-Token, owner's X-Storage-Token", "PUT", "/v1/AUTH_demo/c/o",
			hdr{"X-Auth-Token": {"tok-alt"}, "X-Storage-Token": {"tok-demo"}}, 201, "", nil},
		{"empty X-Auth-Token, owner's X-Storage-Token", "PUT", "/v1/AUTH_demo/c/o",
			hdr{"X-Auth-Token": {""}, "X-Storage-Token": {"tok-demo"}}, 201, "", nil},
		{"invalid token", "PUT", "/v1/AUTH_invented4/c/o", hdr{"X-Auth-Token": {"tok-bad"}}, 401, "", nil},
		{"owner's token with an invalid service token", "PUT", "/v1/AUTH_demo/c/o",
			hdr{"X-Auth-Token": {"tok-demo"}, "X-Service-Token": {"tok-bad"}}, 401, "", nil},
		{"two user tokens", "PUT", "/v1/AUTH_demo/c/o", hdr{"X-Auth-Token": {"tok-demo", "tok-alt"}}, 401, "", nil},

		// What the owner still gets.
		{"owner's X-Auth-Token", "PUT", "/v1/AUTH_demo/c/o", hdr{"X-Auth-Token": {"tok-demo"}}, 201, "key-demo", []string{"demo"}},
		{"owner's X-Storage-Token", "PUT", "/v1/AUTH_alt/c/o", hdr{"X-Storage-Token": {"tok-alt"}}, 201, "key-alt", []string{"alt"}},
		{"owner's token with another's service token", "PUT", "/v1/SERVICE_demo/c/o",
			hdr{"X-Auth-Token": {"tok-demo"}, "X-Service-Token": {"tok-alt"}}, 201, "key-demo", []string{"demo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, nil, nil)
			h := http.Header{"X-Arca-Key-Id": {"key-forged"}}
			for k, v := range tc.header {
				h[k] = v
			}
			resp := rawDo(t, hs.filter.URL, tc.method, tc.path, h)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			reqs := hs.up.requests()
			switch {
			case tc.status != 201 && len(reqs) != 0:
				t.Fatalf("refused request reached Swift: %+v", reqs)
			case tc.status == 201 && len(reqs) != 1:
				t.Fatalf("%d requests reached Swift, want 1", len(reqs))
			case tc.status == 201:
				ids := keyIDs(reqs[0].Header)
				if tc.keyID == "" && len(ids) != 0 || tc.keyID != "" && !slices.Equal(ids, []string{tc.keyID}) {
					t.Errorf("Swift saw key ids %q, want %q", ids, tc.keyID)
				}
			}
			if got := hs.keys.createdKeys(); !slices.Equal(got, tc.created) {
				t.Errorf("keys created for %q, want %q", got, tc.created)
			}
			if tc.created == nil && hs.keys.calls.Load() != 0 {
				t.Errorf("the key service was asked %d times", hs.keys.calls.Load())
			}
		})
	}
}

// TestAnonymousFloodCreatesNoKeys is the finding's reproduction: 200
// anonymous PUTs (and 200 with a valid token of another project) to invented
// accounts all reach Swift, which refuses them, and not one key is created.
func TestAnonymousFloodCreatesNoKeys(t *testing.T) {
	hs := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized) // Swift's keystoneauth: anonymous, no ACL
	}, nil)
	for i := range 400 {
		h := http.Header{}
		if i%2 == 1 {
			h.Set("X-Auth-Token", "tok-alt")
		}
		resp := rawDo(t, hs.filter.URL, "PUT", fmt.Sprintf("/v1/AUTH_%032x/c/o", i), h)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("PUT %d: %d, want Swift's 401", i, resp.StatusCode)
		}
	}
	if n := len(hs.up.requests()); n != 400 {
		t.Errorf("%d requests reached Swift, want 400", n)
	}
	if got, calls := hs.keys.createdKeys(), hs.keys.calls.Load(); len(got) != 0 || calls != 0 {
		t.Errorf("%d keys created, %d key-service calls; want none", len(got), calls)
	}
}

// TestKeystoneDownFailsClosed: with Keystone unavailable, a write carrying a
// token is answered 503 (retryable; the token is neither accepted nor
// refused) and reaches neither Swift nor the key service; a write without a
// token goes on to Swift without a key id, as when Keystone is up.
func TestKeystoneDownFailsClosed(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.tokens.down.Store(true)
	resp := rawDo(t, hs.filter.URL, "PUT", "/v1/AUTH_demo/c/o", http.Header{"X-Auth-Token": {"tok-demo"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("owner's PUT with Keystone down: %d, want 503", resp.StatusCode)
	}
	if n := len(hs.up.requests()); n != 0 {
		t.Errorf("%d requests reached Swift with Keystone down", n)
	}
	resp = rawDo(t, hs.filter.URL, "PUT", "/v1/AUTH_demo/c/o", http.Header{"X-Arca-Key-Id": {"key-forged"}})
	resp.Body.Close()
	reqs := hs.up.requests()
	if resp.StatusCode != 201 || len(reqs) != 1 || len(keyIDs(reqs[0].Header)) != 0 {
		t.Errorf("anonymous PUT with Keystone down: %d, %d forwarded", resp.StatusCode, len(reqs))
	}
	if calls := hs.keys.calls.Load(); calls != 0 {
		t.Errorf("the key service was asked %d times", calls)
	}
}
