package sqlstore

import (
	"context"
	"fmt"

	"opendev.org/x/arca/keyservice"
)

// Secret consumers: one row per (secret, service, resource type, resource
// id), cascading from the secret.

const secretConsumerColumns = "secret_id, project_id, service, resource_type, resource_id, created, updated"

// PutSecretConsumer registers a consumer, or refreshes it.
func (s *Store) PutSecretConsumer(ctx context.Context, c *keyservice.SecretConsumer) error {
	_, err := s.putSecretConsumer(ctx, c, nil)
	return err
}

// PutSecretConsumerGuarded registers c, as PutSecretConsumer, only if the
// quota guard g lets it (guardedInsert), even when c is registered
// already; it reports whether it did.
func (s *Store) PutSecretConsumerGuarded(ctx context.Context, c *keyservice.SecretConsumer, g keyservice.QuotaGuard) (bool, error) {
	return s.putSecretConsumer(ctx, c, &g)
}

func (s *Store) putSecretConsumer(ctx context.Context, c *keyservice.SecretConsumer, g *keyservice.QuotaGuard) (bool, error) {
	if c.Created.IsZero() {
		c.Created = now()
	}
	if c.Updated.IsZero() {
		c.Updated = c.Created
	}
	c.Created, c.Updated = norm(c.Created), norm(c.Updated)
	args := []any{c.SecretID, c.ProjectID, c.Service, c.ResourceType, c.ResourceID, s.tv(c.Created), s.tv(c.Updated)}
	done := true
	var err error
	if g == nil {
		_, err = s.db.ExecContext(ctx, "INSERT INTO secret_consumers ("+secretConsumerColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)", args...)
	} else {
		done, err = s.guardedInsert(ctx, "secret_consumers", secretConsumerColumns, args, *g, nil)
	}
	switch {
	case err == nil:
		return done, nil
	case isMissingParent(err):
		return false, fmt.Errorf("secret %s: %w", c.SecretID, keyservice.ErrNotFound)
	case isDuplicate(err) || isDeadlock(err):
		_, err = s.db.ExecContext(ctx, "UPDATE secret_consumers SET updated = ? WHERE secret_id = ? AND service = ? AND resource_type = ? AND resource_id = ?",
			s.tv(c.Updated), c.SecretID, c.Service, c.ResourceType, c.ResourceID)
		if err == nil {
			return true, nil
		}
	}
	return false, classify(err, "registering a consumer of secret %s", c.SecretID)
}

// RemoveSecretConsumer removes a consumer.
func (s *Store) RemoveSecretConsumer(ctx context.Context, secretID, service, resourceType, resourceID string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM secret_consumers WHERE secret_id = ? AND service = ? AND resource_type = ? AND resource_id = ?",
		secretID, service, resourceType, resourceID)
	if err != nil {
		return fmt.Errorf("removing a consumer of secret %s: %w", secretID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("removing a consumer of secret %s: %w", secretID, err)
	} else if n == 0 {
		return fmt.Errorf("consumer of secret %s: %w", secretID, keyservice.ErrNotFound)
	}
	return nil
}

// ListSecretConsumers returns one page of a secret's consumers.
func (s *Store) ListSecretConsumers(ctx context.Context, secretID string, limit, offset int) ([]keyservice.SecretConsumer, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM secret_consumers WHERE secret_id = ?", secretID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting consumers of secret %s: %w", secretID, err)
	}
	offset = max(offset, 0)
	if limit <= 0 || offset >= total {
		return []keyservice.SecretConsumer{}, total, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+secretConsumerColumns+` FROM secret_consumers WHERE secret_id = ?
		ORDER BY created, service, resource_type, resource_id LIMIT ? OFFSET ?`, secretID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing consumers of secret %s: %w", secretID, err)
	}
	defer rows.Close()
	out := make([]keyservice.SecretConsumer, 0, min(limit, total-offset))
	for rows.Next() {
		var c keyservice.SecretConsumer
		var created, updated dbTime
		if err := rows.Scan(&c.SecretID, &c.ProjectID, &c.Service, &c.ResourceType, &c.ResourceID, &created, &updated); err != nil {
			return nil, 0, fmt.Errorf("listing consumers of secret %s: %w", secretID, err)
		}
		c.Created, c.Updated = created.T, updated.T
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing consumers of secret %s: %w", secretID, err)
	}
	return out, total, nil
}

