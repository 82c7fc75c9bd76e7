package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"opendev.org/x/arca/keyservice"
)

// Project quotas: one row per project, one nullable column per resource
// (NULL: the configured default applies).

const projectQuotaColumns = "project_id, secrets, orders, containers, consumers, cas, created, updated"

func scanProjectQuotas(row interface{ Scan(...any) error }) (*keyservice.ProjectQuotas, error) {
	var q keyservice.ProjectQuotas
	vals := make([]sql.NullInt64, len(keyservice.QuotaResources))
	var created, updated dbTime
	dest := []any{&q.ProjectID}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	if err := row.Scan(append(dest, &created, &updated)...); err != nil {
		return nil, err
	}
	q.Quotas = keyservice.Quotas{}
	for i, r := range keyservice.QuotaResources {
		if vals[i].Valid {
			q.Quotas[r] = int(vals[i].Int64)
		}
	}
	q.Created, q.Updated = created.T, updated.T
	return &q, nil
}

// GetProjectQuotas returns a project's configured quotas.
func (s *Store) GetProjectQuotas(ctx context.Context, projectID string) (*keyservice.ProjectQuotas, error) {
	q, err := scanProjectQuotas(s.queryRowHot(ctx, "SELECT "+projectQuotaColumns+" FROM project_quotas WHERE project_id = ?", projectID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("quotas of project %s: %w", projectID, keyservice.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading quotas of project %s: %w", projectID, err)
	}
	return q, nil
}

// SetProjectQuotas inserts or replaces a project's quotas; Created is kept
// when the row exists.
func (s *Store) SetProjectQuotas(ctx context.Context, q *keyservice.ProjectQuotas) error {
	if q.Created.IsZero() {
		q.Created = now()
	}
	if q.Updated.IsZero() {
		q.Updated = q.Created
	}
	q.Created, q.Updated = norm(q.Created), norm(q.Updated)
	vals := make([]any, 0, len(keyservice.QuotaResources))
	for _, r := range keyservice.QuotaResources {
		if v, ok := q.Quotas[r]; ok {
			vals = append(vals, v)
		} else {
			vals = append(vals, nil)
		}
	}
	res, err := s.db.ExecContext(ctx, "UPDATE project_quotas SET secrets = ?, orders = ?, containers = ?, consumers = ?, cas = ?, updated = ? WHERE project_id = ?",
		append(vals, s.tv(q.Updated), q.ProjectID)...)
	if err != nil {
		return classify(err, "setting quotas of project %s", q.ProjectID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("setting quotas of project %s: %w", q.ProjectID, err)
	} else if n > 0 {
		return nil
	}
	if ok, err := s.exists(ctx, "project_quotas", "project_id = ?", q.ProjectID); err != nil {
		return fmt.Errorf("setting quotas of project %s: %w", q.ProjectID, err)
	} else if ok {
		return nil // unchanged
	}
	args := append([]any{q.ProjectID}, vals...)
	_, err = s.db.ExecContext(ctx, "INSERT INTO project_quotas ("+projectQuotaColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		append(args, s.tv(q.Created), s.tv(q.Updated))...)
	if isDuplicate(err) || isDeadlock(err) {
		// A concurrent PUT created it: ours is the later write.
		_, err = s.db.ExecContext(ctx, "UPDATE project_quotas SET secrets = ?, orders = ?, containers = ?, consumers = ?, cas = ?, updated = ? WHERE project_id = ?",
			append(vals, s.tv(q.Updated), q.ProjectID)...)
	}
	if err != nil {
		return classify(err, "setting quotas of project %s", q.ProjectID)
	}
	return nil
}

// DeleteProjectQuotas removes a project's quotas.
func (s *Store) DeleteProjectQuotas(ctx context.Context, projectID string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM project_quotas WHERE project_id = ?", projectID)
	if err != nil {
		return fmt.Errorf("deleting quotas of project %s: %w", projectID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deleting quotas of project %s: %w", projectID, err)
	} else if n == 0 {
		return fmt.Errorf("quotas of project %s: %w", projectID, keyservice.ErrNotFound)
	}
	return nil
}

// ListProjectQuotas returns a page of configured project quotas.
func (s *Store) ListProjectQuotas(ctx context.Context, limit, offset int) ([]*keyservice.ProjectQuotas, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM project_quotas").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting project quotas: %w", err)
	}
	offset = max(offset, 0)
	if limit <= 0 || offset >= total {
		return []*keyservice.ProjectQuotas{}, total, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+projectQuotaColumns+" FROM project_quotas ORDER BY project_id LIMIT ? OFFSET ?", limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing project quotas: %w", err)
	}
	defer rows.Close()
	out := []*keyservice.ProjectQuotas{}
	for rows.Next() {
		q, err := scanProjectQuotas(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing project quotas: %w", err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing project quotas: %w", err)
	}
	return out, total, nil
}

// countQueries count a project's resources per quota kind (constants).
var countQueries = map[string]string{
	keyservice.QuotaSecrets:    "SELECT COUNT(*) FROM secrets WHERE project_id = ? AND (expiration IS NULL OR expiration > ?)",
	keyservice.QuotaOrders:     "SELECT COUNT(*) FROM orders WHERE project_id = ?",
	keyservice.QuotaContainers: "SELECT COUNT(*) FROM containers WHERE project_id = ?",
	keyservice.QuotaConsumers: "SELECT (SELECT COUNT(*) FROM container_consumers WHERE project_id = ?) + " +
		"(SELECT COUNT(*) FROM secret_consumers WHERE project_id = ?)",
}

// CountResources counts a project's live resources of one kind. Arca has
// no certificate authorities: QuotaCAs counts zero.
func (s *Store) CountResources(ctx context.Context, projectID, resource string, at time.Time) (int, error) {
	if resource == keyservice.QuotaCAs {
		return 0, nil
	}
	q, ok := countQueries[resource]
	if !ok {
		return 0, fmt.Errorf("counting %q: %w", resource, keyservice.ErrInvalid)
	}
	args := s.countArgs(projectID, resource, at)
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s of project %s: %w", resource, projectID, err)
	}
	return n, nil
}

// countArgs are the arguments of resource's count query (countQueries) for
// a project at a time (zero: now).
func (s *Store) countArgs(projectID, resource string, at time.Time) []any {
	args := []any{projectID}
	switch resource {
	case keyservice.QuotaSecrets:
		if at.IsZero() {
			at = time.Now()
		}
		args = append(args, s.tv(at))
	case keyservice.QuotaConsumers:
		args = append(args, projectID)
	}
	return args
}
