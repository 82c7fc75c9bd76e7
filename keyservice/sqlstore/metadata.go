package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"opendev.org/x/arca/keyservice"
)

// GetSecretMetadata returns a secret's user metadata (never nil);
// ErrNotFound if the secret does not exist. One query: the secret row,
// joined with its metadata if any.
func (s *Store) GetSecretMetadata(ctx context.Context, secretID string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT m.`key`, m.`value` FROM secrets s LEFT JOIN secret_user_metadata m ON m.secret_id = s.id WHERE s.id = ?", secretID)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of secret %s: %w", secretID, err)
	}
	defer rows.Close()
	md, found := map[string]string{}, false
	for rows.Next() {
		found = true
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("reading metadata of secret %s: %w", secretID, err)
		}
		if k.Valid {
			md[k.String] = v.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading metadata of secret %s: %w", secretID, err)
	}
	if !found {
		return nil, fmt.Errorf("secret %s: %w", secretID, keyservice.ErrNotFound)
	}
	return md, nil
}

// ReplaceSecretMetadata replaces all user metadata of a secret.
func (s *Store) ReplaceSecretMetadata(ctx context.Context, secretID string, md map[string]string) error {
	lock := "SELECT 1 FROM secrets WHERE id = ?"
	if s.mysql {
		// Serialises concurrent replacements of one secret's metadata (a
		// row lock, not a table lock). SQLite transactions start IMMEDIATE.
		lock += " FOR UPDATE"
	}
	err := s.inTx(ctx, func(tx *txn) error {
		var one int
		if err := tx.QueryRowContext(ctx, lock, secretID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("secret %s: %w", secretID, keyservice.ErrNotFound)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM secret_user_metadata WHERE secret_id = ?", secretID); err != nil {
			return err
		}
		if len(md) == 0 {
			return nil
		}
		q := strings.Builder{}
		q.WriteString("INSERT INTO secret_user_metadata (secret_id, `key`, `value`) VALUES ")
		args := make([]any, 0, 3*len(md))
		for k, v := range md {
			if len(args) > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, secretID, k, v)
		}
		_, err := tx.ExecContext(ctx, q.String(), args...)
		return err
	})
	if err != nil {
		if errors.Is(err, keyservice.ErrNotFound) {
			return err
		}
		return classify(err, "replacing metadata of secret %s", secretID)
	}
	return nil
}

// AddSecretMetadatum adds one key; ErrConflict if it exists, ErrNotFound
// if the secret does not.
func (s *Store) AddSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO secret_user_metadata (secret_id, `key`, `value`) VALUES (?, ?, ?)", secretID, key, value)
	switch {
	case err == nil:
		return nil
	case isDuplicate(err):
		return fmt.Errorf("metadata key %q of secret %s exists: %w", key, secretID, keyservice.ErrConflict)
	case isMissingParent(err):
		return fmt.Errorf("secret %s: %w", secretID, keyservice.ErrNotFound)
	}
	return classify(err, "adding metadata to secret %s", secretID)
}

// UpdateSecretMetadatum sets an existing key; ErrNotFound if the key or
// the secret is absent.
func (s *Store) UpdateSecretMetadatum(ctx context.Context, secretID, key, value string) error {
	res, err := s.db.ExecContext(ctx, "UPDATE secret_user_metadata SET `value` = ? WHERE secret_id = ? AND `key` = ?", value, secretID, key)
	if err != nil {
		return classify(err, "updating metadata of secret %s", secretID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("updating metadata of secret %s: %w", secretID, err)
	} else if n > 0 {
		return nil
	}
	ok, err := s.exists(ctx, "secret_user_metadata", "secret_id = ? AND `key` = ?", secretID, key)
	switch {
	case err != nil:
		return fmt.Errorf("updating metadata of secret %s: %w", secretID, err)
	case ok:
		return nil // the value was already the new one
	}
	return fmt.Errorf("metadata key %q of secret %s: %w", key, secretID, keyservice.ErrNotFound)
}

// DeleteSecretMetadatum removes one key; ErrNotFound if absent.
func (s *Store) DeleteSecretMetadatum(ctx context.Context, secretID, key string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM secret_user_metadata WHERE secret_id = ? AND `key` = ?", secretID, key)
	if err != nil {
		return fmt.Errorf("deleting metadata of secret %s: %w", secretID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deleting metadata of secret %s: %w", secretID, err)
	} else if n == 0 {
		return fmt.Errorf("metadata key %q of secret %s: %w", key, secretID, keyservice.ErrNotFound)
	}
	return nil
}
