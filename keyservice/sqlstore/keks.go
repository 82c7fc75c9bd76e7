package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"opendev.org/x/arca/keyservice"
)

const kekColumns = "project_id, master_key_id, wrapped_kek, created, updated"

func scanKEK(row interface{ Scan(...any) error }) (keyservice.ProjectKEK, error) {
	var k keyservice.ProjectKEK
	var created, updated dbTime
	err := row.Scan(&k.ProjectID, &k.MasterKeyID, &k.WrappedKEK, &created, &updated)
	k.Created, k.Updated = created.T, updated.T
	return k, err
}

// GetProjectKEK returns the project's sealed KEK.
func (s *Store) GetProjectKEK(ctx context.Context, projectID string) (keyservice.ProjectKEK, error) {
	k, err := scanKEK(s.db.QueryRowContext(ctx, "SELECT "+kekColumns+" FROM project_keks WHERE project_id = ?", projectID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return keyservice.ProjectKEK{}, fmt.Errorf("project %s has no KEK: %w", projectID, keyservice.ErrNotFound)
	case err != nil:
		return keyservice.ProjectKEK{}, fmt.Errorf("reading KEK of project %s: %w", projectID, err)
	}
	return k, nil
}

// CreateProjectKEK inserts a KEK; ErrConflict if the project has one.
func (s *Store) CreateProjectKEK(ctx context.Context, kek keyservice.ProjectKEK) error {
	created, updated := kek.Created, kek.Updated
	if created.IsZero() {
		created = now()
	}
	if updated.IsZero() {
		updated = created
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO project_keks ("+kekColumns+") VALUES (?, ?, ?, ?, ?)",
		kek.ProjectID, kek.MasterKeyID, kek.WrappedKEK, s.tv(created), s.tv(updated))
	if err != nil {
		if isDuplicate(err) || isDeadlock(err) {
			return fmt.Errorf("project %s already has a KEK: %w", kek.ProjectID, keyservice.ErrConflict)
		}
		return classify(err, "creating KEK of project %s", kek.ProjectID)
	}
	return nil
}

// ReplaceProjectKEK swaps the sealed KEK if it is still sealed by
// oldMasterKeyID.
func (s *Store) ReplaceProjectKEK(ctx context.Context, kek keyservice.ProjectKEK, oldMasterKeyID string) error {
	updated := kek.Updated
	if updated.IsZero() {
		updated = now()
	}
	res, err := s.db.ExecContext(ctx,
		"UPDATE project_keks SET master_key_id = ?, wrapped_kek = ?, updated = ? WHERE project_id = ? AND master_key_id = ?",
		kek.MasterKeyID, kek.WrappedKEK, s.tv(updated), kek.ProjectID, oldMasterKeyID)
	if err != nil {
		return classify(err, "replacing KEK of project %s", kek.ProjectID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("replacing KEK of project %s: %w", kek.ProjectID, err)
	} else if n > 0 {
		return nil
	}
	cur, err := s.GetProjectKEK(ctx, kek.ProjectID)
	if err != nil {
		return err
	}
	if cur.MasterKeyID == oldMasterKeyID && cur.MasterKeyID == kek.MasterKeyID {
		// Matched but nothing changed (a driver counting changed rows).
		return nil
	}
	return fmt.Errorf("KEK of project %s is sealed by %q, not %q: %w", kek.ProjectID, cur.MasterKeyID, oldMasterKeyID, keyservice.ErrConflict)
}

// ListProjectKEKs returns up to limit KEKs with ProjectID > after, in
// ProjectID order. A limit <= 0 means 1000.
func (s *Store) ListProjectKEKs(ctx context.Context, after string, limit int) ([]keyservice.ProjectKEK, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+kekColumns+" FROM project_keks WHERE project_id > ? ORDER BY project_id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing KEKs: %w", err)
	}
	defer rows.Close()
	var out []keyservice.ProjectKEK
	for rows.Next() {
		k, err := scanKEK(rows)
		if err != nil {
			return nil, fmt.Errorf("listing KEKs: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing KEKs: %w", err)
	}
	return out, nil
}
