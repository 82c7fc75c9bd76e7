package swiftfilter

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the key service's store, read by allKeys

	"opendev.org/x/arca/internal/testenv"
)

// allKeys is how many project keys the key service's store holds, for
// any project (its SQLite file, read-only).
func (e *shapeEnv) allKeys(t *testing.T) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.stack.API.Dir, "arca.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM project_keys").Scan(&n); err != nil {
		t.Fatalf("counting project keys: %v", err)
	}
	return n
}

func inventedProject(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRealStackNoKeysForStrangers checks, through both shapes of the
// filter (shapeCases) on one object tier with a real arca-api, that
// strangers get no key id and make no key: anonymous writes, writes with
// another project's token, a domain-scoped and a system-scoped token, to
// invented accounts and to real ones (and alt's COPY into demo's
// account). Swift refuses them, nothing reaches the object servers and
// the key service holds no key it did not hold before. Then a project's
// first write, per shape: the Go side makes no key (the key service
// answers its role 404), the write reaches the object servers without a
// key id and the object server makes the project's key; its next write
// carries that key id. Last, the domain-scoped and system-scoped tokens
// write through a container ACL open to every project ("*:*"): whatever
// Swift answers, no key id reaches the object servers and no key is made
// for the domain's id.
func TestRealStackNoKeysForStrangers(t *testing.T) {
	e := startShapes(t)
	s, ks := e.stack, e.ks
	demoAcct, altAcct := "/v1/AUTH_"+s.Project, "/v1/AUTH_"+e.alt
	du := ks.NewDomainUser(t, "admin")
	domTok, sysTok := du.Token(t, ks), ks.SystemToken(t, testenv.UserAdmin)
	cont := fmt.Sprintf("sf-keys-%d", time.Now().UnixNano())
	// refused sends a write through shape that Swift must answer with
	// want, and checks that nothing was written at dest.
	refused := func(t *testing.T, shape string, want int, method, path, dest, token string, hdr map[string][]string) {
		t.Helper()
		n := e.wire.count()
		if code, b := e.do(t, method, e.shapes[shape]+path, token, []byte("data"), hdr); code != want {
			t.Fatalf("%s: %s %s: %d, want Swift's %d: %s", shape, method, path, code, want, b)
		}
		e.nothingReached(t, shape, n, dest)
	}

	e.must(t, 201, "PUT", e.shapes["pipeline"]+demoAcct+"/"+cont, s.Token, nil, nil) // a container is no key
	// alt's own object, written straight to the plain proxy (its object
	// server makes alt's key, as any write of alt's would), for alt to
	// copy into demo's account below.
	for _, path := range []string{altAcct + "/" + cont, altAcct + "/" + cont + "/o"} {
		e.must(t, 201, "PUT", e.upstreamURL+path, e.altTok, []byte("alt's"), nil)
	}
	baseline := e.allKeys(t)
	if n := e.keyCount(t, e.alt); n != 1 || baseline != 1 {
		t.Fatalf("%d keys in the store, %d of alt, want alt's only", baseline, n)
	}
	for _, sc := range shapeCases {
		t.Run(sc.name+" strangers", func(t *testing.T) {
			for range 200 {
				p := "/v1/AUTH_" + inventedProject(t) + "/c/o"
				refused(t, sc.name, http.StatusUnauthorized, "PUT", p, p, "", forgedSpellings)
			}
			for range 20 {
				p := "/v1/AUTH_" + inventedProject(t) + "/c/o"
				refused(t, sc.name, http.StatusForbidden, "PUT", p, p, e.altTok, forgedSpellings)
			}
			p := demoAcct + "/" + cont + "/o"
			refused(t, sc.name, http.StatusUnauthorized, "PUT", p, p, "", forgedSpellings)
			refused(t, sc.name, http.StatusForbidden, "PUT", p, p, e.altTok, forgedSpellings)
			refused(t, sc.name, http.StatusForbidden, "COPY", altAcct+"/"+cont+"/o", p, e.altTok,
				map[string][]string{"Destination": {cont + "/o"}, "Destination-Account": {"AUTH_" + s.Project}})
			// A domain-scoped and a system-scoped token: to the
			// domain's id as an account, to an invented account, to a
			// real one.
			dp := "/v1/AUTH_" + du.DomainID + "/c/o"
			refused(t, sc.name, http.StatusForbidden, "PUT", dp, dp, domTok, forgedSpellings)
			refused(t, sc.name, http.StatusForbidden, "PUT", p, p, domTok, forgedSpellings)
			ip := "/v1/AUTH_" + inventedProject(t) + "/c/o"
			refused(t, sc.name, http.StatusForbidden, "PUT", ip, ip, sysTok, forgedSpellings)
			refused(t, sc.name, http.StatusForbidden, "PUT", p, p, sysTok, forgedSpellings)
		})
	}
	if n := e.allKeys(t); n != baseline {
		t.Fatalf("%d project keys in the store after writes Swift refused, want %d (alt's)", n, baseline)
	}

	for _, sc := range shapeCases {
		t.Run(sc.name+" a project's first write", func(t *testing.T) {
			tok, project := ks.NewProjectUser(t, "member")
			acct := "/v1/AUTH_" + project
			base := e.shapes[sc.name]
			e.must(t, 201, "PUT", base+acct+"/c", tok, nil, nil)
			n := e.wire.count()
			e.must(t, 201, "PUT", base+acct+"/c/first", tok, []byte("first"), forgedSpellings)
			e.wantKeyIDs(t, sc.name, n, acct+"/c/first", "", false)
			if k := e.keyCount(t, project); k != 1 {
				t.Fatalf("%d keys for the project after its first write, want the object server's 1", k)
			}
			active := e.activeKey(t, project)
			time.Sleep(1500 * time.Millisecond) // the Go side's cached "no key yet"
			n = e.wire.count()
			e.must(t, 201, "PUT", base+acct+"/c/mine", tok, []byte("mine"), forgedSpellings)
			e.wantKeyIDs(t, sc.name, n, acct+"/c/mine", active, false)
		})
	}

	// A container any project may write to: Swift's keystoneauth matches
	// "*:*" for tokens without a project too.
	open := cont + "-open"
	e.must(t, 201, "PUT", e.shapes["pipeline"]+demoAcct+"/"+open, s.Token, nil, map[string][]string{"X-Container-Write": {"*:*"}})
	keys := e.allKeys(t)
	for _, sc := range shapeCases {
		for _, tok := range []struct{ name, token string }{{"domain-scoped", domTok}, {"system-scoped", sysTok}} {
			p := demoAcct + "/" + open + "/" + sc.name + "-" + tok.name
			n := e.wire.count()
			code, b := e.do(t, "PUT", e.shapes[sc.name]+p, tok.token, []byte("x"), forgedSpellings)
			t.Logf("%s: a %s token's PUT through a *:* ACL: %d", sc.name, tok.name, code)
			switch code {
			case http.StatusCreated:
				e.wantKeyIDs(t, sc.name+" "+tok.name, n, p, "", false)
			case http.StatusUnauthorized, http.StatusForbidden:
				e.nothingReached(t, sc.name+" "+tok.name, n, p)
			default:
				t.Errorf("%s: a %s token's PUT through a *:* ACL: %d %s", sc.name, tok.name, code, b)
			}
		}
	}
	if n := e.keyCount(t, du.DomainID); n != 0 {
		t.Errorf("%d keys for the domain's id", n)
	}
	// demo's key, if its account had none: made by the object server.
	if n, d := e.allKeys(t), e.keyCount(t, s.Project); n-keys > 1 || (n != keys && d != 1) {
		t.Errorf("%d project keys in the store, %d before the *:* writes (%d of demo)", n, keys, d)
	}
}
