package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"

	"opendev.org/x/arca/keyservice"
)

// Dialects, spelled as package dbconn returns them.
const (
	MySQL  = "mysql"
	SQLite = "sqlite"
)

// sqliteTime is how times are spelled in SQLite: fixed width, so that text
// comparison is time comparison.
const sqliteTime = "2006-01-02 15:04:05.000000"

// store runs the SQL. It is reached only through Store, which classifies its
// database errors, so that no caller sees an outage as an internal error.
type store struct {
	db      *sql.DB
	mysql   bool
	likeEsc string // the LIKE ... ESCAPE clause, spelled for the dialect

	hot sync.Map // query string -> *sql.Stmt (prepared.go)
}

// New returns a Store over db, which must have been opened by package
// dbconn and migrated by package migrations. It panics on a dialect other
// than "mysql" or "sqlite": that is a wiring bug, not a runtime condition.
func New(db *sql.DB, dialect string) *Store {
	return &Store{s: newStore(db, dialect)}
}

func newStore(db *sql.DB, dialect string) *store {
	switch dialect {
	case MySQL:
		// MySQL string literals treat the backslash as an escape itself.
		return &store{db: db, mysql: true, likeEsc: ` ESCAPE '\\'`}
	case SQLite:
		return &store{db: db, likeEsc: ` ESCAPE '\'`}
	}
	panic(fmt.Sprintf("sqlstore: unknown dialect %q", dialect))
}

// now is the clock for defaults; it matches what the store keeps.
func now() time.Time { return norm(time.Now()) }

// norm is a time as the store keeps it.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tv converts a time to the argument the dialect stores.
func (s *store) tv(t time.Time) any {
	t = norm(t)
	if s.mysql {
		return t
	}
	return t.Format(sqliteTime)
}

// tvp is tv for an optional time.
func (s *store) tvp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.tv(*t)
}

// nullString stores "" as NULL, which Barbican shows as null.
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

// dbTime scans a time column of either dialect: time.Time from MySQL
// (parseTime), text from SQLite.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (d *dbTime) Scan(v any) error {
	var err error
	switch x := v.(type) {
	case nil:
		d.T, d.Valid = time.Time{}, false
		return nil
	case time.Time:
		d.T = x
	case string:
		d.T, err = time.ParseInLocation(sqliteTime, x, time.UTC)
	case []byte:
		d.T, err = time.ParseInLocation(sqliteTime, string(x), time.UTC)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: bad stored time: %w", err)
	}
	d.T, d.Valid = norm(d.T), true
	return nil
}

func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// SQLite extended result codes (stable parts of SQLite's C API).
const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// MySQL server error numbers.
const (
	mysqlDuplicateKey      = 1062
	mysqlDataTooLong       = 1406
	mysqlNoReferencedRow   = 1452
	mysqlDeadlock          = 1213
	mysqlNoReferencedRowV1 = 1216
)

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlDuplicateKey
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintPrimaryKey || se.Code() == sqliteConstraintUnique
	}
	return false
}

func isMissingParent(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlNoReferencedRow || me.Number == mysqlNoReferencedRowV1
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintForeignKey
	}
	return false
}

// isDeadlock reports a Galera certification failure or InnoDB deadlock:
// another transaction touching the same keys won.
func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDeadlock
}

// classify wraps err with context, turning the database's "too long" into
// ErrInvalid (SQLite does not enforce lengths; the service validates them,
// this is the backstop).
func classify(err error, format string, args ...any) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == mysqlDataTooLong {
		err = fmt.Errorf("%w: %w", keyservice.ErrInvalid, err)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// Ping checks that the database answers.
func (s *store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database ping: %w", err)
	}
	return nil
}

// exists reports whether a row matches; table and cond are constants.
func (s *store) exists(ctx context.Context, table, cond string, args ...any) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE "+cond+" LIMIT 1", args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// ---- project KEKs ----

const kekColumns = "project_id, master_key_id, wrapped_kek, created, updated"

func scanKEK(row interface{ Scan(...any) error }) (keyservice.ProjectKEK, error) {
	var k keyservice.ProjectKEK
	var created, updated dbTime
	err := row.Scan(&k.ProjectID, &k.MasterKeyID, &k.WrappedKEK, &created, &updated)
	k.Created, k.Updated = created.T, updated.T
	return k, err
}

