package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"opendev.org/x/arca/keyservice"
)

// ScanKeyAudit reads key_audit for export (keyservice/auditexport.go):
// records after q.AfterID, optionally of one project and since a time,
// oldest first. The conditions are fixed strings; values are bound.
func (s *Store) ScanKeyAudit(ctx context.Context, q keyservice.KeyAuditQuery) ([]keyservice.KeyAuditRecord, error) {
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

// auditColumns are key_audit's columns after its id.
const auditColumns = "created, request_id, action, outcome, project_id, key_id, user_id, user_project_id, is_service, roles, detail"

// AppendKeyAudit writes audit records with multi-row inserts: one
// statement for up to 250 records (atomic by itself), in one transaction
// beyond. A record whose EventID is already stored is skipped, so writing a
// batch again after a commit of unknown outcome (the connection cut during
// COMMIT) records each event once.
func (s *Store) AppendKeyAudit(ctx context.Context, recs []keyservice.KeyAuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	const perStatement = 250
	// Only a duplicate event_id is ignored; every other error still fails
	// the statement (unlike INSERT IGNORE, which would turn them into
	// warnings).
	onDuplicate := " ON CONFLICT (event_id) DO NOTHING"
	if s.mysql {
		onDuplicate = " ON DUPLICATE KEY UPDATE event_id = event_id"
	}
	write := func(ex execer) error {
		for start := 0; start < len(recs); start += perStatement {
			chunk := recs[start:min(start+perStatement, len(recs))]
			var sb strings.Builder
			sb.WriteString("INSERT INTO key_audit (" + auditColumns + ", event_id) VALUES ")
			args := make([]any, 0, len(chunk)*12)
			for i, r := range chunk {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				service := 0
				if r.Service {
					service = 1
				}
				var eventID any // NULL: no id, no deduplication
				if r.EventID != "" {
					eventID = clip(r.EventID, 36)
				}
				args = append(args, s.tv(r.Time), clip(r.RequestID, 64), r.Action, r.Outcome, clip(r.ProjectID, 255),
					clip(r.KeyID, 64), clip(r.UserID, 255), clip(r.UserProjectID, 255), service, clip(r.Roles, 255), clip(r.Detail, 255),
					eventID)
			}
			sb.WriteString(onDuplicate)
			if _, err := ex.ExecContext(ctx, sb.String(), args...); err != nil {
				return classify(err, "writing key audit records")
			}
		}
		return nil
	}
	if len(recs) <= perStatement {
		// One statement is atomic by itself: BEGIN and COMMIT would only
		// add two round trips to every batch.
		return write(s.db)
	}
	return s.inTx(ctx, func(tx *txn) error { return write(tx) })
}

// clip bounds a value to a column's length, on a UTF-8 boundary.
func clip(v string, n int) string {
	if len(v) <= n {
		return v
	}
	for n > 0 && v[n]&0xC0 == 0x80 {
		n--
	}
	return v[:n]
}

// ListKeyAudit returns audit records of a project, oldest first.
func (s *Store) ListKeyAudit(ctx context.Context, f keyservice.KeyAuditFilter) ([]keyservice.KeyAuditRecord, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := "SELECT id, " + auditColumns + " FROM key_audit WHERE project_id = ? AND id > ?"
	args := []any{f.ProjectID, f.AfterID}
	if f.KeyID != "" {
		q += " AND key_id = ?"
		args = append(args, f.KeyID)
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing key audit records: %w", err)
	}
	defer rows.Close()
	var out []keyservice.KeyAuditRecord
	for rows.Next() {
		var r keyservice.KeyAuditRecord
		var at dbTime
		var service int
		if err := rows.Scan(&r.ID, &at, &r.RequestID, &r.Action, &r.Outcome, &r.ProjectID, &r.KeyID, &r.UserID,
			&r.UserProjectID, &service, &r.Roles, &r.Detail); err != nil {
			return nil, fmt.Errorf("listing key audit records: %w", err)
		}
		r.Time, r.Service = at.T, service != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing key audit records: %w", err)
	}
	return out, nil
}
