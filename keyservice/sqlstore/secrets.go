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

const secretColumns = "id, project_id, creator_id, name, secret_type, algorithm, bit_length, mode, status, " +
	"expiration, created, updated, payload_content_type, payload, secret_store"

// scanSecret reads secretColumns, then extra columns into extra.
// secretScan is everything one row's scan needs, in one allocation: the
// secret returned, the nullable columns' holders and the destinations
// (each pointer handed to Scan would otherwise be a heap object of its own).
type secretScan struct {
	sec                   keyservice.Secret
	name, alg, mode, pct  sql.NullString
	bits                  sql.NullInt64
	exp, created, updated dbTime
	dest                  [16]any
}

func scanSecret(row interface{ Scan(...any) error }, extra ...any) (*keyservice.Secret, error) {
	t := new(secretScan)
	sec := &t.sec
	dest := append(t.dest[:0], &sec.ID, &sec.ProjectID, &sec.CreatorID, &t.name, &sec.SecretType, &t.alg, &t.bits, &t.mode,
		&sec.Status, &t.exp, &t.created, &t.updated, &t.pct, &sec.Payload, &sec.SecretStore)
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	sec.Name, sec.Algorithm, sec.Mode, sec.PayloadContentType = t.name.String, t.alg.String, t.mode.String, t.pct.String
	sec.BitLength = int(t.bits.Int64)
	sec.Expiration, sec.Created, sec.Updated = t.exp.ptr(), t.created.T, t.updated.T
	t.dest = [16]any{} // the secret outlives the scan: drop the pointers into it
	return sec, nil
}

// CreateSecret inserts a secret. It normalises sec's times to what the
// store keeps (UTC, microseconds; zero Created/Updated become now).
func (s *Store) CreateSecret(ctx context.Context, sec *keyservice.Secret) error {
	normSecretTimes(sec)
	_, err := s.db.ExecContext(ctx, "INSERT INTO secrets ("+secretColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		s.secretArgs(sec)...)
	return secretInsertError(err, sec.ID)
}

// normSecretTimes normalises sec's times to what the store keeps (UTC,
// microseconds; zero Created/Updated become now).
func normSecretTimes(sec *keyservice.Secret) {
	if sec.Created.IsZero() {
		sec.Created = now()
	}
	if sec.Updated.IsZero() {
		sec.Updated = sec.Created
	}
	sec.Created, sec.Updated = norm(sec.Created), norm(sec.Updated)
	if sec.Expiration != nil {
		e := norm(*sec.Expiration)
		sec.Expiration = &e
	}
}

// secretArgs are the values of secretColumns for sec, extra appended.
func (s *Store) secretArgs(sec *keyservice.Secret, extra ...any) []any {
	return append([]any{sec.ID, sec.ProjectID, sec.CreatorID, nullString(sec.Name), sec.SecretType, nullString(sec.Algorithm),
		nullInt(sec.BitLength), nullString(sec.Mode), sec.Status, s.tvp(sec.Expiration), s.tv(sec.Created),
		s.tv(sec.Updated), nullString(sec.PayloadContentType), sec.Payload, sec.SecretStore}, extra...)
}

func secretInsertError(err error, id string) error {
	if err == nil {
		return nil
	}
	if isDuplicate(err) {
		return fmt.Errorf("secret %s exists: %w", id, keyservice.ErrConflict)
	}
	return classify(err, "creating secret %s", id)
}

// CreateSecretGuarded inserts sec, as CreateSecret, only if the quota
// guard g lets it (guardedInsert); it reports whether it did.
func (s *Store) CreateSecretGuarded(ctx context.Context, sec *keyservice.Secret, g keyservice.QuotaGuard) (bool, error) {
	normSecretTimes(sec)
	done, err := s.guardedInsert(ctx, "secrets", secretColumns, s.secretArgs(sec), g, nil)
	return done, secretInsertError(err, sec.ID)
}

const getSecretQuery = "SELECT " + secretColumns +
	", EXISTS (SELECT 1 FROM secret_acls WHERE secret_acls.secret_id = secrets.id) FROM secrets WHERE id = ?"

