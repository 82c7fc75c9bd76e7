package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice"
)

// projectKeyTests are the conformance cases of the project key methods
// (keyservice/projectkeys.go); Run appends them to its list.
var projectKeyTests = []struct {
	name string
	f    func(t *testing.T, s keyservice.Store)
}{
	{"ProjectKeyRoundTrip", testProjectKeyRoundTrip},
	{"ProjectKeyCreateRace", testProjectKeyCreateRace},
	{"ProjectKeyRotateRace", testProjectKeyRotateRace},
	{"ProjectKeyDestroy", testProjectKeyDestroy},
	{"ListProjectKeys", testListProjectKeys},
	{"KeyAudit", testKeyAudit},
	{"KeyAuditOncePerEvent", testKeyAuditOncePerEvent},
	{"KeyAuditAnyText", testKeyAuditAnyText},
	{"ScanKeyAudit", testScanKeyAudit},   // auditexport.go
	{"PruneKeyAudit", testPruneKeyAudit}, // auditexport.go
}

func newProjectKey(project string, created time.Time) *keyservice.ProjectKey {
	return &keyservice.ProjectKey{
		ID: uuid.NewString(), ProjectID: project, Algorithm: keyservice.ProtocolAES256CBC, BitLength: 256,
		Status: keyservice.ProjectKeyActive, CreatorID: "creator", Material: []byte("sealed-" + project), Created: created,
	}
}

func testProjectKeyRoundTrip(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	_, err := s.GetActiveProjectKey(c, "p")
	wantErr(t, err, keyservice.ErrNotFound, "active key of an empty project")
	_, err = s.GetProjectKey(c, uuid.NewString())
	wantErr(t, err, keyservice.ErrNotFound, "unknown key")
	k := newProjectKey("p", base)
	must(t, s.CreateProjectKey(c, k))
	for what, get := range map[string]func() (*keyservice.ProjectKey, error){
		"active": func() (*keyservice.ProjectKey, error) { return s.GetActiveProjectKey(c, "p") },
		"by id":  func() (*keyservice.ProjectKey, error) { return s.GetProjectKey(c, k.ID) },
	} {
		got, err := get()
		must(t, err)
		if got.ID != k.ID || got.ProjectID != "p" || got.Algorithm != k.Algorithm || got.BitLength != 256 ||
			got.Status != keyservice.ProjectKeyActive || got.CreatorID != "creator" || string(got.Material) != "sealed-p" ||
			got.Deactivated != nil || got.Destroyed != nil {
			t.Fatalf("%s: %+v", what, got)
		}
		sameTime(t, what+" created", got.Created, us(base))
	}
	// A second active key for the project is refused; other projects are
	// independent.
	wantErr(t, s.CreateProjectKey(c, newProjectKey("p", base)), keyservice.ErrConflict, "second active key")
	must(t, s.CreateProjectKey(c, newProjectKey("q", base)))
}

func testProjectKeyCreateRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	keys := make([]*keyservice.ProjectKey, racers)
	for i := range keys {
		keys[i] = newProjectKey("raced", base)
	}
	w := oneWinner(t, race(func(i int) error { return s.CreateProjectKey(c, keys[i]) }))
	got, err := s.GetActiveProjectKey(c, "raced")
	must(t, err)
	if got.ID != keys[w].ID {
		t.Fatalf("active key %s is not the winner's %s", got.ID, keys[w].ID)
	}
	_, total, err := s.ListProjectKeys(c, "raced", 100, 0)
	must(t, err)
	if total != 1 {
		t.Fatalf("%d keys stored after the race, want 1", total)
	}
}

func testProjectKeyRotateRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	first := newProjectKey("p", base)
	must(t, s.CreateProjectKey(c, first))
	next := make([]*keyservice.ProjectKey, racers)
	for i := range next {
		next[i] = newProjectKey("p", base.Add(time.Second))
	}
	w := oneWinner(t, race(func(i int) error { return s.RotateProjectKey(c, first.ID, next[i]) }))
	active, err := s.GetActiveProjectKey(c, "p")
	must(t, err)
	if active.ID != next[w].ID {
		t.Fatalf("active %s, winner %s", active.ID, next[w].ID)
	}
	old, err := s.GetProjectKey(c, first.ID)
	must(t, err)
	if old.Status != keyservice.ProjectKeyDeactivated || old.Deactivated == nil || string(old.Material) != "sealed-p" {
		t.Fatalf("rotated-out key %+v", old)
	}
	sameTime(t, "deactivated", *old.Deactivated, us(base.Add(time.Second)))
	// Losers left nothing behind.
	_, total, err := s.ListProjectKeys(c, "p", 100, 0)
	must(t, err)
	if total != 2 {
		t.Fatalf("%d keys after the race, want 2", total)
	}
	// Rotating from a key that is no longer active, or from another
	// project's active key, is a conflict.
	wantErr(t, s.RotateProjectKey(c, first.ID, newProjectKey("p", base)), keyservice.ErrConflict, "rotate from a deactivated key")
	q := newProjectKey("q", base)
	must(t, s.CreateProjectKey(c, q))
	wantErr(t, s.RotateProjectKey(c, q.ID, newProjectKey("p", base)), keyservice.ErrConflict, "rotate from another project's key")
}

// testProjectKeyDestroy: only a DEACTIVATED key is ever destroyed; the
// ACTIVE key never, force or not; a key deactivated after deactivatedBy
// only with force. Each case has a project of its own: first was
// deactivated at base+1s by the rotation to second (ACTIVE).
func testProjectKeyDestroy(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	rotatedAt := base.Add(time.Second)
	for _, tc := range []struct {
		name          string
		target        string // "first", "second" (active) or "unknown"
		force         bool
		deactivatedBy time.Time
		want          error // nil: destroyed
	}{
		{"unknown key", "unknown", true, base.Add(time.Hour), keyservice.ErrNotFound},
		{"active key", "second", false, base.Add(time.Hour), keyservice.ErrConflict},
		{"active key with force", "second", true, base.Add(time.Hour), keyservice.ErrConflict},
		{"deactivated long enough ago", "first", false, rotatedAt.Add(time.Minute), nil},
		{"deactivated exactly at the bound", "first", false, rotatedAt, nil},
		{"deactivated a microsecond too late", "first", false, rotatedAt.Add(-time.Microsecond), keyservice.ErrConflict},
		{"deactivated too late", "first", false, base, keyservice.ErrConflict},
		{"deactivated too late, with force", "first", true, base, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			project := "destroy-" + keyservice.NewID()
			first := newProjectKey(project, base)
			must(t, s.CreateProjectKey(c, first))
			second := newProjectKey(project, rotatedAt)
			must(t, s.RotateProjectKey(c, first.ID, second))
			id := map[string]string{"first": first.ID, "second": second.ID, "unknown": uuid.NewString()}[tc.target]
			destroyedAt := rotatedAt.Add(2 * time.Second)
			err := s.DestroyProjectKey(c, id, tc.force, tc.deactivatedBy, destroyedAt)
			if tc.want != nil {
				wantErr(t, err, tc.want, tc.name)
			} else {
				must(t, err)
			}
			// Whatever happened, the project still has its active key.
			active, err := s.GetActiveProjectKey(c, project)
			must(t, err)
			if active.ID != second.ID || active.Status != keyservice.ProjectKeyActive || active.Material == nil {
				t.Fatalf("active key after %q: %+v", tc.name, active)
			}
			if tc.target != "first" {
				return
			}
			got, err := s.GetProjectKey(c, first.ID)
			must(t, err)
			if tc.want != nil {
				if got.Status != keyservice.ProjectKeyDeactivated || string(got.Material) != "sealed-"+project || got.Destroyed != nil {
					t.Fatalf("refused destroy changed the key: %+v", got)
				}
				return
			}
			if got.Status != keyservice.ProjectKeyDestroyed || got.Material != nil || got.Destroyed == nil || got.Deactivated == nil {
				t.Fatalf("destroyed key %+v", got)
			}
			sameTime(t, "destroyed", *got.Destroyed, us(destroyedAt))
			wantErr(t, s.DestroyProjectKey(c, first.ID, true, destroyedAt, destroyedAt), keyservice.ErrGone, "destroy twice")
		})
	}
	testProjectKeyDestroyRace(t, s)
}

