package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/policy"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// pkEnv is arca-api's handler over a real database with the real default
// policy: identities come from the no-auth headers (X-Project-Id,
// X-User-Id, X-Roles), decisions from internal/policy as in keystone mode.
type pkEnv struct {
	t   *testing.T
	url string
	db  *sql.DB
	svc *keyservice.Service
}

func newPKEnv(t *testing.T, dialect dbconn.Dialect, protocol string) *pkEnv {
	t.Helper()
	// A key is destroyable a nanosecond after its rotation here; the
	// active_key_cache_ttl guard has its own test (projectkeys_destroy_test.go).
	return newPKEnvWith(t, dialect, keyservice.Options{ProjectKeyProtocol: protocol, ActiveKeyCacheTTL: time.Nanosecond})
}

// newPKEnvWith is newPKEnv with the service's options (a logger is added).
func newPKEnvWith(t *testing.T, dialect dbconn.Dialect, opts keyservice.Options) *pkEnv {
	t.Helper()
	db, store := openStore(t, dialect)
	opts.Logger = zerolog.Nop()
	svc, err := keyservice.New(store, testKeyring(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	enforcer, err := policy.New(policy.Options{EnforceNewDefaults: true})
	if err != nil {
		t.Fatal(err)
	}
	handler, err := api.New(svc, api.Options{Logger: zerolog.Nop(),
		Authenticator: api.NoAuth{}, Authorizer: &api.PolicyAuthorizer{Enforcer: enforcer}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = svc.Close(t.Context()) })
	return &pkEnv{t: t, url: srv.URL, db: db, svc: svc}
}

// as is who a request comes from: project, user, roles.
type as struct{ project, user, roles string }

var (
	demoMember = as{"demo", "alice", "member,reader"}
	demoAdmin  = as{"demo", "dora", "admin,member,reader"}
	altMember  = as{"alt", "bob", "member,reader"}
	altAdmin   = as{"alt", "boss", "admin,member,reader"}
	// The object servers' user: key material and active ids of any project.
	objectServer = as{"service", "arca", "key-manager:object-server"}
)

func (e *pkEnv) req(who as, method, path string) (int, http.Header, []byte) {
	e.t.Helper()
	r, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("X-Project-Id", who.project)
	r.Header.Set("X-User-Id", who.user)
	r.Header.Set("X-Roles", who.roles)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (e *pkEnv) key(who as, method, path string, want int) map[string]any {
	e.t.Helper()
	st, _, body := e.req(who, method, path)
	if st != want {
		e.t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, who.user, st, want, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("%s %s: not JSON: %s", method, path, body)
	}
	return m
}

func (e *pkEnv) status(who as, method, path string, want int) []byte {
	e.t.Helper()
	st, _, body := e.req(who, method, path)
	if st != want {
		e.t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, who.user, st, want, body)
	}
	return body
}

func forEachDB(t *testing.T, f func(t *testing.T, dialect dbconn.Dialect)) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			f(t, dialect)
		})
	}
}

