package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"

	"opendev.org/x/arca/keyservice"
)

// Project keys. The ACTIVE key of a project carries the project id in
// active_project_id, which has a unique index: a second active key cannot
// exist, whatever the number of processes racing. Other keys hold NULL
// there (any number of NULLs is allowed by both databases).

const projectKeyColumns = "id, project_id, algorithm, bit_length, status, creator_id, material, created, deactivated, destroyed"

func scanProjectKey(row interface{ Scan(...any) error }) (*keyservice.ProjectKey, error) {
	var k keyservice.ProjectKey
	var created, deactivated, destroyed dbTime
	if err := row.Scan(&k.ID, &k.ProjectID, &k.Algorithm, &k.BitLength, &k.Status, &k.CreatorID, &k.Material,
		&created, &deactivated, &destroyed); err != nil {
		return nil, err
	}
	k.Created, k.Deactivated, k.Destroyed = created.T, deactivated.ptr(), destroyed.ptr()
	return &k, nil
}

// insertProjectKey inserts k as its project's active key.
func (s *Store) insertProjectKey(ctx context.Context, q execer, k *keyservice.ProjectKey) error {
	_, err := q.ExecContext(ctx, `INSERT INTO project_keys (id, project_id, active_project_id, algorithm, bit_length, status, creator_id, material, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.ProjectID, k.ProjectID, k.Algorithm, k.BitLength, keyservice.ProjectKeyActive, k.CreatorID, k.Material, s.tv(k.Created))
	switch {
	case isDuplicate(err) || isDeadlock(err):
		return fmt.Errorf("project %s already has an active key: %w", k.ProjectID, keyservice.ErrConflict)
	case err != nil:
		return classify(err, "inserting project key")
	}
	return nil
}

// CreateProjectKey inserts k as its project's ACTIVE key.
func (s *Store) CreateProjectKey(ctx context.Context, k *keyservice.ProjectKey) error {
	return s.insertProjectKey(ctx, s.db, k)
}

// GetActiveProjectKey returns the project's ACTIVE key.
func (s *Store) GetActiveProjectKey(ctx context.Context, projectID string) (*keyservice.ProjectKey, error) {
	k, err := scanProjectKey(s.db.QueryRowContext(ctx, "SELECT "+projectKeyColumns+" FROM project_keys WHERE active_project_id = ?", projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("active key of project %s: %w", projectID, keyservice.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading active project key: %w", err)
	}
	return k, nil
}

// GetProjectKey returns a key by id.
func (s *Store) GetProjectKey(ctx context.Context, id string) (*keyservice.ProjectKey, error) {
	k, err := scanProjectKey(s.queryRowHot(ctx, "SELECT "+projectKeyColumns+" FROM project_keys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project key %s: %w", id, keyservice.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading project key: %w", err)
	}
	return k, nil
}

// ListProjectKeys returns a page of a project's keys, newest first.
func (s *Store) ListProjectKeys(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.ProjectKey, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM project_keys WHERE project_id = ?", projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting project keys: %w", err)
	}
	if limit <= 0 || total == 0 {
		return []*keyservice.ProjectKey{}, total, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+projectKeyColumns+` FROM project_keys WHERE project_id = ?
		ORDER BY created DESC, id DESC LIMIT ? OFFSET ?`, projectID, limit, max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("listing project keys: %w", err)
	}
	defer rows.Close()
	list := []*keyservice.ProjectKey{}
	for rows.Next() {
		k, err := scanProjectKey(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing project keys: %w", err)
		}
		list = append(list, k)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing project keys: %w", err)
	}
	return list, total, nil
}

// RotateProjectKey deactivates oldID and inserts next as the active key, in
// one transaction: the conditional update takes the old key out of the
// unique slot only if it still holds it, so two rotations from the same
// old key cannot both succeed.
func (s *Store) RotateProjectKey(ctx context.Context, oldID string, next *keyservice.ProjectKey) error {
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE project_keys SET status = ?, active_project_id = NULL, deactivated = ?
			WHERE id = ? AND active_project_id = ?`,
			keyservice.ProjectKeyDeactivated, s.tv(next.Created), oldID, next.ProjectID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("key %s is no longer project %s's active key: %w", oldID, next.ProjectID, keyservice.ErrConflict)
		}
		return s.insertProjectKey(ctx, tx, next)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyservice.ErrConflict):
		return err
	case isDeadlock(err) || isBusy(err):
		return fmt.Errorf("rotating project key: %w: %w", keyservice.ErrConflict, err)
	}
	return classify(err, "rotating project key")
}

// DestroyProjectKey wipes a DEACTIVATED key's material and marks it
// DESTROYED. The conditions are in the UPDATE itself, not checked before
// it: a key that is (or becomes, by a racing request) ACTIVE, or that a
// racing rotation deactivated a moment ago, is never matched.
func (s *Store) DestroyProjectKey(ctx context.Context, id string, force bool, deactivatedBy, now time.Time) error {
	q := `UPDATE project_keys SET status = ?, material = NULL, destroyed = ?
		WHERE id = ? AND status = ? AND active_project_id IS NULL`
	args := []any{keyservice.ProjectKeyDestroyed, s.tv(now), id, keyservice.ProjectKeyDeactivated}
	if !force {
		// A NULL deactivated time never satisfies it: fail closed.
		q += " AND deactivated IS NOT NULL AND deactivated <= ?"
		args = append(args, s.tv(deactivatedBy))
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return classify(err, "destroying project key")
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("destroying project key: %w", err)
	} else if n == 1 {
		return nil
	}
	var status string
	err = s.db.QueryRowContext(ctx, "SELECT status FROM project_keys WHERE id = ?", id).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("project key %s: %w", id, keyservice.ErrNotFound)
	case err != nil:
		return fmt.Errorf("destroying project key: %w", err)
	case status == keyservice.ProjectKeyDestroyed:
		return fmt.Errorf("project key %s: %w", id, keyservice.ErrGone)
	case status == keyservice.ProjectKeyActive:
		return fmt.Errorf("project key %s is its project's active key: %w", id, keyservice.ErrConflict)
	}
	return fmt.Errorf("project key %s was deactivated after %s: %w", id, norm(deactivatedBy).Format(time.RFC3339Nano), keyservice.ErrConflict)
}

// isBusy reports a write that lost a race for the database lock (SQLite
// SQLITE_BUSY after busy_timeout) or a MySQL lock wait timeout: retryable.
func isBusy(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlLockWaitTimeout
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

const (
	mysqlLockWaitTimeout = 1205
	sqliteBusy           = 5
)
