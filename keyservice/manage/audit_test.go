package manage_test

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
)

// TestAuditExport runs a scenario of key accesses against a real arca-api
// on MariaDB, then exports the audit trail with arca-manage: every access
// is there, in order, with the right outcome, and no record holds key
// material, a secret payload or a token.
func TestAuditExport(t *testing.T) {
	_, dsn := testenv.MySQL(t)
	// The old key is destroyed right after the rotation below.
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: osloFromDSN(t, dsn), Extra: "\n[project_keys]\nactive_key_cache_ttl = 0.001\n"})
	const project, token = "auditproj", "gAAAAAB-not-a-real-token-0123456789"
	caller := project
	call := func(method, path, roles, body string) (int, []byte) {
		t.Helper()
		return testenv.Do(t, method, srv.URL+path, body, map[string]string{
			"X-Project-Id": caller, "X-User-Id": "auditor-user", "X-Roles": roles,
			"X-Auth-Token": token, // ignored in noauth mode; must never be recorded
		})
	}
	keyOf := func(b []byte) string {
		var v struct {
			KeyID string `json:"key_id"`
		}
		_ = json.Unmarshal(b, &v)
		return v.KeyID
	}
	expect := func(code, want int, body []byte, what string) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %d, want %d: %s", what, code, want, body)
		}
	}
	var materials [][]byte
	code, body := call("GET", "/v1/project-keys/active", "admin,member,reader", "")
	expect(code, 200, body, "first active key")
	first := keyOf(body)
	code, body = call("GET", "/v1/project-keys/"+first+"/payload?project_id="+project, "key-manager:object-server", "")
	expect(code, 200, body, "payload as service")
	materials = append(materials, body)
	caller = "intruder" // another project probing: 404, audited under the key's project
	code, body = call("GET", "/v1/project-keys/"+first+"/payload", "member", "")
	expect(code, 404, body, "payload from another project")
	caller = project
	code, body = call("POST", "/v1/project-keys/rotate", "admin", "")
	expect(code, 201, body, "rotate")
	second := keyOf(body)
	code, body = call("DELETE", "/v1/project-keys/"+first, "admin", "")
	expect(code, 204, body, "destroy")
	code, body = call("GET", "/v1/project-keys/"+first+"/payload?project_id="+project, "key-manager:object-server", "")
	expect(code, 410, body, "payload of a destroyed key")
	code, body = call("GET", "/v1/project-keys/"+second+"/payload?project_id="+project, "key-manager:object-server", "")
	expect(code, 200, body, "payload of the new key")
	materials = append(materials, body)
	const secretPayload = "audit-secret-payload-7f3a"
	code, body = call("POST", "/v1/secrets", "admin,member,reader", `{"name":"s","payload":"`+secretPayload+`","payload_content_type":"text/plain"}`)
	expect(code, 201, body, "secret")
	var sec struct {
		SecretRef string `json:"secret_ref"`
	}
	_ = json.Unmarshal(body, &sec)
	secretID := sec.SecretRef[strings.LastIndex(sec.SecretRef, "/")+1:]
	code, body = call("GET", "/v1/secrets/"+secretID+"/payload", "admin,member,reader", "")
	expect(code, 200, body, "secret payload")

	want := []struct{ action, outcome, reason, target string }{
		{"project_key:create", "success", "", first},
		{"project_key:payload", "success", "", first},
		{"project_key:payload", "failure", "not_found", first},
		{"project_key:rotate", "success", "", second},
		{"project_key:destroy", "success", "", first},
		{"project_key:payload", "failure", "gone", first},
		{"project_key:payload", "success", "", second},
		{"secret:decrypt", "success", "", secretID},
	}
	check := func(what string, events []keyservice.AuditEvent, raw string) {
		t.Helper()
		var mine []keyservice.AuditEvent
		for _, ev := range events {
			if ev.Target.ProjectID == project {
				mine = append(mine, ev)
			}
		}
		if len(mine) != len(want) {
			t.Fatalf("%s: %d events of %s, want %d:\n%s", what, len(mine), project, len(want), raw)
		}
		for i, w := range want {
			ev := mine[i]
			if ev.Action != w.action || ev.Outcome != w.outcome || ev.Reason != w.reason || ev.Target.ID != w.target ||
				ev.Initiator.ID != "auditor-user" || (ev.Initiator.ProjectID != project) != (i == 2) || !strings.HasPrefix(ev.RequestID, "req-") ||
				ev.EventTime == "" || (i > 0 && ev.ID <= mine[i-1].ID) {
				t.Errorf("%s: event %d = %+v, want %+v", what, i, ev, w)
			}
		}
		eventIDs := map[string]bool{}
		for i, ev := range mine {
			id, err := uuid.Parse(ev.EventID)
			if err != nil || eventIDs[ev.EventID] {
				t.Errorf("%s: event %d has event_id %q: not a fresh UUID", what, i, ev.EventID)
				continue
			}
			eventIDs[ev.EventID] = true
			// Time-ordered (version 7), so that key_audit's unique index
			// on event_id grows at its end: made when the event happened,
			// and later events sort later.
			at, terr := time.Parse(time.RFC3339Nano, ev.EventTime)
			sec, nsec := id.Time().UnixTime()
			if made := time.Unix(sec, nsec); id.Version() != 7 || terr != nil || made.Sub(at).Abs() > 2*time.Second {
				t.Errorf("%s: event %d at %s has event_id %s (version %d, made %s): not a time-ordered UUID of its time",
					what, i, ev.EventTime, ev.EventID, id.Version(), made.UTC().Format(time.RFC3339Nano))
			}
			if i > 0 && ev.EventID <= mine[i-1].EventID {
				t.Errorf("%s: event %d's event_id %s does not sort after event %d's %s", what, i, ev.EventID, i-1, mine[i-1].EventID)
			}
		}
		if mine[1].Initiator.Type != "service" || mine[0].Initiator.Type != "user" {
			t.Errorf("%s: initiator types %q %q", what, mine[0].Initiator.Type, mine[1].Initiator.Type)
		}
		leaks := []string{token, secretPayload, base64.StdEncoding.EncodeToString([]byte(secretPayload))}
		for _, m := range materials {
			leaks = append(leaks, string(m), hex.EncodeToString(m), base64.StdEncoding.EncodeToString(m))
		}
		for _, l := range leaks {
			if strings.Contains(raw, l) {
				t.Errorf("%s: the export contains key material, a payload or a token", what)
			}
		}
	}

	// arca-api writes audit records in batches within a fraction of a
	// second; wait until the last one (the secret read) is in the table.
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := srv.Manage(t, "audit", "list", "--project", project, "--format", "json")
		if err == nil && strings.Contains(o, `"secret:decrypt"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records not written after 10 s: %v\n%s", err, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	if o, err := srv.Manage(t, "audit", "export", "--output", out); err != nil || !strings.Contains(o, "audit records written") {
		t.Fatalf("audit export: %v\n%s", err, o)
	} else {
		t.Logf("audit export: %s", o)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v", fi.Mode().Perm())
	}
	check("export", parseLines(t, string(raw)), string(raw))

	o, err := srv.Manage(t, "audit", "list", "--project", project, "--format", "json")
	if err != nil {
		t.Fatalf("audit list: %v\n%s", err, o)
	}
	check("list --format json", parseLines(t, o), o)
	if o, err = srv.Manage(t, "audit", "list", "--project", project); err != nil || !strings.Contains(o, "project_key:rotate") ||
		len(strings.Split(strings.TrimSpace(o), "\n")) != len(want)+1 {
		t.Fatalf("audit list (table): %v\n%s", err, o)
	}
	o, err = srv.Manage(t, "audit", "list", "--project", project, "--format", "json", "--since", "2999-01-01")
	if err != nil || strings.TrimSpace(o) != "" {
		t.Fatalf("audit list --since in the future: %v %q", err, o)
	}
	if o, err = srv.Manage(t, "audit", "list", "--since", "1h"); err == nil {
		t.Fatalf("audit list without --project accepted: %s", o)
	}
	if o, err = srv.Manage(t, "audit", "export", "--since", "yesterday"); err == nil {
		t.Fatalf("bad --since accepted: %s", o)
	}

	// --since with a time between two events lists only the later ones
	// (given with a zone other than UTC, as an operator may write it).
	time.Sleep(50 * time.Millisecond)
	between := time.Now()
	time.Sleep(50 * time.Millisecond)
	code, body = call("GET", "/v1/project-keys/"+second+"/payload?project_id="+project, "key-manager:object-server", "")
	expect(code, 200, body, "payload after the cut")
	code, body = call("POST", "/v1/project-keys/rotate", "admin", "")
	expect(code, 201, body, "rotate after the cut")
	third := keyOf(body)
	since := between.In(time.FixedZone("CEST", 2*60*60)).Format(time.RFC3339Nano)
	var later []keyservice.AuditEvent
	deadline = time.Now().Add(10 * time.Second)
	for {
		o, err := srv.Manage(t, "audit", "list", "--project", project, "--format", "json", "--since", since)
		if err != nil {
			t.Fatalf("audit list --since %s: %v\n%s", since, err, o)
		}
		later = parseLines(t, o)
		if len(later) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(later) != 2 || later[0].Action != "project_key:payload" || later[0].Target.ID != second ||
		later[1].Action != "project_key:rotate" || later[1].Target.ID != third {
		t.Fatalf("audit list --since %s (between the scenario and two more accesses): %+v, want the payload read of %s and the rotation to %s",
			since, later, second, third)
	}
	for _, ev := range later {
		if at, err := time.Parse(time.RFC3339Nano, ev.EventTime); err != nil || at.Before(between) {
			t.Errorf("event at %s listed --since %s", ev.EventTime, since)
		}
	}
}

func parseLines(t *testing.T, s string) []keyservice.AuditEvent {
	t.Helper()
	var out []keyservice.AuditEvent
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ev keyservice.AuditEvent
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("not an audit event: %v: %s", err, line)
		}
		out = append(out, ev)
	}
	return out
}

// osloFromDSN spells a go-sql-driver DSN as an oslo [database] connection.
func osloFromDSN(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	if cfg.Net == "unix" {
		u.RawQuery = url.Values{"unix_socket": {cfg.Addr}}.Encode()
	} else {
		u.Host = cfg.Addr
	}
	return u.String()
}
