package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"opendev.org/x/arca/keyservice"
)

const kekColumns = "project_id, secret_store, master_key_id, wrapped_kek, created, updated"

func scanKEK(row interface{ Scan(...any) error }) (keyservice.ProjectKEK, error) {
	var k keyservice.ProjectKEK
	var created, updated dbTime
	err := row.Scan(&k.ProjectID, &k.SecretStore, &k.MasterKeyID, &k.WrappedKEK, &created, &updated)
	k.Created, k.Updated = created.T, updated.T
	return k, err
}

// GetProjectKEK returns the project's sealed KEK in a store.
func (s *Store) GetProjectKEK(ctx context.Context, projectID, store string) (keyservice.ProjectKEK, error) {
	k, err := scanKEK(s.db.QueryRowContext(ctx, "SELECT "+kekColumns+" FROM project_keks WHERE project_id = ? AND secret_store = ?", projectID, store))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return keyservice.ProjectKEK{}, fmt.Errorf("project %s has no KEK in store %q: %w", projectID, store, keyservice.ErrNotFound)
	case err != nil:
		return keyservice.ProjectKEK{}, fmt.Errorf("reading KEK of project %s in store %q: %w", projectID, store, err)
	}
	return k, nil
}

// CreateProjectKEK inserts a KEK; ErrConflict if the project has one in
// that store.
func (s *Store) CreateProjectKEK(ctx context.Context, kek keyservice.ProjectKEK) error {
	created, updated := kek.Created, kek.Updated
	if created.IsZero() {
		created = now()
	}
	if updated.IsZero() {
		updated = created
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO project_keks ("+kekColumns+") VALUES (?, ?, ?, ?, ?, ?)",
		kek.ProjectID, kek.SecretStore, kek.MasterKeyID, kek.WrappedKEK, s.tv(created), s.tv(updated))
	if err != nil {
		if isDuplicate(err) || isDeadlock(err) {
			return fmt.Errorf("project %s already has a KEK in store %q: %w", kek.ProjectID, kek.SecretStore, keyservice.ErrConflict)
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
		"UPDATE project_keks SET master_key_id = ?, wrapped_kek = ?, updated = ? WHERE project_id = ? AND secret_store = ? AND master_key_id = ?",
		kek.MasterKeyID, kek.WrappedKEK, s.tv(updated), kek.ProjectID, kek.SecretStore, oldMasterKeyID)
	if err != nil {
		return classify(err, "replacing KEK of project %s", kek.ProjectID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("replacing KEK of project %s: %w", kek.ProjectID, err)
	} else if n > 0 {
		return nil
	}
	cur, err := s.GetProjectKEK(ctx, kek.ProjectID, kek.SecretStore)
	if err != nil {
		return err
	}
	if cur.MasterKeyID == oldMasterKeyID && cur.MasterKeyID == kek.MasterKeyID {
		// Matched but nothing changed (a driver counting changed rows).
		return nil
	}
	return fmt.Errorf("KEK of project %s in store %q is sealed by %q, not %q: %w", kek.ProjectID, kek.SecretStore, cur.MasterKeyID, oldMasterKeyID, keyservice.ErrConflict)
}

// ListProjectKEKs returns up to limit KEKs of a store with ProjectID >
// after, in ProjectID order. A limit <= 0 means 1000.
func (s *Store) ListProjectKEKs(ctx context.Context, store, after string, limit int) ([]keyservice.ProjectKEK, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+kekColumns+" FROM project_keks WHERE secret_store = ? AND project_id > ? ORDER BY project_id LIMIT ?", store, after, limit)
	if err != nil {
		return nil, classify(err, "listing KEKs of store %q", store)
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

// GetPreferredSecretStore returns the store a project prefers.
func (s *Store) GetPreferredSecretStore(ctx context.Context, projectID string) (string, error) {
	var store string
	err := s.db.QueryRowContext(ctx, "SELECT secret_store FROM project_secret_stores WHERE project_id = ?", projectID).Scan(&store)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("project %s has no preferred secret store: %w", projectID, keyservice.ErrNotFound)
	case err != nil:
		return "", classify(err, "reading the preferred secret store of project %s", projectID)
	}
	return store, nil
}

// SetPreferredSecretStore creates or replaces a project's preferred store:
// an update first, an insert when it matched no row, and the update again
// when a concurrent insert won (no lock, no dialect-specific upsert).
func (s *Store) SetPreferredSecretStore(ctx context.Context, projectID, store string, at time.Time) error {
	if at.IsZero() {
		at = now()
	}
	for range 3 {
		res, err := s.db.ExecContext(ctx, "UPDATE project_secret_stores SET secret_store = ?, updated = ? WHERE project_id = ?",
			store, s.tv(at), projectID)
		if err != nil {
			return classify(err, "setting the preferred secret store of project %s", projectID)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("setting the preferred secret store of project %s: %w", projectID, err)
		} else if n > 0 {
			return nil
		}
		_, err = s.db.ExecContext(ctx, "INSERT INTO project_secret_stores (project_id, secret_store, created, updated) VALUES (?, ?, ?, ?)",
			projectID, store, s.tv(at), s.tv(at))
		if err == nil {
			return nil
		}
		if !isDuplicate(err) && !isDeadlock(err) {
			return classify(err, "setting the preferred secret store of project %s", projectID)
		}
	}
	return fmt.Errorf("setting the preferred secret store of project %s: lost three races: %w", projectID, keyservice.ErrConflict)
}

// DeletePreferredSecretStore removes a project's preferred store.
func (s *Store) DeletePreferredSecretStore(ctx context.Context, projectID string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM project_secret_stores WHERE project_id = ?", projectID)
	if err != nil {
		return classify(err, "deleting the preferred secret store of project %s", projectID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deleting the preferred secret store of project %s: %w", projectID, err)
	} else if n == 0 {
		return fmt.Errorf("project %s has no preferred secret store: %w", projectID, keyservice.ErrNotFound)
	}
	return nil
}
