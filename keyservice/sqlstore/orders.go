package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"opendev.org/x/arca/keyservice"
)

const orderColumns = "id, project_id, creator_id, type, status, meta, secret_id, container_id, " +
	"error_status_code, error_reason, created, updated"

func scanOrder(row interface{ Scan(...any) error }) (*keyservice.Order, error) {
	var o keyservice.Order
	var meta string
	var secretID, containerID, code, reason sql.NullString
	var created, updated dbTime
	if err := row.Scan(&o.ID, &o.ProjectID, &o.CreatorID, &o.Type, &o.Status, &meta, &secretID, &containerID,
		&code, &reason, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(meta), &o.Meta); err != nil {
		return nil, fmt.Errorf("order %s has malformed meta: %w", o.ID, err)
	}
	o.SecretID, o.ContainerID, o.ErrorStatusCode, o.ErrorReason = secretID.String, containerID.String, code.String, reason.String
	o.Created, o.Updated = created.T, updated.T
	return &o, nil
}

// CreateOrder inserts an order, normalising its times like CreateSecret.
func (s *Store) CreateOrder(ctx context.Context, o *keyservice.Order) error {
	args, err := s.orderArgs(o)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO orders ("+orderColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
	return orderInsertError(err, o.ID)
}

// CreateOrderGuarded inserts o, as CreateOrder, only if the quota guard g
// lets it (guardedInsert); it reports whether it did.
func (s *Store) CreateOrderGuarded(ctx context.Context, o *keyservice.Order, g keyservice.QuotaGuard) (bool, error) {
	args, err := s.orderArgs(o)
	if err != nil {
		return false, err
	}
	done, err := s.guardedInsert(ctx, "orders", orderColumns, args, g, nil)
	return done, orderInsertError(err, o.ID)
}

// orderArgs normalises o's times and returns the values of orderColumns.
func (s *Store) orderArgs(o *keyservice.Order) ([]any, error) {
	if o.Created.IsZero() {
		o.Created = now()
	}
	if o.Updated.IsZero() {
		o.Updated = o.Created
	}
	o.Created, o.Updated = norm(o.Created), norm(o.Updated)
	meta, err := json.Marshal(o.Meta)
	if err != nil {
		return nil, fmt.Errorf("creating order %s: %w", o.ID, err)
	}
	return []any{o.ID, o.ProjectID, o.CreatorID, o.Type, o.Status, string(meta), nullString(o.SecretID), nullString(o.ContainerID),
		nullString(o.ErrorStatusCode), nullString(o.ErrorReason), s.tv(o.Created), s.tv(o.Updated)}, nil
}

func orderInsertError(err error, id string) error {
	if err == nil {
		return nil
	}
	if isDuplicate(err) {
		return fmt.Errorf("order %s exists: %w", id, keyservice.ErrConflict)
	}
	return classify(err, "creating order %s", id)
}

// UpdateOrder stores an order's status, result and error fields (and its
// Updated time, normalised; zero means now).
func (s *Store) UpdateOrder(ctx context.Context, o *keyservice.Order) error {
	if o.Updated.IsZero() {
		o.Updated = now()
	}
	o.Updated = norm(o.Updated)
	res, err := s.db.ExecContext(ctx,
		"UPDATE orders SET status = ?, secret_id = ?, container_id = ?, error_status_code = ?, error_reason = ?, updated = ? WHERE id = ?",
		o.Status, nullString(o.SecretID), nullString(o.ContainerID), nullString(o.ErrorStatusCode), nullString(o.ErrorReason),
		s.tv(o.Updated), o.ID)
	if err != nil {
		return classify(err, "updating order %s", o.ID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("updating order %s: %w", o.ID, err)
	} else if n > 0 {
		return nil
	}
	ok, err := s.exists(ctx, "orders", "id = ?", o.ID)
	switch {
	case err != nil:
		return fmt.Errorf("updating order %s: %w", o.ID, err)
	case ok:
		return nil
	}
	return fmt.Errorf("order %s: %w", o.ID, keyservice.ErrNotFound)
}

// GetOrder returns an order by id, whatever its project.
func (s *Store) GetOrder(ctx context.Context, id string) (*keyservice.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("order %s: %w", id, keyservice.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading order %s: %w", id, err)
	}
	return o, nil
}

// ListOrders returns one page of a project's orders, oldest first, and the
// project's total. A limit <= 0 returns only the count.
func (s *Store) ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.Order, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE project_id = ?", projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting orders of project %s: %w", projectID, err)
	}
	offset = max(offset, 0)
	if limit <= 0 || offset >= total {
		return []*keyservice.Order{}, total, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE project_id = ? ORDER BY created, id LIMIT ? OFFSET ?",
		projectID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing orders of project %s: %w", projectID, err)
	}
	defer rows.Close()
	out := make([]*keyservice.Order, 0, min(limit, total-offset))
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing orders of project %s: %w", projectID, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing orders of project %s: %w", projectID, err)
	}
	return out, total, nil
}

// DeleteOrder removes an order, not the secret it produced.
func (s *Store) DeleteOrder(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM orders WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("deleting order %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deleting order %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("order %s: %w", id, keyservice.ErrNotFound)
	}
	return nil
}