// testProjectKeyDestroyRace: a destroy racing the rotation that deactivates
// its key: whichever runs first, the key just deactivated (after
// deactivatedBy) survives and the project keeps exactly one active key.
func testProjectKeyDestroyRace(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	for round := range 4 {
		project := fmt.Sprintf("destroy-race-%d-%s", round, keyservice.NewID())
		cur := newProjectKey(project, base)
		must(t, s.CreateProjectKey(c, cur))
		rotatedAt := base.Add(time.Minute)
		errs := race(func(i int) error {
			if i%2 == 0 {
				return s.DestroyProjectKey(c, cur.ID, false, rotatedAt.Add(-time.Second), rotatedAt)
			}
			return s.RotateProjectKey(c, cur.ID, newProjectKey(project, rotatedAt))
		})
		for i := 0; i < racers; i += 2 {
			wantErr(t, errs[i], keyservice.ErrConflict, "destroy racing a rotation")
		}
		got, err := s.GetProjectKey(c, cur.ID)
		must(t, err)
		if got.Status == keyservice.ProjectKeyDestroyed || got.Material == nil {
			t.Fatalf("round %d: key destroyed while (or just after) it was active: %+v", round, got)
		}
		list, _, err := s.ListProjectKeys(c, project, 100, 0)
		must(t, err)
		actives := 0
		for _, k := range list {
			if k.Status == keyservice.ProjectKeyActive {
				actives++
			}
		}
		if actives != 1 {
			t.Fatalf("round %d: %d active keys after racing destroy and rotate (%v)", round, actives, errs)
		}
	}
}

func testListProjectKeys(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	cur := newProjectKey("p", base)
	must(t, s.CreateProjectKey(c, cur))
	ids := []string{cur.ID}
	for i := 1; i < 7; i++ {
		next := newProjectKey("p", base.Add(time.Duration(i)*time.Second))
		must(t, s.RotateProjectKey(c, cur.ID, next))
		cur = next
		ids = append(ids, next.ID)
	}
	must(t, s.CreateProjectKey(c, newProjectKey("other", base)))
	var got []string
	for offset := 0; ; offset += 3 {
		page, total, err := s.ListProjectKeys(c, "p", 3, offset)
		must(t, err)
		if total != 7 {
			t.Fatalf("total %d, want 7", total)
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			got = append(got, k.ID)
		}
	}
	for i := range ids {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("history not newest first:\n got %v\nwant reverse of %v", got, ids)
		}
	}
	empty, total, err := s.ListProjectKeys(c, "nobody", 10, 0)
	must(t, err)
	if len(empty) != 0 || total != 0 || empty == nil {
		t.Fatalf("empty project: %v %d", empty, total)
	}
}

func testKeyAudit(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	var recs []keyservice.KeyAuditRecord
	for i := range 620 { // more than one multi-row statement
		recs = append(recs, keyservice.KeyAuditRecord{
			Time: base.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("req-%d", i),
			Action: keyservice.AuditPayload, Outcome: keyservice.OutcomeSuccess, ProjectID: []string{"p", "q"}[i%2],
			KeyID: fmt.Sprintf("k%d", i%3), UserID: "arca", UserProjectID: "service", Service: i%5 == 0,
			Roles: "service,admin", Detail: "détail",
		})
	}
	must(t, s.AppendKeyAudit(c, recs))
	must(t, s.AppendKeyAudit(c, nil))
	got, err := s.ListKeyAudit(c, keyservice.KeyAuditFilter{ProjectID: "p", Limit: 1000})
	must(t, err)
	if len(got) != 310 {
		t.Fatalf("%d records of p, want 310", len(got))
	}
	for i, r := range got {
		want := recs[2*i]
		if r.ID <= 0 || (i > 0 && r.ID <= got[i-1].ID) || r.RequestID != want.RequestID || r.Action != want.Action ||
			r.Outcome != want.Outcome || r.KeyID != want.KeyID || r.UserID != "arca" || r.UserProjectID != "service" ||
			r.Service != want.Service || r.Roles != "service,admin" || r.Detail != "détail" {
			t.Fatalf("record %d: %+v, want %+v", i, r, want)
		}
		sameTime(t, "audit time", r.Time, us(want.Time))
	}
	page, err := s.ListKeyAudit(c, keyservice.KeyAuditFilter{ProjectID: "p", KeyID: "k1", AfterID: got[0].ID, Limit: 5})
	must(t, err)
	if len(page) != 5 {
		t.Fatalf("filtered page: %d records", len(page))
	}
	for _, r := range page {
		if r.KeyID != "k1" || r.ID <= got[0].ID || r.ProjectID != "p" {
			t.Fatalf("filtered record %+v", r)
		}
	}
}