// GetProjectKEK returns the project's sealed KEK.
func (s *store) GetProjectKEK(ctx context.Context, projectID string) (keyservice.ProjectKEK, error) {
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
func (s *store) CreateProjectKEK(ctx context.Context, kek keyservice.ProjectKEK) error {
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
func (s *store) ReplaceProjectKEK(ctx context.Context, kek keyservice.ProjectKEK, oldMasterKeyID string) error {
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
func (s *store) ListProjectKEKs(ctx context.Context, after string, limit int) ([]keyservice.ProjectKEK, error) {
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

// ---- secrets ----

const secretColumns = "id, project_id, creator_id, name, secret_type, algorithm, bit_length, mode, status, " +
	"expiration, created, updated, payload_content_type, payload"

// scanSecret reads secretColumns, then extra columns into extra.
func scanSecret(row interface{ Scan(...any) error }, extra ...any) (*keyservice.Secret, error) {
	var sec keyservice.Secret
	var name, alg, mode, pct sql.NullString
	var bits sql.NullInt64
	var exp, created, updated dbTime
	if err := row.Scan(append([]any{&sec.ID, &sec.ProjectID, &sec.CreatorID, &name, &sec.SecretType, &alg, &bits, &mode,
		&sec.Status, &exp, &created, &updated, &pct, &sec.Payload}, extra...)...); err != nil {
		return nil, err
	}
	sec.Name, sec.Algorithm, sec.Mode, sec.PayloadContentType = name.String, alg.String, mode.String, pct.String
	sec.BitLength = int(bits.Int64)
	sec.Expiration, sec.Created, sec.Updated = exp.ptr(), created.T, updated.T
	return &sec, nil
}

// CreateSecret inserts a secret. It normalises sec's times to what the
// store keeps (UTC, microseconds; zero Created/Updated become now).
func (s *store) CreateSecret(ctx context.Context, sec *keyservice.Secret) error {
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
	_, err := s.db.ExecContext(ctx, "INSERT INTO secrets ("+secretColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		sec.ID, sec.ProjectID, sec.CreatorID, nullString(sec.Name), sec.SecretType, nullString(sec.Algorithm),
		nullInt(sec.BitLength), nullString(sec.Mode), sec.Status, s.tvp(sec.Expiration), s.tv(sec.Created),
		s.tv(sec.Updated), nullString(sec.PayloadContentType), sec.Payload)
	if err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("secret %s exists: %w", sec.ID, keyservice.ErrConflict)
		}
		return classify(err, "creating secret %s", sec.ID)
	}
	return nil
}

const getSecretQuery = "SELECT " + secretColumns +
	", EXISTS (SELECT 1 FROM secret_acls WHERE secret_acls.secret_id = secrets.id) FROM secrets WHERE id = ?"

// GetSecret returns a secret by id, whatever its project or expiration.
func (s *store) GetSecret(ctx context.Context, id string) (*keyservice.Secret, error) {
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
func (s *store) SetSecretPayload(ctx context.Context, id, contentType string, sealed []byte, updated time.Time) error {
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
func (s *store) DeleteSecret(ctx context.Context, id string) error {
	var n int64
	del := func(ex interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}) error {
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
		err = s.inTx(ctx, func(tx *sql.Tx) error {
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

// inTx runs f in a transaction, committed if f returns nil.
func (s *store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
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
func (s *store) ListSecrets(ctx context.Context, f keyservice.SecretFilter) ([]*keyservice.Secret, int, error) {
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
				return nil, 0, fmt.Errorf("listing secrets: comparison %q on %s: %w", tc.Op, c.col, keyservice.ErrInvalid)
			}
			where = append(where, c.col+" "+op+" ?")
			args = append(args, s.tv(tc.Time))
		}
	}
	order := make([]string, 0, len(f.Sort)+2)
	for _, k := range f.Sort {
		col, ok := secretSortColumns[k.Field]
		if !ok || !keyservice.SortableSecretFields[k.Field] {
			return nil, 0, fmt.Errorf("listing secrets: sort key %q: %w", k.Field, keyservice.ErrInvalid)
		}
		if k.Desc {
			col += " DESC"
		}
		order = append(order, col)
	}
	if len(order) == 0 {
		order = append(order, "created")
	}
	order = append(order, "id")
	cond := strings.Join(where, " AND ")

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

		" ORDER BY "+strings.Join(order, ", ")+" LIMIT ? OFFSET ?", append(args, f.Limit, offset)...)
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

// ---- secret user metadata ----

// GetSecretMetadata returns a secret's user metadata (never nil);
// ErrNotFound if the secret does not exist. One query: the secret row,
// joined with its metadata if any.
func (s *store) GetSecretMetadata(ctx context.Context, secretID string) (map[string]string, error) {
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
func (s *store) ReplaceSecretMetadata(ctx context.Context, secretID string, md map[string]string) error {
	lock := "SELECT 1 FROM secrets WHERE id = ?"
	if s.mysql {
		// Serialises concurrent replacements of one secret's metadata (a
		// row lock, not a table lock). SQLite transactions start IMMEDIATE.
		lock += " FOR UPDATE"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
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
func (s *store) AddSecretMetadatum(ctx context.Context, secretID, key, value string) error {
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
func (s *store) UpdateSecretMetadatum(ctx context.Context, secretID, key, value string) error {
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
func (s *store) DeleteSecretMetadatum(ctx context.Context, secretID, key string) error {
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

// ---- orders ----

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
func (s *store) CreateOrder(ctx context.Context, o *keyservice.Order) error {
	if o.Created.IsZero() {
		o.Created = now()
	}
	if o.Updated.IsZero() {
		o.Updated = o.Created
	}
	o.Created, o.Updated = norm(o.Created), norm(o.Updated)
	meta, err := json.Marshal(o.Meta)
	if err != nil {
		return fmt.Errorf("creating order %s: %w", o.ID, err)
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO orders ("+orderColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		o.ID, o.ProjectID, o.CreatorID, o.Type, o.Status, string(meta), nullString(o.SecretID), nullString(o.ContainerID),
		nullString(o.ErrorStatusCode), nullString(o.ErrorReason), s.tv(o.Created), s.tv(o.Updated))
	if err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("order %s exists: %w", o.ID, keyservice.ErrConflict)
		}
		return classify(err, "creating order %s", o.ID)
	}
	return nil
}

// UpdateOrder stores an order's status, result and error fields (and its
// Updated time, normalised; zero means now).
func (s *store) UpdateOrder(ctx context.Context, o *keyservice.Order) error {
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
func (s *store) GetOrder(ctx context.Context, id string) (*keyservice.Order, error) {
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
func (s *store) ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*keyservice.Order, int, error) {
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
func (s *store) DeleteOrder(ctx context.Context, id string) error {
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
