package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"opendev.org/x/arca/keyservice"
)

// Containers. A container's secret references live in container_secrets
// and its consumers in container_consumers; both cascade from the
// container, and references also cascade from the secret they name.

const containerColumns = "id, project_id, creator_id, name, type, status, created, updated"

func scanContainer(row interface{ Scan(...any) error }) (*keyservice.Container, error) {
	var c keyservice.Container
	var name sql.NullString
	var created, updated dbTime
	if err := row.Scan(&c.ID, &c.ProjectID, &c.CreatorID, &name, &c.Type, &c.Status, &created, &updated); err != nil {
		return nil, err
	}
	c.Name, c.Created, c.Updated = name.String, created.T, updated.T
	c.Secrets, c.Consumers = []keyservice.ContainerSecret{}, []keyservice.ContainerConsumer{}
	return &c, nil
}

// CreateContainer inserts a container and its references in one
// transaction, normalising its times like CreateSecret.
func (s *Store) CreateContainer(ctx context.Context, c *keyservice.Container) error {
	normContainerTimes(c)
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO containers ("+containerColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			s.containerArgs(c)...); err != nil {
			return err
		}
		return insertContainerSecrets(ctx, tx, c)
	})
	return containerInsertError(err, c.ID)
}

// CreateContainerGuarded inserts c, as CreateContainer, only if the quota
// guard g lets it (guardedInsert); it reports whether it did.
func (s *Store) CreateContainerGuarded(ctx context.Context, c *keyservice.Container, g keyservice.QuotaGuard) (bool, error) {
	normContainerTimes(c)
	done, err := s.guardedInsert(ctx, "containers", containerColumns, s.containerArgs(c), g, func(tx *txn) error {
		return insertContainerSecrets(ctx, tx, c)
	})
	return done, containerInsertError(err, c.ID)
}

func normContainerTimes(c *keyservice.Container) {
	if c.Created.IsZero() {
		c.Created = now()
	}
	if c.Updated.IsZero() {
		c.Updated = c.Created
	}
	c.Created, c.Updated = norm(c.Created), norm(c.Updated)
}

// containerArgs are the values of containerColumns for c.
func (s *Store) containerArgs(c *keyservice.Container) []any {
	return []any{c.ID, c.ProjectID, c.CreatorID, nullString(c.Name), c.Type, c.Status, s.tv(c.Created), s.tv(c.Updated)}
}

func insertContainerSecrets(ctx context.Context, tx *txn, c *keyservice.Container) error {
	for _, ref := range c.Secrets {
		if _, err := tx.ExecContext(ctx, "INSERT INTO container_secrets (container_id, name, secret_id) VALUES (?, ?, ?)",
			c.ID, ref.Name, ref.SecretID); err != nil {
			return err
		}
	}
	return nil
}

func containerInsertError(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case isMissingParent(err):
		return fmt.Errorf("container %s references a missing secret: %w", id, keyservice.ErrNotFound)
	case isDuplicate(err):
		return fmt.Errorf("container %s: duplicate id or reference: %w", id, keyservice.ErrConflict)
	}
	return classify(err, "creating container %s", id)
}

// GetContainer returns a container with its references and consumers.
func (s *Store) GetContainer(ctx context.Context, id string) (*keyservice.Container, error) {
	c, err := scanContainer(s.db.QueryRowContext(ctx, "SELECT "+containerColumns+" FROM containers WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("container %s: %w", id, keyservice.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading container %s: %w", id, err)
	}
	if err := s.loadContainerChildren(ctx, []*keyservice.Container{c}); err != nil {
		return nil, err
	}
	return c, nil
}

