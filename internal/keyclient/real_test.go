package keyclient

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"opendev.org/x/arca/internal/testenv"
)

// Tests against real arca-api processes on the real MariaDB (and, for the
// keystone-mode ones, the real Keystone of tools/stack.sh).

// countingTransport counts the requests that reach the key service.
type countingTransport struct {
	base http.RoundTripper
	host string
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == c.host {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

func counting(t *testing.T, serverURL string) (*http.Client, *countingTransport) {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(serverURL, "http://"), "https://")
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone(), host: host}
	return &http.Client{Transport: ct}, ct
}

// mariaDB returns a fresh database on the real MariaDB as an oslo URL, and
// a handle to check rows with.
func mariaDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	db, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	url := "mysql+pymysql://" + cfg.User
	if cfg.Passwd != "" {
		url += ":" + cfg.Passwd
	}
	return url + "@" + cfg.Addr + "/" + cfg.DBName + "?charset=utf8mb4", db
}

func newProject() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// TestRealConcurrentFirstCallsTwoServers: 64 concurrent first calls for one
// new project, spread over two arca-api processes sharing one MariaDB
// database, yield exactly one key.
func TestRealConcurrentFirstCallsTwoServers(t *testing.T) {
	dbURL, db := mariaDB(t)
	a := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL})
	b := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL, MasterKeyFile: a.KeyFile})
	servers := []*testenv.API{a, b}
	project := newProject()
	start := make(chan struct{})
	ids := make(chan string, 64)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := New(Options{NoAuth: true, Endpoint: servers[i%2].URL})
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			k, err := c.ActiveKey(context.Background(), project)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- k.ID
		}()
	}
	close(start)
	wg.Wait()
	close(ids)
	distinct := map[string]int{}
	for id := range ids {
		distinct[id]++
	}
	var rows, active int
	if err := db.QueryRow("SELECT COUNT(*), COUNT(active_project_id) FROM project_keys WHERE project_id = ?", project).Scan(&rows, &active); err != nil {
		t.Fatal(err)
	}
	if len(distinct) != 1 || rows != 1 || active != 1 {
		t.Fatalf("%d distinct ids %v, %d rows, %d active", len(distinct), distinct, rows, active)
	}
	// Both servers resolve the key's material to the same bytes.
	var id string
	for id = range distinct {
	}
	ca, _ := New(Options{NoAuth: true, Endpoint: a.URL})
	cb, _ := New(Options{NoAuth: true, Endpoint: b.URL})
	ma, err := ca.KeyMaterial(context.Background(), project, id)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := cb.KeyMaterial(context.Background(), project, id)
	if err != nil || string(ma) != string(mb) || len(ma) != 16 {
		t.Fatalf("material differs between servers or wrong size (%d bytes): %v", len(ma), err)
	}
	// The creation is audited once, durably within a second.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		var creates int
		if err := db.QueryRow("SELECT COUNT(*) FROM key_audit WHERE project_id = ? AND action = 'create'", project).Scan(&creates); err != nil {
			t.Fatal(err)
		}
		if creates == 1 {
			break
		}
		if creates > 1 || time.Now().After(deadline) {
			t.Fatalf("%d create audit records, want 1", creates)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealClientCache drives the client against a real arca-api: hits make
// no request, concurrent misses collapse, TTLs are honoured, rotation and
// destruction show through, and a killed key service gives typed errors.
func TestRealClientCache(t *testing.T) {
	dbURL, _ := mariaDB(t)
	// arca-api's destroy guard matches the client's ActiveTTL, as the
	// deployment rule says (docs/project-keys.md).
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL,
		Extra: "\n[crypto]\ncrypto_protocol = aes_256_cbc\n[project_keys]\nactive_key_cache_ttl = 0.5\n"})
	hc, ct := counting(t, srv.URL)
	c, err := New(Options{NoAuth: true, Endpoint: srv.URL + "/v1", HTTPClient: hc,
		ActiveTTL: 500 * time.Millisecond, MaterialTTL: 1500 * time.Millisecond, ErrorTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	project := newProject()

	// 64 concurrent misses: one request each for the id and the bytes.
	var wg sync.WaitGroup
	keys := make(chan Key, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := c.ActiveKey(ctx, project)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.KeyMaterial(ctx, project, k.ID); err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	wg.Wait()
	close(keys)
	first := <-keys
	if first.BitLength != 256 || first.Algorithm != "aes_256_cbc" || first.ProjectID != project {
		t.Fatalf("key %+v", first)
	}
	if n := ct.n.Load(); n != 2 {
		t.Fatalf("%d requests for 64 concurrent callers, want 2", n)
	}
	// Hits: no request at all.
	for range 1000 {
		if _, err := c.ActiveKey(ctx, project); err != nil {
			t.Fatal(err)
		}
		m, err := c.KeyMaterial(ctx, project, first.ID)
		if err != nil || len(m) != 32 {
			t.Fatalf("material %d bytes, %v", len(m), err)
		}
	}
	if n := ct.n.Load(); n != 2 {
		t.Fatalf("%d requests after 2000 cache hits, want 2", n)
	}

	// Rotation reaches the client once the active id expires; the old key
	// still resolves.
	if st, body := noauthPost(t, srv.URL+"/v1/project-keys/rotate", project); st != http.StatusCreated {
		t.Fatalf("rotate: %d %s", st, body)
	}
	if k, _ := c.ActiveKey(ctx, project); k.ID != first.ID {
		t.Fatal("active id changed before its TTL")
	}
	time.Sleep(600 * time.Millisecond)
	second, err := c.ActiveKey(ctx, project)
	if err != nil || second.ID == first.ID {
		t.Fatalf("after the TTL: %+v %v", second, err)
	}
	c.Purge()
	if _, err := c.KeyMaterial(ctx, project, first.ID); err != nil {
		t.Fatalf("deactivated key: %v", err)
	}

	// Another project's key: not found.
	if _, err := c.KeyMaterial(ctx, newProject(), first.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key with another project: %v", err)
	}

	// Destroyed: ErrDestroyed once the cached bytes expire.
	if st, body := noauthDelete(t, srv.URL+"/v1/project-keys/"+first.ID, project); st != http.StatusNoContent {
		t.Fatalf("destroy: %d %s", st, body)
	}
	c.Purge()
	if _, err := c.KeyMaterial(ctx, project, first.ID); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("destroyed key: %v", err)
	}

	// Kill the key service: cached answers keep serving until they expire.
	if _, err := c.ActiveKey(ctx, project); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyMaterial(ctx, project, second.ID); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	killed := time.Now()
	if _, err := c.KeyMaterial(ctx, project, second.ID); err != nil {
		t.Fatalf("cached material right after the kill: %v", err)
	}
	time.Sleep(time.Until(killed.Add(600 * time.Millisecond)))
	if _, err := c.ActiveKey(ctx, project); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("active key after its TTL with the service down: %v", err)
	}
	if _, err := c.KeyMaterial(ctx, project, second.ID); err != nil {
		t.Fatalf("material within its TTL with the service down: %v", err)
	}
	time.Sleep(time.Until(killed.Add(1600 * time.Millisecond)))
	if _, err := c.KeyMaterial(ctx, project, second.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("material after its TTL with the service down: %v", err)
	}
	if s := c.Stats(); s.Hits < 2000 || s.Requests < 6 || s.Failures == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func noauthPost(t *testing.T, url, project string) (int, string) {
	return noauthDo(t, http.MethodPost, url, project)
}

func noauthDelete(t *testing.T, url, project string) (int, string) {
	return noauthDo(t, http.MethodDelete, url, project)
}

func noauthDo(t *testing.T, method, url, project string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("X-Project-Id", project)
	req.Header.Set("X-User-Id", "operator")
	req.Header.Set("X-Roles", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

// keystoneServer starts arca-api with auth_strategy = keystone against the
// stack's Keystone, on a fresh MariaDB database. Its token cache keeps a
// validation for 1 ms, so that a revoked token is refused at once.
func keystoneServer(t *testing.T, ks *testenv.KeystoneEnv) (*testenv.API, *sql.DB) {
	t.Helper()
	dbURL, db := mariaDB(t)
	u := ks.Users[testenv.UserArca]
	extra := fmt.Sprintf(`
[keystone_authtoken]
www_authenticate_uri = %[1]s
auth_url = %[1]s
auth_type = password
username = %[2]s
password = %[3]s
project_name = %[4]s
user_domain_name = %[5]s
project_domain_name = %[6]s
region_name = %[7]s
token_cache_time = 0.001
`, ks.URL, u.Name, u.Password, u.Project, ks.UserDomain, ks.ProjectDomain, ks.Region)
	return testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL, AuthStrategy: "keystone", Extra: extra}), db
}

// serviceCredentials are the object servers' user's, arca-object: the
// key-manager:object-server role and no other.
func serviceCredentials(ks *testenv.KeystoneEnv) Credentials {
	u := ks.Users[testenv.UserArcaObject]
	return Credentials{AuthURL: ks.URL, Username: u.Name, Password: u.Password, ProjectName: u.Project,
		UserDomainName: ks.UserDomain, ProjectDomainName: ks.ProjectDomain}
}

func tokenGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

// TestRealKeystoneClient: the service user resolves keys of any project
// through Keystone auth, re-authenticates when its token is revoked, and
// users get 403/404 as the binding rules say.
func TestRealKeystoneClient(t *testing.T) {
	ks := testenv.LoadKeystone(t)
	srv, db := keystoneServer(t, ks)
	hc, ct := counting(t, srv.URL)
	c, err := New(Options{Credentials: serviceCredentials(ks), Endpoint: srv.URL, HTTPClient: hc, ErrorTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	demoToken := ks.Token(t, testenv.UserDemo)
	altToken := ks.Token(t, testenv.UserAlt)
	// The projects' ids, from the tokens.
	st, body := tokenGet(t, srv.URL+"/v1/project-keys/active", demoToken)
	if st != http.StatusOK {
		t.Fatalf("demo GET active: %d %s", st, body)
	}
	demoProject := jsonField(t, body, "project_id")
	demoKey := jsonField(t, body, "key_id")
	st, body = tokenGet(t, srv.URL+"/v1/project-keys/active", altToken)
	if st != http.StatusOK {
		t.Fatalf("alt GET active: %d %s", st, body)
	}
	altProject := jsonField(t, body, "project_id")

	k, err := c.ActiveKey(ctx, demoProject)
	if err != nil || k.ID != demoKey {
		t.Fatalf("service ActiveKey(demo) = %+v, %v; demo sees %s", k, err, demoKey)
	}
	m, err := c.KeyMaterial(ctx, demoProject, demoKey)
	if err != nil || len(m) != 16 {
		t.Fatalf("service KeyMaterial: %d bytes, %v", len(m), err)
	}
	// Binding: demo's key id with project_id=alt is 404 for the service too.
	if _, err := c.KeyMaterial(ctx, altProject, demoKey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("demo's key as alt's: %v", err)
	}
	// A non-service user: 403 on the payload of their own key, 404 on
	// another project's key (which they must not learn exists), 403 on
	// another project's active key.
	payload := "/v1/project-keys/" + demoKey + "/payload?project_id="
	if st, body := tokenGet(t, srv.URL+payload+demoProject, demoToken); st != http.StatusForbidden {
		t.Fatalf("demo reading its own key's payload: %d %s", st, body)
	}
	if st, body := tokenGet(t, srv.URL+payload+altProject, demoToken); st != http.StatusNotFound {
		t.Fatalf("demo reading its key as alt's: %d %s", st, body)
	}
	if st, body := tokenGet(t, srv.URL+payload+demoProject, altToken); st != http.StatusForbidden && st != http.StatusNotFound {
		t.Fatalf("alt reading demo's key: %d %s", st, body)
	}
	if st, body := tokenGet(t, srv.URL+"/v1/project-keys/active?project_id="+demoProject, altToken); st != http.StatusForbidden {
		t.Fatalf("alt addressing demo's active key: %d %s", st, body)
	}

	// Re-authentication: revoke the client's token; the next miss gets a 401,
	// re-authenticates and succeeds.
	ks.Revoke(t, c.pc.Token())
	before := ct.n.Load()
	c.Purge()
	time.Sleep(100 * time.Millisecond)
	if _, err := c.KeyMaterial(ctx, demoProject, demoKey); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n := ct.n.Load() - before; n != 2 {
		t.Fatalf("%d key-service requests after the revocation, want 2 (401, then the retry with a new token)", n)
	}

	// Audit: every access above is in key_audit, the refusals too.
	time.Sleep(1200 * time.Millisecond)
	var payloadOK, payloadDenied, payloadNotFound int
	if err := db.QueryRow(`SELECT
		SUM(action = 'payload' AND outcome = 'success'),
		SUM(action = 'payload' AND outcome = 'denied'),
		SUM(action = 'payload' AND outcome = 'not_found')
		FROM key_audit WHERE key_id = ?`, demoKey).Scan(&payloadOK, &payloadDenied, &payloadNotFound); err != nil {
		t.Fatal(err)
	}
	if payloadOK < 2 || payloadDenied < 1 || payloadNotFound < 2 {
		t.Fatalf("audit: %d successful, %d denied, %d not-found payload reads", payloadOK, payloadDenied, payloadNotFound)
	}
}

func jsonField(t *testing.T, body, field string) string {
	t.Helper()
	i := strings.Index(body, `"`+field+`":"`)
	if i < 0 {
		t.Fatalf("no %s in %s", field, body)
	}
	rest := body[i+len(field)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestRealDestroyGuardOutlivesTheCache is the destroy guard against a slow
// answer, on a real arca-api (guard 1 s) behind a proxy that holds its
// active-key answers for 500 ms: while an answer naming key K1 is on its
// way, K1 is rotated out; then K1 is destroyed, without force, as soon as
// arca-api allows. No client may still hold K1 as active by then: not one
// configured with ActiveTTL equal to the guard (the answer's latency must
// not extend it), nor one configured with a longer ActiveTTL (the guard in
// the answer bounds it).
func TestRealDestroyGuardOutlivesTheCache(t *testing.T) {
	const guard, hold = time.Second, 500 * time.Millisecond
	srv := testenv.StartAPI(t, testenv.APIOptions{Extra: "\n[project_keys]\nactive_key_cache_ttl = 1\n"})
	answered := make(chan struct{}, 8)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme, r.URL.Host, r.RequestURI, r.Host = "http", strings.TrimPrefix(srv.URL, "http://"), "", ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.HasSuffix(r.URL.Path, "/active") {
			answered <- struct{}{}
			time.Sleep(hold)
		}
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(slow.Close)

	project := newProject()
	ctx := context.Background()
	first, err := New(Options{NoAuth: true, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	k1, err := first.ActiveKey(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*Client{}
	for name, ttl := range map[string]time.Duration{"ActiveTTL = the guard": guard, "ActiveTTL 1h": time.Hour} {
		if clients[name], err = New(Options{NoAuth: true, Endpoint: slow.URL, ActiveTTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for name, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k, err := c.ActiveKey(ctx, project); err != nil || k.ID != k1.ID {
				t.Errorf("%s: %+v %v, want %s", name, k, err, k1.ID)
			}
		}()
	}
	for range clients {
		<-answered // arca-api has read K1 for each; the answers are held
	}
	if st, body := noauthPost(t, srv.URL+"/v1/project-keys/rotate", project); st != http.StatusCreated {
		t.Fatalf("rotate: %d %s", st, body)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	deadline := time.Now().Add(guard + 5*time.Second)
	for {
		st, body := noauthDelete(t, srv.URL+"/v1/project-keys/"+k1.ID, project)
		if st == http.StatusNoContent {
			break
		}
		if st != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("destroy of the deactivated key: %d %s", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, c := range clients {
		if k, err := c.ActiveKey(ctx, project); err != nil || k.ID == k1.ID {
			t.Errorf("%s: right after %s was destroyed without force, the client holds it as active (%+v, %v)", name, k1.ID, k, err)
		}
	}
}