// testKeyAuditAnyText: a record holding what a client may send (a key id
// from the path with bytes that are not UTF-8, over-long values cut in a
// character) is written with the records beside it, as UTF-8 within its
// columns. MariaDB refused such a value, and with it the whole batch, for
// as long as the auditor retried it.
func testKeyAuditAnyText(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	long := strings.Repeat("é", 200) // 400 bytes
	recs := []keyservice.KeyAuditRecord{
		{Time: base, RequestID: "req-1", Action: keyservice.AuditGet, Outcome: keyservice.OutcomeNotFound, ProjectID: "anytext",
			KeyID: "\xc3(abc\xff", UserID: "u\xfe", UserProjectID: "anytext", Roles: long, Detail: "x" + long},
		{Time: base, RequestID: "req-2", Action: keyservice.AuditPayload, Outcome: keyservice.OutcomeSuccess, ProjectID: "anytext",
			KeyID: "k", UserID: "arca", UserProjectID: "service"},
	}
	must(t, s.AppendKeyAudit(c, recs))
	got, err := s.ListKeyAudit(c, keyservice.KeyAuditFilter{ProjectID: "anytext", Limit: 10})
	must(t, err)
	if len(got) != 2 || got[1].RequestID != "req-2" {
		t.Fatalf("records %+v", got)
	}
	r := got[0]
	if r.KeyID != "\ufffd(abc\ufffd" || r.UserID != "u\ufffd" {
		t.Errorf("key id %q, user id %q: want the invalid bytes as U+FFFD", r.KeyID, r.UserID)
	}
	for name, v := range map[string]string{"roles": r.Roles, "detail": r.Detail} {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 255 || len(v) < 250 {
			t.Errorf("%s: %d characters, %d bytes, valid UTF-8 %v", name, utf8.RuneCountInString(v), len(v), utf8.ValidString(v))
		}
	}
}

// testKeyAuditOncePerEvent: a batch written again (the auditor retries
// after a commit whose outcome it could not know) records each event once;
// records without an event id are all kept.
func testKeyAuditOncePerEvent(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	project := "once-" + keyservice.NewID()
	rec := func(requestID, eventID string) keyservice.KeyAuditRecord {
		return keyservice.KeyAuditRecord{Time: base, RequestID: requestID, Action: keyservice.AuditPayload,
			Outcome: keyservice.OutcomeSuccess, ProjectID: project, KeyID: "k", UserID: "arca", EventID: eventID}
	}
	first := []keyservice.KeyAuditRecord{rec("req-a", keyservice.NewID()), rec("req-b", keyservice.NewID()), rec("req-anon", "")}
	must(t, s.AppendKeyAudit(c, first))
	// The same batch again, with one new event and another record without an id.
	must(t, s.AppendKeyAudit(c, append(first, rec("req-c", keyservice.NewID()))))

	got, err := s.ListKeyAudit(c, keyservice.KeyAuditFilter{ProjectID: project})
	must(t, err)
	count := map[string]int{}
	for _, r := range got {
		count[r.RequestID]++
	}
	want := map[string]int{"req-a": 1, "req-b": 1, "req-c": 1, "req-anon": 2}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("records per request %v, want %v", count, want)
	}
}