func TestProjectKeyResource(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		e := newPKEnv(t, dialect, keyservice.ProtocolAES256CBC)
		first := e.key(demoMember, "GET", "/v1/project-keys/active", 200)
		id, _ := first["key_id"].(string)
		if first["project_id"] != "demo" || first["status"] != "ACTIVE" || first["algorithm"] != "aes_256_cbc" ||
			first["bit_length"] != 256.0 || first["creator_id"] != "alice" || first["key_ref"] != e.url+"/v1/project-keys/"+id ||
			first["deactivated"] != nil || first["destroyed"] != nil {
			t.Fatalf("active key %v", first)
		}
		if again := e.key(demoMember, "GET", "/v1/project-keys/active", 200); again["key_id"] != id {
			t.Fatalf("second GET active made another key: %v", again)
		}
		// The object server reads it for demo; the bytes are 32.
		st, h, material := e.req(objectServer, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo")
		if st != 200 || len(material) != 32 || h.Get("Cache-Control") != "no-store" || h.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("payload: %d %v %d bytes", st, h, len(material))
		}
		// Rotation: admins of the project; members may not.
		e.status(demoMember, "POST", "/v1/project-keys/rotate", 403)
		second := e.key(demoAdmin, "POST", "/v1/project-keys/rotate", 201)
		id2, _ := second["key_id"].(string)
		if id2 == id || second["status"] != "ACTIVE" {
			t.Fatalf("rotated key %v", second)
		}
		if got := e.key(objectServer, "GET", "/v1/project-keys/active?project_id=demo", 200); got["key_id"] != id2 {
			t.Fatalf("service sees active %v, want %s", got["key_id"], id2)
		}
		// The old key still resolves to the same bytes.
		_, _, old := e.req(objectServer, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo")
		if string(old) != string(material) {
			t.Fatal("deactivated key resolves to other bytes")
		}
		list := e.key(demoMember, "GET", "/v1/project-keys", 200)
		items, _ := list["project_keys"].([]any)
		if list["total"] != 2.0 || len(items) != 2 || items[0].(map[string]any)["key_id"] != id2 ||
			items[1].(map[string]any)["status"] != "DEACTIVATED" || items[1].(map[string]any)["deactivated"] == nil {
			t.Fatalf("history %v", list)
		}

		// Binding: demo's key addressed as alt's is 404 whoever asks.
		for _, who := range []as{objectServer, altMember, altAdmin, demoMember, demoAdmin} {
			e.status(who, "GET", "/v1/project-keys/"+id+"/payload?project_id=alt", 404)
		}
		// Non-service users: 403 on the payload of their own project's key.
		e.status(demoMember, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo", 403)
		e.status(demoAdmin, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo", 403)
		// Another project's keys: not addressable, not even confirmed.
		e.status(altAdmin, "GET", "/v1/project-keys/active?project_id=demo", 403)
		e.status(altAdmin, "GET", "/v1/project-keys?project_id=demo", 403)
		e.status(altAdmin, "DELETE", "/v1/project-keys/"+id, 404)
		e.status(altAdmin, "GET", "/v1/project-keys/"+id, 404)
		e.status(objectServer, "GET", "/v1/project-keys/"+strings.Repeat("0", 36)+"/payload?project_id=demo", 404)
		e.status(objectServer, "GET", "/v1/project-keys/not-a-uuid/payload?project_id=demo", 404)
		e.status(objectServer, "GET", "/v1/project-keys/active?project_id=bad/id", 400)

		// Destroy: 409 for the active key, then the old one; 410 afterwards.
		e.status(demoAdmin, "DELETE", "/v1/project-keys/"+id2, 409)
		e.status(demoMember, "DELETE", "/v1/project-keys/"+id, 403)
		e.status(demoAdmin, "DELETE", "/v1/project-keys/"+id, 204)
		e.status(objectServer, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo", 410)
		e.status(demoAdmin, "DELETE", "/v1/project-keys/"+id, 410)
		if got := e.key(demoMember, "GET", "/v1/project-keys/"+id, 200); got["status"] != "DESTROYED" || got["destroyed"] == nil {
			t.Fatalf("destroyed key %v", got)
		}
		var material0 sql.NullString
		if err := e.db.QueryRow("SELECT material FROM project_keys WHERE id = ?", id).Scan(&material0); err != nil || material0.Valid {
			t.Fatalf("destroyed key's material still stored (%v, %v)", material0.Valid, err)
		}
		// force must be a boolean: anything else is refused, the key kept.
		e.status(objectServer, "DELETE", "/v1/project-keys/"+id2+"?force=maybe", 400)
		// The active key is not destroyed, even with force: rotate first.
		e.status(demoAdmin, "DELETE", "/v1/project-keys/"+id2+"?force=true", 409)
		if still := e.key(demoMember, "GET", "/v1/project-keys/active", 200); still["key_id"] != id2 {
			t.Fatalf("after a refused forced destruction of the active key: %v", still)
		}

		// The audit trail shows every access to the destroyed key.
		if err := e.svc.FlushAudit(t.Context()); err != nil {
			t.Fatal(err)
		}
		recs, err := e.svc.ProjectKeyAudit(t.Context(), keyservice.KeyAuditFilter{ProjectID: "demo", KeyID: id})
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, r := range recs {
			trail = append(trail, r.Action+":"+r.Outcome+":"+r.UserID)
		}
		want := []string{
			"create:success:alice", "payload:success:arca", "payload:success:arca",
			"payload:not_found:arca", "payload:not_found:bob", "payload:not_found:boss", "payload:not_found:alice", "payload:not_found:dora",
			"payload:denied:alice", "payload:denied:dora",
			"destroy:not_found:boss", "get:not_found:boss",
			"destroy:denied:alice", "destroy:success:dora", "payload:gone:arca", "destroy:gone:dora",
		}
		if strings.Join(trail, " ") != strings.Join(want, " ") {
			t.Fatalf("audit trail\n got %v\nwant %v", trail, want)
		}
		for _, r := range recs {
			if r.RequestID == "" || r.Time.IsZero() || r.ProjectID != "demo" {
				t.Fatalf("audit record %+v", r)
			}
		}
		// Never material in the audit table.
		var n int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM key_audit").Scan(&n); err != nil || n < len(want) {
			t.Fatalf("key_audit rows %d, %v", n, err)
		}
	})
}

func TestProjectKeyConcurrentFirstCalls(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		e := newPKEnv(t, dialect, "")
		var wg sync.WaitGroup
		ids := make(chan string, 64)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequest("GET", e.url+"/v1/project-keys/active?project_id=fresh", nil)
				r.Header.Set("X-Project-Id", "service")
				r.Header.Set("X-Roles", "key-manager:object-server")
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var m map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
					t.Errorf("status %d: %v %v", resp.StatusCode, m, err)
					return
				}
				ids <- m["key_id"].(string)
			}()
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		var rows int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM project_keys WHERE project_id = 'fresh'").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 || rows != 1 {
			t.Fatalf("%d distinct keys, %d rows", len(seen), rows)
		}
	})
}