// GetSecret returns a secret by id, whatever its project or expiration.
func (s *Store) GetSecret(ctx context.Context, id string) (*keyservice.Secret, error) {
	// Whether the secret has ACLs comes with the row: every secret read is
	// followed by an authorization that needs them, and most secrets have
	// none (the ACL query is then skipped). A subquery on secret_acls'
	// primary key (secret_id, operation).
	var hasACLs bool
	sec, err := scanSecret(s.queryRowHot(ctx, getSecretQuery, id), &hasACLs)
	if err == nil {
		sec.NoACLs = !hasACLs
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("secret %s: %w", id, keyservice.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading secret %s: %w", id, err)
	}
	return sec, nil
}

// SetSecretPayload stores the payload of a secret that has none.
func (s *Store) SetSecretPayload(ctx context.Context, id, contentType string, sealed []byte, updated time.Time) error {
	if sealed == nil {
		// nil means "no payload" in the schema; store an empty payload as such.
		sealed = []byte{}
	}
	if updated.IsZero() {
		updated = now()
	}
	res, err := s.db.ExecContext(ctx,
		"UPDATE secrets SET payload = ?, payload_content_type = ?, updated = ? WHERE id = ? AND payload IS NULL",
		sealed, nullString(contentType), s.tv(updated), id)
	if err != nil {
		return classify(err, "storing payload of secret %s", id)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storing payload of secret %s: %w", id, err)
	} else if n > 0 {
		return nil
	}
	ok, err := s.exists(ctx, "secrets", "id = ?", id)
	switch {
	case err != nil:
		return fmt.Errorf("storing payload of secret %s: %w", id, err)
	case ok:
		return fmt.Errorf("secret %s already has a payload: %w", id, keyservice.ErrConflict)
	}
	return fmt.Errorf("secret %s: %w", id, keyservice.ErrNotFound)
}

// DeleteSecret removes a secret and its user metadata.
func (s *Store) DeleteSecret(ctx context.Context, id string) error {
	var n int64
	del := func(ex execer) error {
		res, err := ex.ExecContext(ctx, "DELETE FROM secrets WHERE id = ?", id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	}
	var err error
	if s.mysql {
		// InnoDB always enforces the cascading foreign key.
		err = del(s.db)
	} else {
		// SQLite cascades only with foreign_keys=on, which dbconn sets but a
		// hand-opened database may lack; deleting explicitly keeps it clean.
		err = s.inTx(ctx, func(tx *txn) error {
			if _, err := tx.ExecContext(ctx, "DELETE FROM secret_user_metadata WHERE secret_id = ?", id); err != nil {
				return err
			}
			return del(tx)
		})
	}
	if err != nil {
		return fmt.Errorf("deleting secret %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("secret %s: %w", id, keyservice.ErrNotFound)
	}
	return nil
}

// secretSortColumns maps the sort fields the API accepts to columns. It is
// the only way a name from a request reaches the SQL text.
var secretSortColumns = map[string]string{
	"algorithm": "algorithm", "bit_length": "bit_length", "created": "created", "expiration": "expiration",
	"mode": "mode", "name": "name", "secret_type": "secret_type", "status": "status", "updated": "updated",
}

var cmpOps = map[string]string{
	keyservice.CmpEQ: "=", keyservice.CmpGT: ">", keyservice.CmpGTE: ">=", keyservice.CmpLT: "<", keyservice.CmpLTE: "<=",
}

// ListSecrets returns one page of a project's live secrets and the number
// of secrets matching the filter. A Limit <= 0 returns only the count.
func (s *Store) ListSecrets(ctx context.Context, f keyservice.SecretFilter) ([]*keyservice.Secret, int, error) {
	cond, args, err := s.secretConditions(f)
	if err != nil {
		return nil, 0, err
	}
	order, err := secretOrder(f.Sort)
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM secrets WHERE "+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting secrets of project %s: %w", f.ProjectID, err)
	}
	if f.Limit <= 0 || f.Offset >= total {
		return []*keyservice.Secret{}, total, nil
	}
	offset := max(f.Offset, 0)
	// cond and order hold only constant fragments and whitelisted column
	// names; every value is a placeholder argument.
	rows, err := s.db.QueryContext(ctx, "SELECT "+secretColumns+" FROM secrets WHERE "+cond+ //nolint:gosec // G202: see above
		" ORDER BY "+order+" LIMIT ? OFFSET ?", append(args, f.Limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing secrets of project %s: %w", f.ProjectID, err)
	}
	defer rows.Close()
	out := make([]*keyservice.Secret, 0, min(f.Limit, total-offset))
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing secrets of project %s: %w", f.ProjectID, err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing secrets of project %s: %w", f.ProjectID, err)
	}
	return out, total, nil
}