// loadContainerChildren fills the references and consumers of a page of
// containers with two queries.
func (s *Store) loadContainerChildren(ctx context.Context, list []*keyservice.Container) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*keyservice.Container, len(list))
	args := make([]any, 0, len(list))
	for _, c := range list {
		byID[c.ID] = c
		args = append(args, c.ID)
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(list)), ", ") + ")"
	// in holds only placeholders; every id is an argument.
	rows, err := s.db.QueryContext(ctx, "SELECT container_id, name, secret_id FROM container_secrets WHERE container_id IN "+in+ //nolint:gosec // G202: see above
		" ORDER BY container_id, name, secret_id", args...)
	if err != nil {
		return fmt.Errorf("reading container references: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid string
		var ref keyservice.ContainerSecret
		if err := rows.Scan(&cid, &ref.Name, &ref.SecretID); err != nil {
			return fmt.Errorf("reading container references: %w", err)
		}
		if c := byID[cid]; c != nil {
			c.Secrets = append(c.Secrets, ref)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading container references: %w", err)
	}
	consumers, err := s.scanContainerConsumers(ctx, s.db, "SELECT "+containerConsumerColumns+" FROM container_consumers WHERE container_id IN "+in+ //nolint:gosec // G202: see above
		" ORDER BY created, name, url", args...)
	if err != nil {
		return err
	}
	for _, cc := range consumers {
		if c := byID[cc.ContainerID]; c != nil {
			c.Consumers = append(c.Consumers, cc)
		}
	}
	return nil
}

// ListContainers returns one page of a project's containers, oldest first.
// A Limit <= 0 returns only the count.
func (s *Store) ListContainers(ctx context.Context, f keyservice.ContainerFilter) ([]*keyservice.Container, int, error) {
	where := []string{"project_id = ?"}
	args := []any{f.ProjectID}
	if f.Name != "" {
		where = append(where, "name LIKE ?"+s.likeEsc)
		args = append(args, f.Name)
	}
	if f.Type != "" {
		where = append(where, "type = ?")
		args = append(args, f.Type)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM containers WHERE "+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting containers of project %s: %w", f.ProjectID, err)
	}
	offset := max(f.Offset, 0)
	if f.Limit <= 0 || offset >= total {
		return []*keyservice.Container{}, total, nil
	}
	// cond holds only constant fragments; every value is an argument.
	rows, err := s.db.QueryContext(ctx, "SELECT "+containerColumns+" FROM containers WHERE "+cond+ //nolint:gosec // G202: see above
		" ORDER BY created, id LIMIT ? OFFSET ?", append(args, f.Limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing containers of project %s: %w", f.ProjectID, err)
	}
	defer rows.Close()
	out := make([]*keyservice.Container, 0, min(f.Limit, total-offset))
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing containers of project %s: %w", f.ProjectID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing containers of project %s: %w", f.ProjectID, err)
	}
	rows.Close()
	if err := s.loadContainerChildren(ctx, out); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// DeleteContainer removes a container and what hangs off it.
func (s *Store) DeleteContainer(ctx context.Context, id string) error {
	var n int64
	err := s.inTx(ctx, func(tx *txn) error {
		if !s.mysql {
			// As in DeleteSecret: do not rely on SQLite's foreign_keys pragma.
			for _, table := range containerChildTables {
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE container_id = ?", id); err != nil {
					return err
				}
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM containers WHERE id = ?", id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting container %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("container %s: %w", id, keyservice.ErrNotFound)
	}
	return nil
}

// containerChildTables hang off a container by container_id.
var containerChildTables = []string{"container_secrets", "container_consumers", "container_acl_users", "container_acls"}

// touchContainer sets a container's updated time; ErrNotFound if absent.
func (s *Store) touchContainer(ctx context.Context, ex execer, id string, updated time.Time) error {
	if updated.IsZero() {
		updated = now()
	}
	res, err := ex.ExecContext(ctx, "UPDATE containers SET updated = ? WHERE id = ?", s.tv(updated), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		// MySQL counts changed rows: an unchanged time is not a miss.
		ok, err := s.exists(ctx, "containers", "id = ?", id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("container %s: %w", id, keyservice.ErrNotFound)
		}
	}
	return nil
}

// AddContainerSecret adds one reference to a container.
func (s *Store) AddContainerSecret(ctx context.Context, containerID string, ref keyservice.ContainerSecret, updated time.Time) error {
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO container_secrets (container_id, name, secret_id) VALUES (?, ?, ?)",
			containerID, ref.Name, ref.SecretID); err != nil {
			return err
		}
		return s.touchContainer(ctx, tx, containerID, updated)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyservice.ErrNotFound):
		return err
	case isDuplicate(err) || isDeadlock(err):
		return fmt.Errorf("container %s already references secret %s as %q: %w", containerID, ref.SecretID, ref.Name, keyservice.ErrConflict)
	case isMissingParent(err):
		return fmt.Errorf("container %s or secret %s: %w", containerID, ref.SecretID, keyservice.ErrNotFound)
	}
	return classify(err, "adding a secret to container %s", containerID)
}

// RemoveContainerSecret removes one reference from a container.
func (s *Store) RemoveContainerSecret(ctx context.Context, containerID string, ref keyservice.ContainerSecret, updated time.Time) error {
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM container_secrets WHERE container_id = ? AND name = ? AND secret_id = ?",
			containerID, ref.Name, ref.SecretID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("container %s has no secret %s named %q: %w", containerID, ref.SecretID, ref.Name, keyservice.ErrNotFound)
		}
		return s.touchContainer(ctx, tx, containerID, updated)
	})
	if err != nil && !errors.Is(err, keyservice.ErrNotFound) {
		return fmt.Errorf("removing a secret from container %s: %w", containerID, err)
	}
	return err
}