// TestProjectKeyReadsAudited: every read of another project's active id
// (?project_id=, the object servers' and the filter's reads) and every
// refused read of project keys is in the audit trail, under the addressed
// or the key's own project: who, which project, the outcome.
func TestProjectKeyReadsAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		e := newPKEnv(t, dialect, keyservice.ProtocolAES256CBC)
		filter := as{"service", "arca-filter", "key-manager:swift-filter"}
		service := as{"service", "nova", "service,admin,member,reader"}
		demoReader := as{"demo", "rita", "reader"}
		id, _ := e.key(demoMember, "GET", "/v1/project-keys/active", 200)["key_id"].(string)
		e.key(demoMember, "GET", "/v1/project-keys/active", 200) // its own project: not a read to record
		e.key(objectServer, "GET", "/v1/project-keys/active?project_id=demo", 200)
		e.key(filter, "GET", "/v1/project-keys/active?project_id=demo", 200)
		e.status(altMember, "GET", "/v1/project-keys/active?project_id=demo", 403)
		e.status(service, "GET", "/v1/project-keys/active?project_id=demo", 403)
		e.status(demoReader, "GET", "/v1/project-keys/active", 403)
		e.status(altAdmin, "GET", "/v1/project-keys?project_id=demo", 403)
		e.status(filter, "GET", "/v1/project-keys?project_id=demo", 403)
		e.status(altMember, "GET", "/v1/project-keys/"+id, 404)
		e.status(filter, "GET", "/v1/project-keys/"+id+"?project_id=demo", 404)

		recs, err := e.svc.ProjectKeyAudit(t.Context(), keyservice.KeyAuditFilter{ProjectID: "demo", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, r := range recs {
			if r.RequestID == "" || r.ProjectID != "demo" {
				t.Fatalf("audit record %+v", r)
			}
			trail = append(trail, r.Action+":"+r.Outcome+":"+r.UserID+":"+r.KeyID)
		}
		want := []string{
			"create:success:alice:" + id,
			"get_active:success:arca:" + id, "get_active:success:arca-filter:" + id,
			"get_active:denied:bob:", "get_active:denied:nova:", "get_active:denied:rita:",
			"list:denied:boss:", "list:denied:arca-filter:",
			"get:not_found:bob:" + id, "get:not_found:arca-filter:" + id,
		}
		if strings.Join(trail, " ") != strings.Join(want, " ") {
			t.Fatalf("audit trail\n got %v\nwant %v", trail, want)
		}
	})
}

