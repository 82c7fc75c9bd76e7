package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"opendev.org/x/arca/keyservice"
)

// errQuotaStopped ends a guarded transaction whose guarded insert added no
// row: nothing of the creation is kept.
var errQuotaStopped = errors.New("stopped by the quota")

// maxDeadlockAttempts bounds the retries of a guarded insert chosen as a
// deadlock victim; each waits a random while first, longer every time, so
// that the creations that deadlocked do not meet again at once.
const maxDeadlockAttempts = 20

// guardCondition is the WHERE condition of a guarded insert (an INSERT ...
// SELECT of one row of values) and its arguments. With g.Limit >= 0 the
// statement counts the project's live resources of the kind (the count of
// countQueries) and inserts only while they are fewer than the limit: on
// InnoDB (REPEATABLE READ) the count of an INSERT ... SELECT is a locking
// read of the project's rows and gaps, so two creations that would both
// pass it cannot both insert: one waits for the other, or is chosen as a
// deadlock victim and retried, and then counts the other's row. SQLite
// has one writer at a time. With g.Limit Unlimited (the caller knows the
// default is unlimited) it inserts only if the project has no quota of
// its own for the kind: the lookup and the insert are one round trip, and
// no quota set before it can be missed.
func (s *Store) guardCondition(g keyservice.QuotaGuard) (string, []any, error) {
	count, ok := countQueries[g.Resource]
	if !ok {
		return "", nil, fmt.Errorf("quota guard on %q: %w", g.Resource, keyservice.ErrInvalid)
	}
	if g.Limit < 0 {
		// g.Resource is a key of countQueries, so a column of project_quotas.
		col := g.Resource
		return "NOT EXISTS (SELECT 1 FROM project_quotas WHERE project_id = ? AND " + col + " IS NOT NULL AND " + col + " >= 0)",
			[]any{g.ProjectID}, nil
	}
	return "(" + count + ") < ?", append(s.countArgs(g.ProjectID, g.Resource, g.At), g.Limit), nil
}

// guardedInsert inserts one row into table (columns, values in args) only
// if the quota guard g lets it (see guardCondition); then, in the same
// transaction, runs rest (nil: none) for the creation's other rows. It
// reports whether it inserted; a deadlock victim is retried from the
// start. Errors are the database's, unwrapped, for the caller to classify.
func (s *Store) guardedInsert(ctx context.Context, table, columns string, args []any, g keyservice.QuotaGuard, rest func(*txn) error) (bool, error) {
	cond, condArgs, err := s.guardCondition(g)
	if err != nil {
		return false, err
	}
	query := "INSERT INTO " + table + " (" + columns + ") SELECT " + //nolint:gosec // G202: table, columns and cond are constants
		strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + " WHERE " + cond
	all := append(append(make([]any, 0, len(args)+len(condArgs)), args...), condArgs...)
	for attempt := 1; ; attempt++ {
		done, err := s.guardedInsertOnce(ctx, query, all, rest)
		if err == nil || !isDeadlock(err) || attempt >= maxDeadlockAttempts {
			return done, err
		}
		t := time.NewTimer(time.Duration(1+rand.IntN(attempt*2)) * time.Millisecond) //nolint:gosec // G404: jitter, not a secret
		select {
		case <-ctx.Done():
			t.Stop()
			return false, err
		case <-t.C:
		}
	}
}

func (s *Store) guardedInsertOnce(ctx context.Context, query string, args []any, rest func(*txn) error) (bool, error) {
	if rest == nil {
		// One statement, on the hot path of every store: run uncancelled
		// (prepared.go), as the reads by primary key are.
		res, err := s.db.execUncancelled(ctx, query, args...)
		if err != nil {
			return false, err
		}
		return inserted(res.RowsAffected())
	}
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if ok, err := inserted(res.RowsAffected()); err != nil || !ok {
			return cmp.Or(err, errQuotaStopped)
		}
		return rest(tx)
	})
	if errors.Is(err, errQuotaStopped) {
		return false, nil
	}
	return err == nil, err
}

func inserted(n int64, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("rows affected: %w", err)
	}
	return n == 1, nil
}
