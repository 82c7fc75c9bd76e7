package swiftfilter

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/internal/testenv"
)

// realKeyService starts arca-api (auth_strategy = keystone, the stack's
// Keystone, a fresh MariaDB database) and returns it with a handle on its
// database, where the test counts project keys.
func realKeyService(t *testing.T, ks *testenv.KeystoneEnv) (*testenv.API, *sql.DB) {
	t.Helper()
	db, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbURL := "mysql+pymysql://" + cfg.User
	if cfg.Passwd != "" {
		dbURL += ":" + cfg.Passwd
	}
	dbURL += "@" + cfg.Addr + "/" + cfg.DBName + "?charset=utf8mb4"
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL, AuthStrategy: "keystone", Extra: "\n" + ks.AuthtokenSection()})
	return srv, db
}

// filterKeyClient is the key client arca-swift-filter builds: the
// arca-filter service user (roles service and key-manager:swift-filter).
func filterKeyClient(t *testing.T, ks *testenv.KeystoneEnv, endpoint string) *keyclient.Client {
	t.Helper()
	c := ks.UserConfig(testenv.UserArcaFilter)
	kc, err := keyclient.New(keyclient.Options{
		Credentials: keyclient.Credentials{AuthURL: c.AuthURL, Username: c.Username, Password: c.Password,
			UserDomainName: c.UserDomainName, ProjectName: c.ProjectName, ProjectDomainName: c.ProjectDomainName},
		Endpoint: endpoint, ErrorTTL: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func inventedProject(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRealStackNoKeysForStrangers checks that strangers create no keys, on the
// real stack: the filter (as arca-filter, with the real key client) in front of a
// real Swift proxy and Keystone, backed by a real arca-api on MariaDB.
// Anonymous writes, writes with another project's token, a domain-scoped
// and a system-scoped token, to invented accounts and to real ones, reach
// Swift without a key id, Swift refuses (or, through an ACL, accepts) them,
// and the key service's store holds not one project key afterwards. The
// owning project's own write still gets its key id, which the store then
// holds as that project's active key.
func TestRealStackNoKeysForStrangers(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	api, db := realKeyService(t, ks)
	e := startRealWith(t, ks, filterKeyClient(t, ks, api.URL))
	keysOf := func(project string) int {
		t.Helper()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM project_keys WHERE project_id = ?", project).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	allKeys := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM project_keys").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// noKeyID sends a write that Swift must answer with want, and checks
	// that it reached Swift without a key id.
	noKeyID := func(t *testing.T, want int, method, path, token string, hdr map[string]string) {
		t.Helper()
		n := e.wire.count()
		resp, b := e.do(t, method, path, token, []byte("data"), hdr)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want Swift's %d: %s", method, path, resp.StatusCode, want, b)
		}
		if ids := e.lastKeyIDs(t, n, method, path); len(ids) != 0 {
			t.Fatalf("%s %s reached Swift with key ids %q", method, path, ids)
		}
	}
	forged := map[string]string{"X-Arca-Key-Id": "forged"}
	cont := fmt.Sprintf("sf-keys-%d", time.Now().UnixNano())
	demoAcct, altAcct := "/v1/AUTH_"+e.demo, "/v1/AUTH_"+e.alt

	t.Run("200 anonymous PUTs to invented accounts", func(t *testing.T) {
		for range 200 {
			noKeyID(t, http.StatusUnauthorized, "PUT", "/v1/AUTH_"+inventedProject(t)+"/c/o", "", forged)
		}
	})
	t.Run("another project's token, invented accounts", func(t *testing.T) {
		for range 20 {
			noKeyID(t, http.StatusForbidden, "PUT", "/v1/AUTH_"+inventedProject(t)+"/c/o", e.altTok, forged)
		}
	})
	t.Run("anonymous and another project's token, a real account", func(t *testing.T) {
		e.must(t, 201, "PUT", demoAcct+"/"+cont, e.demoTok, nil, nil) // a container is no key
		noKeyID(t, http.StatusUnauthorized, "PUT", demoAcct+"/"+cont+"/anon", "", nil)
		noKeyID(t, http.StatusForbidden, "PUT", demoAcct+"/"+cont+"/alt", e.altTok, nil)
		// alt's own object, written straight to the proxy (an alt write
		// through the filter would rightly create alt's key), copied by alt
		// into demo's account: Swift refuses the destination.
		for _, path := range []string{altAcct + "/" + cont, altAcct + "/" + cont + "/o"} {
			req, _ := http.NewRequest("PUT", e.proxy.url()+path, strings.NewReader("alt's"))
			req.Header.Set("X-Auth-Token", e.altTok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT %s straight to the proxy: %d", path, resp.StatusCode)
			}
		}
		noKeyID(t, http.StatusForbidden, "COPY", altAcct+"/"+cont+"/o", e.altTok,
			map[string]string{"Destination": cont + "/o", "Destination-Account": "AUTH_" + e.demo})
	})
	t.Run("domain-scoped and system-scoped tokens", func(t *testing.T) {
		du := ks.NewDomainUser(t, "admin")
		noKeyID(t, http.StatusForbidden, "PUT", "/v1/AUTH_"+du.DomainID+"/c/o", du.Token(t, ks), nil)
		resp, b := e.do(t, "PUT", "/v1/AUTH_"+inventedProject(t)+"/c/o", ks.SystemToken(t, testenv.UserAdmin), []byte("x"), nil)
		if resp.StatusCode < 400 {
			t.Fatalf("system-scoped PUT to an invented account: %d %s", resp.StatusCode, b)
		}
		if keysOf(du.DomainID) != 0 {
			t.Error("a key was created for the domain's id")
		}
	})
	if n := allKeys(); n != 0 {
		t.Fatalf("%d project keys created by writes Swift refused", n)
	}

	t.Run("the owner's first write: the filter makes no key", func(t *testing.T) {
		// The key service answers the filter's role 404 for a project
		// without an active key (project_key:create is not its): the write
		// goes on without a key id, for the object server to key.
		noKeyID(t, http.StatusCreated, "PUT", demoAcct+"/"+cont+"/first", e.demoTok, forged)
		if n := keysOf(e.demo); n != 0 {
			t.Fatalf("%d keys made for demo through the filter's credential", n)
		}
		// demo's member makes the project's first key (as an object server
		// would on the first keyed write).
		req, _ := http.NewRequest("GET", api.URL+"/v1/project-keys/active", nil)
		req.Header.Set("X-Auth-Token", e.demoTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("demo's member asking for its active key: %d", resp.StatusCode)
		}
	})
	t.Run("the owner's write gets its key id", func(t *testing.T) {
		n := e.wire.count()
		e.must(t, 201, "PUT", demoAcct+"/"+cont+"/mine", e.demoTok, []byte("mine"), forged)
		ids := e.lastKeyIDs(t, n, "PUT", demoAcct+"/"+cont+"/mine")
		var active string
		if err := db.QueryRow("SELECT id FROM project_keys WHERE active_project_id = ?", e.demo).Scan(&active); err != nil {
			t.Fatalf("demo's active key in the store: %v", err)
		}
		if len(ids) != 1 || ids[0] != active {
			t.Errorf("owner's PUT reached Swift with key ids %q, want [%s]", ids, active)
		}
	})
	t.Run("an ACL write gets none and creates none", func(t *testing.T) {
		shared := cont + "-shared"
		e.must(t, 201, "PUT", altAcct+"/"+shared, e.altTok, nil, map[string]string{"X-Container-Write": e.demo + ":*"})
		noKeyID(t, http.StatusCreated, "PUT", altAcct+"/"+shared+"/by-demo", e.demoTok, forged)
		if n := keysOf(e.alt); n != 0 {
			t.Errorf("%d keys created for alt by demo's ACL write", n)
		}
	})
	if n, d := allKeys(), keysOf(e.demo); n != 1 || d != 1 {
		t.Errorf("%d project keys in the store (%d of demo), want only demo's", n, d)
	}
}