const containerConsumerColumns = "container_id, project_id, name, url, created, updated"

func (s *Store) scanContainerConsumers(ctx context.Context, q querier, query string, args ...any) ([]keyservice.ContainerConsumer, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading container consumers: %w", err)
	}
	defer rows.Close()
	out := []keyservice.ContainerConsumer{}
	for rows.Next() {
		var c keyservice.ContainerConsumer
		var created, updated dbTime
		if err := rows.Scan(&c.ContainerID, &c.ProjectID, &c.Name, &c.URL, &created, &updated); err != nil {
			return nil, fmt.Errorf("reading container consumers: %w", err)
		}
		c.Created, c.Updated = created.T, updated.T
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading container consumers: %w", err)
	}
	return out, nil
}

// PutContainerConsumer registers a consumer, or refreshes its Updated time
// when it is registered already (Barbican's create_or_update).
func (s *Store) PutContainerConsumer(ctx context.Context, c *keyservice.ContainerConsumer) error {
	_, err := s.putContainerConsumer(ctx, c, nil)
	return err
}

// PutContainerConsumerGuarded registers c, as PutContainerConsumer, only
// if the quota guard g lets it (guardedInsert), even when c is registered
// already; it reports whether it did.
func (s *Store) PutContainerConsumerGuarded(ctx context.Context, c *keyservice.ContainerConsumer, g keyservice.QuotaGuard) (bool, error) {
	return s.putContainerConsumer(ctx, c, &g)
}

func (s *Store) putContainerConsumer(ctx context.Context, c *keyservice.ContainerConsumer, g *keyservice.QuotaGuard) (bool, error) {
	if c.Created.IsZero() {
		c.Created = now()
	}
	if c.Updated.IsZero() {
		c.Updated = c.Created
	}
	c.Created, c.Updated = norm(c.Created), norm(c.Updated)
	args := []any{c.ContainerID, c.ProjectID, c.Name, c.URL, s.tv(c.Created), s.tv(c.Updated)}
	done := true
	var err error
	if g == nil {
		_, err = s.db.ExecContext(ctx, "INSERT INTO container_consumers ("+containerConsumerColumns+") VALUES (?, ?, ?, ?, ?, ?)", args...)
	} else {
		done, err = s.guardedInsert(ctx, "container_consumers", containerConsumerColumns, args, *g, nil)
	}
	switch {
	case err == nil:
		return done, nil
	case isMissingParent(err):
		return false, fmt.Errorf("container %s: %w", c.ContainerID, keyservice.ErrNotFound)
	case isDuplicate(err) || isDeadlock(err):
		_, err = s.db.ExecContext(ctx, "UPDATE container_consumers SET updated = ? WHERE container_id = ? AND name = ? AND url = ?",
			s.tv(c.Updated), c.ContainerID, c.Name, c.URL)
		if err == nil {
			return true, nil
		}
	}
	return false, classify(err, "registering a consumer of container %s", c.ContainerID)
}

// RemoveContainerConsumer removes a consumer.
func (s *Store) RemoveContainerConsumer(ctx context.Context, containerID, name, url string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM container_consumers WHERE container_id = ? AND name = ? AND url = ?", containerID, name, url)
	if err != nil {
		return fmt.Errorf("removing a consumer of container %s: %w", containerID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("removing a consumer of container %s: %w", containerID, err)
	} else if n == 0 {
		return fmt.Errorf("consumer %q %q of container %s: %w", name, url, containerID, keyservice.ErrNotFound)
	}
	return nil
}

// ListContainerConsumers returns one page of a container's consumers.
func (s *Store) ListContainerConsumers(ctx context.Context, containerID string, limit, offset int) ([]keyservice.ContainerConsumer, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM container_consumers WHERE container_id = ?", containerID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting consumers of container %s: %w", containerID, err)
	}
	offset = max(offset, 0)
	if limit <= 0 || offset >= total {
		return []keyservice.ContainerConsumer{}, total, nil
	}
	list, err := s.scanContainerConsumers(ctx, s.db, "SELECT "+containerConsumerColumns+
		" FROM container_consumers WHERE container_id = ? ORDER BY created, name, url LIMIT ? OFFSET ?", containerID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return list, total, nil
}
