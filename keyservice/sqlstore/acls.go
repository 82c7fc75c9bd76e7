package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"opendev.org/x/arca/keyservice"
)

// ACLs. Each kind of resource has an ACL table keyed by (resource id,
// operation) and a users table hanging off it; both cascade from the
// resource. Table and column names come from this constant map only.

type aclTables struct {
	parent, idColumn, acls, users string
}

var aclTablesByKind = map[string]aclTables{
	keyservice.ACLSecret:    {parent: "secrets", idColumn: "secret_id", acls: "secret_acls", users: "secret_acl_users"},
	keyservice.ACLContainer: {parent: "containers", idColumn: "container_id", acls: "container_acls", users: "container_acl_users"},
}

func tablesFor(kind string) (aclTables, error) {
	t, ok := aclTablesByKind[kind]
	if !ok {
		return t, fmt.Errorf("ACLs of %q: %w", kind, keyservice.ErrInvalid)
	}
	return t, nil
}

// GetACLs returns a resource's ACLs with two queries.
func (s *Store) GetACLs(ctx context.Context, kind, id string) ([]keyservice.ACL, error) {
	t, err := tablesFor(kind)
	if err != nil {
		return nil, err
	}
	// The names come from aclTablesByKind; the id is an argument.
	rows, err := s.db.QueryContext(ctx, "SELECT operation, project_access, created, updated FROM "+t.acls+ //nolint:gosec // G202: see above
		" WHERE "+t.idColumn+" = ? ORDER BY operation", id)
	if err != nil {
		return nil, fmt.Errorf("reading ACLs of %s %s: %w", kind, id, err)
	}
	defer rows.Close()
	acls := []keyservice.ACL{}
	for rows.Next() {
		var a keyservice.ACL
		var created, updated dbTime
		if err := rows.Scan(&a.Operation, &a.ProjectAccess, &created, &updated); err != nil {
			return nil, fmt.Errorf("reading ACLs of %s %s: %w", kind, id, err)
		}
		a.Created, a.Updated, a.Users = created.T, updated.T, []string{}
		acls = append(acls, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading ACLs of %s %s: %w", kind, id, err)
	}
	rows.Close()
	if len(acls) == 0 {
		return acls, nil
	}
	urows, err := s.db.QueryContext(ctx, "SELECT operation, user_id FROM "+t.users+ //nolint:gosec // G202: see above
		" WHERE "+t.idColumn+" = ? ORDER BY operation, user_id", id)
	if err != nil {
		return nil, fmt.Errorf("reading ACL users of %s %s: %w", kind, id, err)
	}
	defer urows.Close()
	for urows.Next() {
		var op, user string
		if err := urows.Scan(&op, &user); err != nil {
			return nil, fmt.Errorf("reading ACL users of %s %s: %w", kind, id, err)
		}
		for i := range acls {
			if acls[i].Operation == op {
				acls[i].Users = append(acls[i].Users, user)
			}
		}
	}
	if err := urows.Err(); err != nil {
		return nil, fmt.Errorf("reading ACL users of %s %s: %w", kind, id, err)
	}
	return acls, nil
}

// ReplaceACLs replaces a resource's ACLs in one transaction, holding the
// resource's row lock (MySQL; SQLite transactions are IMMEDIATE) so that
// concurrent replacements apply one after the other.
func (s *Store) ReplaceACLs(ctx context.Context, kind, id string, acls []keyservice.ACL) error {
	t, err := tablesFor(kind)
	if err != nil {
		return err
	}
	lock := "SELECT 1 FROM " + t.parent + " WHERE id = ?"
	if s.mysql {
		lock += " FOR UPDATE"
	}
	err = s.inTx(ctx, func(tx *txn) error {
		var one int
		if err := tx.QueryRowContext(ctx, lock, id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%s %s: %w", kind, id, keyservice.ErrNotFound)
			}
			return err
		}
		// Users first: SQLite may run without foreign keys.
		for _, table := range []string{t.users, t.acls} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+t.idColumn+" = ?", id); err != nil {
				return err
			}
		}
		for _, a := range acls {
			created, updated := a.Created, a.Updated
			if created.IsZero() {
				created = now()
			}
			if updated.IsZero() {
				updated = created
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+t.acls+" ("+t.idColumn+", operation, project_access, created, updated) VALUES (?, ?, ?, ?, ?)",
				id, a.Operation, a.ProjectAccess, s.tv(created), s.tv(updated)); err != nil {
				return err
			}
			users := slices.Clone(a.Users)
			slices.Sort(users)
			for _, u := range slices.Compact(users) {
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+t.users+" ("+t.idColumn+", operation, user_id) VALUES (?, ?, ?)", id, a.Operation, u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyservice.ErrNotFound):
		return err
	case isDuplicate(err):
		return fmt.Errorf("ACLs of %s %s: duplicate operation: %w", kind, id, keyservice.ErrInvalid)
	}
	return classify(err, "replacing ACLs of %s %s", kind, id)
}
