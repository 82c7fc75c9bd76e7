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
