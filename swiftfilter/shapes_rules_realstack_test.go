package swiftfilter

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// shapeCase is how one shape of the filter is expected to behave where
// the two shapes differ by construction.
type shapeCase struct {
	name string
	// subrequestsKeyed: the PUTs Swift's own middleware build (object
	// versioning's, versioned_writes' archived copies) carry a key id of
	// their own. Only the pipeline shape sees them; behind the reverse
	// proxy they carry none, and the object server keys them itself.
	subrequestsKeyed bool
}

var shapeCases = []shapeCase{
	{name: "reverse-proxy"},
	{name: "pipeline", subrequestsKeyed: true},
}

// TestRealStackShapeRules runs the filter's rules through the real Swift
// proxy in both shapes (shapeCases), on one object tier whose object
// servers' wire is recorded, for a project of its own (so that its keys
// can be counted):
//
//   - the attackers: anonymous, another project's token, a domain-scoped
//     token (to the project's account and to the domain's id as an
//     account), each with X-Arca-Key-Id forged in every spelling Swift
//     reads as it; Swift refuses them, nothing reaches the object servers
//     and no key is made;
//   - the owner's writes with the same forged headers: plain objects, a
//     symlink, object versioning (X-Versions-Enabled: the versions are
//     written by a subrequest into the reserved namespace): only the
//     canonical header reaches the object servers, with the project's
//     active key id;
//   - the Go side's key service cut (the object servers still reach it):
//     object writes 503, reads, metadata, container writes and empty
//     listings go on, listings holding sealed values 503, and the
//     attackers still get Swift's 401/403, not 503; a refused write
//     leaves no object behind, not even object versioning's version;
//   - pipeline only: another user connecting to the decision socket.
func TestRealStackShapeRules(t *testing.T) {
	e := startShapes(t)
	ownerTok, owner := e.ks.NewProjectUser(t, "member")
	du := e.ks.NewDomainUser(t, "admin")
	domTok := du.Token(t, e.ks)
	acct := "/v1/AUTH_" + owner
	cont := fmt.Sprintf("rules-%d", time.Now().UnixNano())
	attackers := []struct {
		name, token, path string
		want              int
	}{
		{"anonymous", "", acct + "/" + cont + "/o", http.StatusUnauthorized},
		{"another project", e.altTok, acct + "/" + cont + "/o", http.StatusForbidden},
		{"domain-scoped token", domTok, acct + "/" + cont + "/o", http.StatusForbidden},
		{"domain-scoped token, its domain as an account", domTok, "/v1/AUTH_" + du.DomainID + "/c/o", http.StatusForbidden},
	}
	// tryAttackers sends every attacker's PUT through the shape at base and
	// checks Swift's refusal and that nothing reached the object servers.
	tryAttackers := func(t *testing.T, shape, base string) {
		t.Helper()
		for _, a := range attackers {
			n := e.wire.count()
			if code, b := e.do(t, "PUT", base+a.path, a.token, []byte("x"), forgedSpellings); code != a.want {
				t.Errorf("%s: %s: PUT %s: %d, want %d: %s", shape, a.name, a.path, code, a.want, b)
			}
			if puts := e.wire.puts(n, "/AUTH_"); len(puts) != 0 {
				t.Errorf("%s: %s: %d object PUTs reached the object servers: %+v", shape, a.name, len(puts), puts)
			}
		}
	}
	e.must(t, 201, "PUT", e.shapes["pipeline"]+acct+"/"+cont, ownerTok, nil, nil) // a container is no key
	for _, sc := range shapeCases {
		tryAttackers(t, sc.name, e.shapes[sc.name])
	}
	if n, d := e.keyCount(t, owner), e.keyCount(t, du.DomainID); n != 0 || d != 0 {
		t.Fatalf("keys made by refused writes: %d for the project, %d for the domain's id", n, d)
	}

	// The project's first write keys it (the object server makes its
	// key); the filter's cached "no key yet" (error_cache_ttl) runs out.
	e.must(t, 201, "PUT", e.shapes["pipeline"]+acct+"/"+cont+"/first", ownerTok, []byte("first"), forgedSpellings)
	active := e.activeKey(t, owner)
	time.Sleep(1500 * time.Millisecond)

	for _, sc := range shapeCases {
		t.Run(sc.name+" owner", func(t *testing.T) {
			e.ownerWrites(t, sc, acct, cont+"-"+sc.name, ownerTok, active)
		})
	}
	t.Run("pipeline socket from another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			testenv.StackMissing(t, "switching to another user needs root")
		}
		if out := connectAs(t, e.socket, 65534, 65534); out != "connect: PermissionError" {
			t.Errorf("nobody on the decision socket: %q, want a refused connect", out)
		}
	})
	t.Run("Go side's key service cut", func(t *testing.T) {
		e.goKeys.Cut()
		// Longer than the key caches and their error cache (1 s each).
		time.Sleep(2500 * time.Millisecond)
		for _, sc := range shapeCases {
			e.keyOutage(t, sc.name, acct, cont+"-"+sc.name, ownerTok)
			tryAttackers(t, sc.name+" (key service cut)", e.shapes[sc.name])
		}
		e.goKeys.Restore(t)
		time.Sleep(1500 * time.Millisecond)
		for _, sc := range shapeCases {
			e.must(t, 201, "PUT", e.shapes[sc.name]+acct+"/"+cont+"-"+sc.name+"/after", ownerTok, []byte("after"), nil)
		}
	})
	if n := e.keyCount(t, du.DomainID); n != 0 {
		t.Errorf("%d keys for the domain's id", n)
	}
}

