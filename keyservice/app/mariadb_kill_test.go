package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
)

// TestMariaDBKill9UnderLoad kills a private MariaDB with SIGKILL while
// eight clients store secrets and fetch project keys through a real
// arca-api, then restarts it on the same datadir (InnoDB crash recovery)
// without touching arca-api. Clients must see 503 with Barbican's body
// while the database is gone, never a 500 or internals; arca-api must serve
// again on its own once the database is back; and every secret and project
// key acknowledged at any point must read back unchanged.
func TestMariaDBKill9UnderLoad(t *testing.T) {
	began := time.Now()
	db := testenv.StartMariaDB(t)
	db.CreateDatabase(t, "arca")
	dbSetup := time.Since(began)
	// Built once per test binary and shared with the package's other
	// tests: left out of this test's figures.
	building := time.Now()
	testenv.Binaries(t)
	build := time.Since(building)
	apiStart := time.Now()
	// Short driver timeouts, as in TestDatabaseOutageRealServer: a request
	// must not hang on a database that is gone.
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: db.URL("arca", url.Values{
		"charset": {"utf8mb4"}, "connect_timeout": {"2"}, "read_timeout": {"5"}, "write_timeout": {"5"}})})
	apiSetup := time.Since(apiStart)

	l := &killLoad{base: srv.URL, client: &http.Client{Timeout: 20 * time.Second}, keys: map[string]*ackedKey{}}
	// The clients stop between requests, never cutting one: a request
	// abandoned by its client is logged as a 500 that nobody saw, and the
	// log is checked for 500s below.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad() // before the servers' cleanups, also when the test fails early
	for w := range 8 {
		wg.Go(func() { l.worker(stop, w) })
	}

	// Kill once the load is well under way, project key creation included.
	if !l.waitAcks(150, 8, 30*time.Second) {
		secrets, keys := l.acks()
		if secrets == 0 || keys == 0 {
			t.Fatalf("before the kill: %d secrets and %d project keys acknowledged in 30s", secrets, keys)
		}
	}
	beforeSecrets, beforeKeys := l.acks()
	pid := db.PID()
	l.setPhase(phaseDown)
	killed := time.Now()
	db.Kill(t)

	// Every route that needs the database, asked once more on purpose now
	// that the server is certainly gone: a secret and a key known to exist,
	// and the creation paths.
	sec, key := l.sample()
	for _, r := range []struct{ method, path, project, roles, body string }{
		{"POST", "/v1/secrets", sec.project, "", `{"payload":"eA==","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`},
		{"GET", "/v1/secrets/" + sec.id, sec.project, "", ""},
		{"GET", "/v1/secrets/" + sec.id + "/payload", sec.project, "", ""},
		{"GET", "/v1/project-keys/active", key.project, "", ""},
		{"GET", "/v1/project-keys/active", "k9-never-seen", "", ""},
		{"GET", "/v1/project-keys/" + key.id, key.project, "", ""},
		{"GET", "/v1/project-keys/" + key.id + "/payload?project_id=" + key.project, key.project, "key-manager:object-server", ""},
	} {
		status, body, err := l.do(context.Background(), r.method, r.path, r.project, r.roles, r.body)
		if err != nil {
			t.Fatalf("%s %s with MariaDB killed: %v", r.method, r.path, err)
		}
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s %s with MariaDB killed: %d, want 503: %s", r.method, r.path, status, body)
		}
		l.observe(r.method, r.path, status, body)
	}
	if status, body := call(t, "GET", srv.URL+"/healthcheck/detailed", ""); status != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), `"database":{"ok":false`) {
		t.Errorf("detailed healthcheck with MariaDB killed: %d %s", status, body)
	}
	if status, body := call(t, "GET", srv.URL+"/healthcheck", ""); status != http.StatusOK {
		t.Errorf("plain healthcheck with MariaDB killed: %d %s", status, body)
	}
	// Let the clients run into the outage as well (they back off 25 ms
	// after each failure: a few hundred requests, not tens of thousands).
	time.Sleep(time.Second)

	l.setPhase(phaseRestarting)
	restarting := time.Now()
	db.Restart(t)
	dbBack := time.Now()
	crashRecovery := dbBack.Sub(restarting)
	down := dbBack.Sub(killed)

	// No manual step: the same arca-api must serve again by itself.
	var recovery time.Duration
	for {
		status, body, err := l.do(context.Background(), "GET", "/v1/secrets/"+sec.id+"/payload", sec.project, "", "")
		if err != nil {
			t.Fatalf("reading a secret after the restart: %v", err)
		}
		if status == http.StatusOK {
			recovery = time.Since(dbBack)
			break
		}
		l.observe("GET", "/v1/secrets/{id}/payload", status, body)
		if time.Since(dbBack) > 30*time.Second {
			t.Fatalf("arca-api not serving 30s after MariaDB came back: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.setPhase(phaseRecovered)
	if !l.waitAcks(beforeSecrets+40, beforeKeys, 20*time.Second) {
		secrets, _ := l.acks()
		t.Errorf("after recovery only %d more secrets stored in 20s", secrets-beforeSecrets)
	}
	stopLoad()

	// Durability: every acknowledgement, before, around and after the kill.
	for _, s := range l.secrets {
		status, body, err := l.do(context.Background(), "GET", "/v1/secrets/"+s.id+"/payload", s.project, "", "")
		if err != nil || status != http.StatusOK || string(body) != string(s.payload) {
			t.Errorf("acknowledged secret %s of %s after the crash: %d %v %q, want %q", s.id, s.project, status, err, body, s.payload)
		}
	}
	for _, k := range l.keys {
		if status, body, err := l.do(context.Background(), "GET", "/v1/project-keys/active", k.project, "", ""); err != nil ||
			status != http.StatusOK || keyID(body) != k.id {
			t.Errorf("active key of %s after the crash: %d %v %s, want key %s", k.project, status, err, body, k.id)
		}
		if status, body, err := l.do(context.Background(), "GET", "/v1/project-keys/"+k.id, k.project, "", ""); err != nil ||
			status != http.StatusOK || keyID(body) != k.id {
			t.Errorf("project key %s after the crash: %d %v %s", k.id, status, err, body)
		}
		if k.payload == nil {
			continue // acknowledged by GET active, but the material read was cut
		}
		status, body, err := l.do(context.Background(), "GET", "/v1/project-keys/"+k.id+"/payload?project_id="+k.project, k.project, "key-manager:object-server", "")
		if status == http.StatusOK {
			k.reads++
		}
		if err != nil || status != http.StatusOK || string(body) != string(k.payload) {
			t.Errorf("material of project key %s after the crash: %d %v, %d bytes differing from the %d acknowledged", k.id, status, err, len(body), len(k.payload))
		}
	}

	// Every material read served is audited: records queued while the
	// database was gone, or in a batch the kill cut, are written by
	// arca-api's audit writer when it is back. A batch whose commit was in
	// doubt is written again, and the event ids make that a no-op for the
	// records already committed: each read is recorded exactly once.
	missing, twice := auditGaps(t, db.Open(t, "arca"), l.keys)
	if missing > 0 {
		t.Errorf("%d material reads answered 200 have no audit record 10s after the load stopped", missing)
	}
	if twice > 0 {
		t.Errorf("%d material reads are recorded more than once", twice)
	}

	for _, b := range l.bad {
		t.Error(b)
	}
	if logs := srv.Logs(); strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") {
		t.Errorf("arca-api logged a stack trace or panic:\n%s", logs)
	} else if strings.Contains(logs, "status=500") {
		t.Errorf("arca-api answered 500 (in its log):\n%s", logs)
	}
	secrets, keys := l.acks()
	t.Logf("private MariaDB ready in %s (mariadb-install-db, mariadbd), arca-api in %s (master key, migrations); whole test %s (without the package's shared build)",
		dbSetup.Round(100*time.Millisecond), apiSetup.Round(100*time.Millisecond), (time.Since(began) - build).Round(100*time.Millisecond))
	t.Logf("kill -9 of mariadbd %d after %d secrets and %d project keys acknowledged; %d secrets and %d project keys acknowledged in all, checked after the crash",
		pid, beforeSecrets, beforeKeys, secrets, keys)
	t.Logf("answers while down: %s; while restarting: %s; after recovery: %s",
		l.summary(phaseDown), l.summary(phaseRestarting), l.summary(phaseRecovered))
	t.Logf("503: %d, 500: %d, other failures: %d; MariaDB down %s (restart with crash recovery %s); arca-api serving %s after MariaDB accepted connections",
		l.total(http.StatusServiceUnavailable), l.total(http.StatusInternalServerError), len(l.bad),
		down.Round(time.Millisecond), crashRecovery.Round(time.Millisecond), recovery.Round(time.Millisecond))
	t.Logf("InnoDB crash recovery on restart: %t", strings.Contains(db.Log(), "crash recovery"))
}

// auditGaps compares the successful material reads in key_audit with the
// reads each key answered with 200, waiting up to 10s for arca-api's audit
// writer to catch up, and returns the reads without a record and the
// records beyond the reads.
func auditGaps(t *testing.T, db *sql.DB, keys map[string]*ackedKey) (missing, extra int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		audited, err := auditedReads(db)
		if err != nil {
			t.Fatalf("reading key_audit: %v", err)
		}
		missing, extra = 0, 0
		for _, k := range keys {
			if d := audited[k.id] - k.reads; d < 0 {
				missing -= d
			} else {
				extra += d
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing, extra
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auditedReads counts key_audit's successful material reads by key.
func auditedReads(db *sql.DB) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT key_id, COUNT(*) FROM key_audit WHERE action = 'payload' AND outcome = 'success' GROUP BY key_id")
	if err != nil {
		return nil, fmt.Errorf("querying: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("scanning: %w", err)
		}
		counts[id] = n
	}
	return counts, rows.Err()
}

// Phases of the kill test, for counting answers.
const (
	phaseUp         = iota // before the kill
	phaseDown              // mariadbd killed
	phaseRestarting        // mariadbd restarted, arca-api not yet seen serving
	phaseRecovered         // arca-api served again
	phases
)

type ackedSecret struct {
	project, id string
	payload     []byte
}

type ackedKey struct {
	project, id string
	payload     []byte // nil until a material read succeeded
	reads       int    // material reads answered 200, each of which must be audited
}

// killLoad is the clients' shared record: what was acknowledged, what
// every answer was, and what should never have happened.
type killLoad struct {
	base   string
	client *http.Client

	mu      sync.Mutex
	phase   int
	secrets []ackedSecret
	keys    map[string]*ackedKey // by project
	seen    [phases]map[int]int  // answers by status, per phase
	bad     []string
}

// worker stores secrets in a new project every 16 requests and, every
// fourth request, gets the project's active key (created by the first
// such request) and its material, until stop is closed.
func (l *killLoad) worker(stop <-chan struct{}, w int) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		project := fmt.Sprintf("k9-%d-%d", w, i/16)
		ok := l.storeSecret(project)
		if ok && i%4 == 0 {
			ok = l.fetchKey(project)
		}
		if !ok {
			// Back off: a client hammering a dead database proves nothing
			// more and floods the log.
			select {
			case <-stop:
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
}

func (l *killLoad) storeSecret(project string) bool {
	payload := make([]byte, 24)
	_, _ = rand.Read(payload)
	body := `{"payload":"` + base64.StdEncoding.EncodeToString(payload) +
		`","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`
	status, resp, err := l.do(context.Background(), "POST", "/v1/secrets", project, "", body)
	if !l.answered("POST /v1/secrets", err) {
		return false
	}
	l.observe("POST", "/v1/secrets", status, resp)
	if status != http.StatusCreated {
		return false
	}
	var created struct {
		SecretRef string `json:"secret_ref"`
	}
	if err := json.Unmarshal(resp, &created); err != nil || created.SecretRef == "" {
		l.fail("POST /v1/secrets: 201 without a secret_ref: %s", resp)
		return false
	}
	l.mu.Lock()
	l.secrets = append(l.secrets, ackedSecret{project, created.SecretRef[strings.LastIndex(created.SecretRef, "/")+1:], payload})
	l.mu.Unlock()
	return true
}

func (l *killLoad) fetchKey(project string) bool {
	status, resp, err := l.do(context.Background(), "GET", "/v1/project-keys/active", project, "", "")
	if !l.answered("GET /v1/project-keys/active", err) {
		return false
	}
	l.observe("GET", "/v1/project-keys/active", status, resp)
	if status != http.StatusOK {
		return false
	}
	id := keyID(resp)
	if id == "" {
		l.fail("GET /v1/project-keys/active: 200 without a key_id: %s", resp)
		return false
	}
	l.mu.Lock()
	k := l.keys[project]
	switch {
	case k == nil:
		k = &ackedKey{project: project, id: id}
		l.keys[project] = k
	case k.id != id:
		// Nothing rotates in this test: a second active key means the
		// first, acknowledged one was lost.
		l.bad = append(l.bad, fmt.Sprintf("project %s: active key %s, then %s", project, k.id, id))
	}
	l.mu.Unlock()

	path := "/v1/project-keys/" + id + "/payload?project_id=" + project
	status, material, err := l.do(context.Background(), "GET", path, project, "key-manager:object-server", "")
	if !l.answered("GET "+path, err) {
		return false
	}
	l.observe("GET", "/v1/project-keys/{id}/payload", status, material)
	if status != http.StatusOK {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k.reads++
	if k.payload == nil {
		k.payload = material
	} else if string(k.payload) != string(material) {
		l.bad = append(l.bad, fmt.Sprintf("project key %s: material changed", id))
	}
	return true
}

// do sends a no-auth request as a user of project (with roles, if any)
// and returns the answer.
func (l *killLoad) do(ctx context.Context, method, path, project, roles, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Project-Id", project)
	req.Header.Set("X-User-Id", "k9-user")
	if roles != "" {
		req.Header.Set("X-Roles", roles)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasSuffix(req.URL.Path, "/payload") {
		req.Header.Set("Accept", "application/octet-stream")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// answered reports whether a request got an HTTP answer, and records a
// failure if not: arca-api must answer every request, however the database
// fails.
func (l *killLoad) answered(what string, err error) bool {
	if err != nil {
		l.fail("%s: no answer: %v", what, err)
	}
	return err == nil
}

// observe counts an answer and records it as a failure unless it is a
// success or a 503 in Barbican's shape that shows no internals.
func (l *killLoad) observe(method, path string, status int, body []byte) {
	l.mu.Lock()
	phase := l.phase
	if l.seen[phase] == nil {
		l.seen[phase] = map[int]int{}
	}
	l.seen[phase][status]++
	l.mu.Unlock()
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
	case status == http.StatusServiceUnavailable:
		if err := barbican503(body); err != nil {
			l.fail("%s %s: %v", method, path, err)
		}
	default:
		l.fail("%s %s: %d %s", method, path, status, body)
	}
}

// barbican503 checks a 503 body: Barbican's error document, nothing of the
// driver, the network or the code behind it.
func barbican503(body []byte) error {
	var eb struct {
		Code        int    `json:"code"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || eb.Code != 503 || eb.Title != "Service Unavailable" || eb.Description == "" {
		return fmt.Errorf("503 without Barbican's error body: %s", body)
	}
	for _, m := range traceMarkers {
		if strings.Contains(string(body), m) {
			return fmt.Errorf("503 shows internals (%q): %s", m, body)
		}
	}
	return nil
}

func (l *killLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
}

func (l *killLoad) setPhase(p int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = p
}

// acks returns how many secrets and project keys were acknowledged so far.
func (l *killLoad) acks() (secrets, keys int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.secrets), len(l.keys)
}

// waitAcks waits until at least secrets and keys are acknowledged and
// reports whether that happened within timeout.
func (l *killLoad) waitAcks(secrets, keys int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		s, k := l.acks()
		if s >= secrets && k >= keys {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sample returns an acknowledged secret and project key (waitAcks made
// sure there are some).
func (l *killLoad) sample() (ackedSecret, ackedKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	projects := make([]string, 0, len(l.keys))
	for p := range l.keys {
		projects = append(projects, p)
	}
	slices.Sort(projects)
	return l.secrets[0], *l.keys[projects[0]]
}

// summary spells a phase's answers by status, e.g. "201×40 503×12".
func (l *killLoad) summary(phase int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	statuses := make([]int, 0, len(l.seen[phase]))
	for s := range l.seen[phase] {
		statuses = append(statuses, s)
	}
	if len(statuses) == 0 {
		return "none"
	}
	slices.Sort(statuses)
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		parts[i] = fmt.Sprintf("%d×%d", s, l.seen[phase][s])
	}
	return strings.Join(parts, " ")
}

// total counts the answers with status over every phase.
func (l *killLoad) total(status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, seen := range l.seen {
		n += seen[status]
	}
	return n
}

// keyID reads key_id from a project key document ("" if there is none).
func keyID(body []byte) string {
	var k struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal(body, &k)
	return k.KeyID
}
