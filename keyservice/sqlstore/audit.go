package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

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
				args = append(args, s.tv(r.Time), clip(r.RequestID, 64), clip(r.Action, 16), clip(r.Outcome, 16), clip(r.ProjectID, 255),
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

// clip makes a value what a column holds: UTF-8 (invalid bytes become
// U+FFFD), bounded to the column's length on a character boundary.
func clip(v string, n int) string {
	// MariaDB refuses a utf8mb4 column's value that is not UTF-8 (error
	// 1366), and with it the whole batch of records: one client-sent key
	// id with a stray byte would hold up every record behind it, and once
	// the queue is full every audited read is refused.
	v = strings.ToValidUTF8(v, "\uFFFD")
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

// defaultPruneBatch is how many audit records one DELETE removes at most:
// small enough that each statement holds its locks briefly and writes a
// bounded undo log while arca-api goes on appending.
const defaultPruneBatch = 10000

// PruneKeyAudit removes, or with dryRun counts, the records written
// before before. It walks the table by primary key, which follows write
// order, a batch at a time: each round reads the next batch of ids and
// times and deletes the leading run of older records by id range. It never
// scans for old records beyond the first younger one, so a table of a
// billion rows costs the old rows' pages, not a full scan (there is no
// index on the time, and none is wanted: every audited read would pay for
// it). A record older than before that was written after a younger one
// (a batch retried after a database outage) stays until a later prune's
// cut-off passes the records in front of it.
func (s *Store) PruneKeyAudit(ctx context.Context, before time.Time, batch int, dryRun bool) (int64, error) {
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	cut := norm(before)
	var total int64
	after := int64(0)
	for {
		first, last, n, done, err := s.oldAuditRun(ctx, after, cut, batch)
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		if dryRun {
			total += int64(n)
		} else {
			res, err := s.db.ExecContext(ctx, "DELETE FROM key_audit WHERE id >= ? AND id <= ? AND created < ?", first, last, s.tv(cut))
			if err != nil {
				return total, classify(err, "removing old key audit records")
			}
			removed, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("removing old key audit records: %w", err)
			}
			total += removed
		}
		if done {
			return total, nil
		}
		after = last
	}
}

// oldAuditRun reads up to batch records after id after, in id order, and
// returns the ids that bound the leading run of records older than cut,
// its length, and whether the old records end there (a younger record, or
// the end of the table).
func (s *Store) oldAuditRun(ctx context.Context, after int64, cut time.Time, batch int) (first, last int64, n int, done bool, err error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, created FROM key_audit WHERE id > ? ORDER BY id LIMIT ?", after, batch)
	if err != nil {
		return 0, 0, 0, false, classify(err, "reading key audit records")
	}
	defer rows.Close()
	seen, younger := 0, false
	for rows.Next() {
		var id int64
		var at dbTime
		if err := rows.Scan(&id, &at); err != nil {
			return 0, 0, 0, false, fmt.Errorf("reading key audit records: %w", err)
		}
		seen++
		if !at.T.Before(cut) {
			younger = true
			break
		}
		if n == 0 {
			first = id
		}
		last, n = id, n+1
	}
	if err := rows.Err(); err != nil {
		return 0, 0, 0, false, classify(err, "reading key audit records")
	}
	// A short batch is the end of the table.
	return first, last, n, younger || seen < batch, nil
}
