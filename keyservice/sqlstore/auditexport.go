package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"opendev.org/x/arca/keyservice"
)

// ScanKeyAudit reads key_audit for export (keyservice/auditexport.go):
// records after q.AfterID, optionally of one project and since a time,
// oldest first. The conditions are fixed strings; values are bound.
func (s *store) ScanKeyAudit(ctx context.Context, q keyservice.KeyAuditQuery) ([]keyservice.KeyAuditRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	query := "SELECT id, " + auditColumns + ", event_id FROM key_audit WHERE id > ?"
	args := []any{q.AfterID}
	if q.ProjectID != "" {
		query += " AND project_id = ?"
		args = append(args, q.ProjectID)
	}
	if !q.Since.IsZero() {
		query += " AND created >= ?"
		args = append(args, s.tv(q.Since))
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(err, "reading key audit records")
	}
	defer rows.Close()
	out := []keyservice.KeyAuditRecord{}
	for rows.Next() {
		var r keyservice.KeyAuditRecord
		var at dbTime
		var service int
		var eventID sql.NullString
		if err := rows.Scan(&r.ID, &at, &r.RequestID, &r.Action, &r.Outcome, &r.ProjectID, &r.KeyID, &r.UserID,
			&r.UserProjectID, &service, &r.Roles, &r.Detail, &eventID); err != nil {
			return nil, fmt.Errorf("reading key audit records: %w", err)
		}
		r.Time, r.Service, r.EventID = at.T, service != 0, eventID.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "reading key audit records")
	}
	return out, nil
}