// secretConditions turns a filter into a WHERE condition, made of constant
// fragments and whitelisted column names, and its placeholder arguments.
func (s *Store) secretConditions(f keyservice.SecretFilter) (string, []any, error) {
	nowT := f.Now
	if nowT.IsZero() {
		nowT = time.Now()
	}
	where := []string{"project_id = ?", "(expiration IS NULL OR expiration > ?)"}
	args := []any{f.ProjectID, s.tv(nowT)}
	if f.ACLUserID != "" {
		where[0] = "id IN (SELECT secret_id FROM secret_acl_users WHERE operation = 'read' AND user_id = ?)"
		args[0] = f.ACLUserID
	}
	for _, c := range []struct{ col, pattern string }{{"name", f.Name}, {"algorithm", f.Algorithm}, {"mode", f.Mode}} {
		if c.pattern != "" {
			where = append(where, c.col+" LIKE ?"+s.likeEsc)
			args = append(args, c.pattern)
		}
	}
	if f.BitLength != 0 {
		where = append(where, "bit_length = ?")
		args = append(args, f.BitLength)
	}
	if f.SecretType != "" {
		where = append(where, "secret_type = ?")
		args = append(args, f.SecretType)
	}
	for _, c := range []struct {
		col   string
		conds []keyservice.TimeCondition
	}{{"created", f.Created}, {"updated", f.Updated}, {"expiration", f.Expiration}} {
		for _, tc := range c.conds {
			op, ok := cmpOps[tc.Op]
			if !ok {
				return "", nil, fmt.Errorf("listing secrets: comparison %q on %s: %w", tc.Op, c.col, keyservice.ErrInvalid)
			}
			where = append(where, c.col+" "+op+" ?")
			args = append(args, s.tv(tc.Time))
		}
	}
	return strings.Join(where, " AND "), args, nil
}

// secretOrder turns sort keys into an ORDER BY list of whitelisted columns,
// created by default, the id last so that pages are stable.
func secretOrder(keys []keyservice.SortKey) (string, error) {
	order := make([]string, 0, len(keys)+2)
	for _, k := range keys {
		col, ok := secretSortColumns[k.Field]
		if !ok || !keyservice.SortableSecretFields[k.Field] {
			return "", fmt.Errorf("listing secrets: sort key %q: %w", k.Field, keyservice.ErrInvalid)
		}
		if k.Desc {
			col += " DESC"
		}
		order = append(order, col)
	}
	if len(order) == 0 {
		order = append(order, "created")
	}
	return strings.Join(append(order, "id"), ", "), nil
}

// defaultPurgeBatch is how many expired secrets PurgeExpiredSecrets
// removes per transaction when the caller does not say.
const defaultPurgeBatch = 1000

// PurgeExpiredSecrets removes the secrets that expired before before,
// with their metadata, ACLs, consumers and container references (the
// foreign keys cascade), at most batch (0: 1000) per transaction, and
// returns how many it removed; dryRun counts them instead. Expired
// secrets are invisible to every route and no longer count against the
// secrets quota (as in Barbican), so without a purge they only grow.
func (s *Store) PurgeExpiredSecrets(ctx context.Context, before time.Time, batch int, dryRun bool) (int64, error) {
	cut := s.tv(norm(before))
	if dryRun {
		var n int64
		err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM secrets WHERE expiration IS NOT NULL AND expiration < ?", cut).Scan(&n)
		if err != nil {
			return 0, classify(err, "counting expired secrets")
		}
		return n, nil
	}
	if batch <= 0 {
		batch = defaultPurgeBatch
	}
	var total int64
	for {
		var removed int64
		err := s.inTx(ctx, func(tx *txn) error {
			rows, err := tx.QueryContext(ctx, "SELECT id FROM secrets WHERE expiration IS NOT NULL AND expiration < ? LIMIT ?", cut, batch)
			if err != nil {
				return err
			}
			var ids []any
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			in := "(" + strings.Repeat("?, ", len(ids)-1) + "?)"
			if !s.mysql {
				// as DeleteSecret: SQLite cascades only with foreign_keys=on
				for _, table := range []string{"secret_user_metadata", "secret_acl_users", "secret_acls", "secret_consumers", "container_secrets"} {
					if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE secret_id IN "+in, ids...); err != nil {
						return err
					}
				}
			}
			res, err := tx.ExecContext(ctx, "DELETE FROM secrets WHERE id IN "+in, ids...)
			if err != nil {
				return err
			}
			removed, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, classify(err, "removing expired secrets")
		}
		total += removed
		if removed < int64(batch) {
			return total, nil
		}
	}
}