// ownerWrites writes, as the owner, through shape sc into container cont
// (made here, versioned) with every spelling of a forged key id, and
// checks what reached the object servers: the canonical header only, and
// the project's active key id on the client's writes (and, in the
// pipeline shape, on Swift's subrequests).
func (e *shapeEnv) ownerWrites(t *testing.T, sc shapeCase, acct, cont, tok, active string) {
	base := e.shapes[sc.name] + acct
	e.must(t, 201, "PUT", base+"/"+cont, tok, nil, map[string][]string{"X-Versions-Enabled": {"true"}})
	n := e.wire.count()
	e.must(t, 201, "PUT", base+"/"+cont+"/plain", tok, []byte("plain"), forgedSpellings)
	e.must(t, 201, "PUT", base+"/"+cont+"/plain", tok, []byte("plain v2"), forgedSpellings)
	link := cloneHeader(forgedSpellings)
	link["X-Symlink-Target"] = []string{cont + "/plain"}
	e.must(t, 201, "PUT", base+"/"+cont+"/link", tok, nil, link)
	if b := e.must(t, 200, "GET", base+"/"+cont+"/link", tok, nil, nil); string(b) != "plain v2" {
		t.Errorf("%s: GET through the symlink: %q", sc.name, b)
	}
	puts := e.wire.puts(n, "/AUTH_")
	// 3 writes, 2 replicas each: versioning writes each into the
	// reserved namespace, which the paths hold %-decoded.
	if len(puts) < 6 {
		t.Fatalf("%s: %d object PUTs recorded, want >= 6", sc.name, len(puts))
	}
	for _, p := range puts {
		for _, name := range p.names {
			if name != KeyIDHeader {
				t.Errorf("%s: PUT %q reached the object server with header %q", sc.name, p.path, name)
			}
		}
		switch {
		case len(p.keyIDs) == 1 && p.keyIDs[0] == active:
		case len(p.keyIDs) == 0 && !sc.subrequestsKeyed && !strings.HasSuffix(p.path, "/"+cont+"/link"):
			// a subrequest behind the reverse proxy: the object
			// server keys it
		default:
			t.Errorf("%s: PUT %q reached the object server with key ids %q, want [%s]", sc.name, p.path, p.keyIDs, active)
		}
	}
	if !slices.ContainsFunc(puts, func(p backendReq) bool { return strings.Contains(p.path, "\x00") }) {
		t.Errorf("%s: no write into object versioning's reserved namespace recorded: %+v", sc.name, puts)
	}
}

// keyOutage checks shape's answers while its Go side cannot reach the key
// service: writes that need a key id 503, everything else goes on.
func (e *shapeEnv) keyOutage(t *testing.T, shape, acct, cont, tok string) {
	t.Helper()
	base := e.shapes[shape] + acct
	for _, c := range []struct {
		method, path string
		hdr          map[string][]string
		want         int
	}{
		{"PUT", "/" + cont + "/during", nil, http.StatusServiceUnavailable},
		{"GET", "/" + cont + "/plain", nil, http.StatusOK},
		{"HEAD", "/" + cont + "/plain", nil, http.StatusOK},
		{"POST", "/" + cont + "/plain", map[string][]string{"X-Object-Meta-A": {"b"}}, http.StatusAccepted},
		{"PUT", "/" + cont + "-empty", nil, http.StatusCreated},
		{"GET", "/" + cont + "-empty?format=json", nil, http.StatusOK},
		// fail closed: the listing's ETags cannot be opened
		{"GET", "/" + cont + "?format=json", nil, http.StatusServiceUnavailable},
		{"DELETE", "/" + cont + "-empty", nil, http.StatusNoContent},
	} {
		var body []byte
		if c.method == "PUT" {
			body = []byte("x")
		}
		n := e.wire.count()
		if code, b := e.do(t, c.method, base+c.path, tok, body, c.hdr); code != c.want {
			t.Errorf("%s, key service cut: %s %s: %d, want %d: %.200s", shape, c.method, c.path, code, c.want, b)
		}
		// A refused write leaves nothing behind: not even the version
		// object versioning writes first, into its reserved namespace.
		if puts := e.wire.puts(n, "during"); c.want == http.StatusServiceUnavailable && len(puts) != 0 {
			t.Errorf("%s, key service cut: refused %s %s still wrote %d object(s): %+v", shape, c.method, c.path, len(puts), puts)
		}
	}
}

func cloneHeader(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = slices.Clone(v)
	}
	return out
}
