package storetest

import (
	"fmt"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice"
)

// testScanKeyAudit: the export read returns every project's records in
// write order, filters by project and time, pages by id.
func testScanKeyAudit(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	var recs []keyservice.KeyAuditRecord
	for i := range 30 {
		action := keyservice.AuditPayload
		if i%3 == 0 {
			action = keyservice.AuditSecretDecrypt
		}
		recs = append(recs, keyservice.KeyAuditRecord{
			Time: base.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("req-%d", i),
			Action: action, Outcome: []string{keyservice.OutcomeSuccess, keyservice.OutcomeDenied}[i%2],
			ProjectID: []string{"pa", "pb", "pc"}[i%3], KeyID: fmt.Sprintf("k%d", i), UserID: "u", UserProjectID: "up",
			EventID: keyservice.NewID(),
		})
	}
	must(t, s.AppendKeyAudit(c, recs[:10]))
	must(t, s.AppendKeyAudit(c, recs[10:]))

	all, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{})
	must(t, err)
	if len(all) != 30 {
		t.Fatalf("%d records, want 30", len(all))
	}
	for i, r := range all {
		if r.RequestID != recs[i].RequestID || r.Action != recs[i].Action || r.Outcome != recs[i].Outcome ||
			r.ProjectID != recs[i].ProjectID || r.EventID != recs[i].EventID || (i > 0 && r.ID <= all[i-1].ID) {
			t.Fatalf("record %d: %+v, want %+v", i, r, recs[i])
		}
		sameTime(t, "audit time", r.Time, us(recs[i].Time))
	}
	since, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{Since: base.Add(20 * time.Second)})
	must(t, err)
	if len(since) != 10 || since[0].RequestID != "req-20" {
		t.Fatalf("since: %d records, first %+v", len(since), since)
	}
	pb, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{ProjectID: "pb", Since: base.Add(10 * time.Second)})
	must(t, err)
	if len(pb) != 7 || pb[0].RequestID != "req-10" {
		t.Fatalf("project pb since 10 s: %d records, first %+v", len(pb), pb)
	}
	for _, r := range pb {
		if r.ProjectID != "pb" {
			t.Fatalf("record of another project: %+v", r)
		}
	}
	page, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{AfterID: all[4].ID, Limit: 3})
	must(t, err)
	if len(page) != 3 || page[0].ID != all[5].ID || page[2].ID != all[7].ID {
		t.Fatalf("page after id: %+v", page)
	}
	none, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{ProjectID: "nobody"})
	must(t, err)
	if none == nil || len(none) != 0 {
		t.Fatalf("unknown project: %#v", none)
	}
}

// testPruneKeyAudit: prune removes exactly the records older than its
// cut-off, in batches, counts them on a dry run, and leaves an old record
// written after a younger one for a later prune.
func testPruneKeyAudit(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	record := func(i int, at time.Time) keyservice.KeyAuditRecord {
		return keyservice.KeyAuditRecord{
			Time: at, RequestID: fmt.Sprintf("req-%d", i), Action: keyservice.AuditPayload, Outcome: keyservice.OutcomeSuccess,
			ProjectID: "pa", KeyID: "k", UserID: "u", UserProjectID: "up", EventID: keyservice.NewID(),
		}
	}
	var recs []keyservice.KeyAuditRecord
	for i := range 30 {
		recs = append(recs, record(i, base.Add(time.Duration(i)*time.Second)))
	}
	must(t, s.AppendKeyAudit(c, recs))
	left := func() []string {
		t.Helper()
		all, err := s.ScanKeyAudit(c, keyservice.KeyAuditQuery{})
		must(t, err)
		var ids []string
		for _, r := range all {
			ids = append(ids, r.RequestID)
		}
		return ids
	}
	prune := func(before time.Time, batch int, dryRun bool, want int64) {
		t.Helper()
		n, err := s.PruneKeyAudit(c, before, batch, dryRun)
		must(t, err)
		if n != want {
			t.Fatalf("prune before %s (batch %d, dry run %v): %d records, want %d", before.Sub(base), batch, dryRun, n, want)
		}
	}

	prune(base.Add(10*time.Second), 4, true, 10)
	if got := left(); len(got) != 30 {
		t.Fatalf("a dry run removed records: %d left", len(got))
	}
	// req-10, written at the cut-off itself, is not older: it stays.
	prune(base.Add(10*time.Second), 4, false, 10)
	if got := left(); len(got) != 20 || got[0] != "req-10" {
		t.Fatalf("after pruning 10 s: %v, want req-10 to req-29", got)
	}
	prune(base.Add(10*time.Second), 4, false, 0) // nothing older is left

	// A batch retried after an outage: an old record behind younger ones.
	must(t, s.AppendKeyAudit(c, []keyservice.KeyAuditRecord{record(99, base.Add(5*time.Second))}))
	prune(base.Add(15*time.Second), 0, false, 5)
	if got := left(); len(got) != 16 || got[0] != "req-15" || got[15] != "req-99" {
		t.Fatalf("after pruning 15 s: %v, want req-15 to req-29 and the late req-99", got)
	}
	prune(base.Add(time.Hour), 7, false, 16)
	if got := left(); len(got) != 0 {
		t.Fatalf("after pruning everything: %v left", got)
	}
	prune(base.Add(time.Hour), 7, false, 0) // an empty table
}