// TestMalformedProjectKeyRequestsAudited: a malformed ?force= or
// ?project_id= (or page) on the project-key routes is refused with 400 and
// audited as a refusal too: a stranger probing another project's keys with
// bad parameters is in the trail, under the key's project when the key was
// read for the request, else under the caller's. A project_id that is no
// project id never goes into a record (the columns bound a record, and a
// record the database refuses would hold up the batch behind it).
func TestMalformedProjectKeyRequestsAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		e := newPKEnv(t, dialect, keyservice.ProtocolAES256CBC)
		id, _ := e.key(demoMember, "GET", "/v1/project-keys/active", 200)["key_id"].(string)
		long := strings.Repeat("p", 300)
		e.status(altAdmin, "DELETE", "/v1/project-keys/"+id+"?force=maybe", 400)
		e.status(altAdmin, "DELETE", "/v1/project-keys/"+id+"?project_id=demo!", 400)
		e.status(altAdmin, "POST", "/v1/project-keys/rotate?project_id=demo!", 400)
		e.status(altAdmin, "POST", "/v1/project-keys/rotate?project_id="+long, 400)
		e.status(altAdmin, "GET", "/v1/project-keys?limit=abc", 400)
		e.status(altMember, "GET", "/v1/project-keys/"+id+"/payload?project_id=demo&project_id=alt", 400)

		trail := func(project string) string {
			recs, err := e.svc.ProjectKeyAudit(t.Context(), keyservice.KeyAuditFilter{ProjectID: project, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range recs {
				out = append(out, r.Action+":"+r.Outcome+":"+r.UserID+":"+r.KeyID+":"+r.Detail)
			}
			return strings.Join(out, " ")
		}
		if got, want := trail("demo"), "create:success:alice:"+id+":first key destroy:invalid:boss:"+id+":malformed project_id payload:invalid:bob:"+id+":malformed project_id"; got != want {
			t.Errorf("demo's audit trail\n got %s\nwant %s", got, want)
		}
		if got, want := trail("alt"), "destroy:invalid:boss:"+id+": rotate:invalid:boss::malformed project_id rotate:invalid:boss::malformed project_id list:invalid:boss::"; got != want {
			t.Errorf("alt's audit trail\n got %s\nwant %s", got, want)
		}
	})
}

// TestHostileKeyIDDoesNotStallAudit: any project member could send a key
// id that is not UTF-8 in the path; its refusal's audit record was refused
// by MariaDB with every record batched beside it, retried for ever, and
// once the queue filled every audited read (the object servers' key
// reads) would have answered 503. The records are written, the key id
// made UTF-8, and the reads after it go on.
func TestHostileKeyIDDoesNotStallAudit(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		e := newPKEnv(t, dialect, keyservice.ProtocolAES256CBC)
		e.status(altMember, "GET", "/v1/project-keys/%C3%28abc%FF", 404)
		id, _ := e.key(altMember, "GET", "/v1/project-keys/active", 200)["key_id"].(string)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		recs, err := e.svc.ProjectKeyAudit(ctx, keyservice.KeyAuditFilter{ProjectID: "alt", Limit: 10})
		if err != nil {
			t.Fatalf("audit records not written: %v", err)
		}
		var trail []string
		for _, r := range recs {
			trail = append(trail, r.Action+":"+r.Outcome+":"+r.KeyID)
		}
		if got, want := strings.Join(trail, " "), "get:not_found:\ufffd(abc\ufffd create:success:"+id; got != want {
			t.Fatalf("alt's audit trail\n got %q\nwant %q", got, want)
		}
	})
}
