package sqlstore

import (
	"context"
	"database/sql"
)

// The store reaches the database only through the types below, which pass
// every error the database produces through unavailable (unavailable.go):
// an outage is classified once, where it happens. Only queryRowHot
// (prepared.go) reaches the *sql.DB inside conn, to prepare statements whose
// rows it hands back as a row.

// conn is the store's *sql.DB.
type conn struct{ db *sql.DB }

func (c conn) PingContext(ctx context.Context) error {
	return unavailable(ctx, c.db.PingContext(ctx))
}

func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := c.db.ExecContext(ctx, query, args...)
	return res, unavailable(ctx, err)
}

// execUncancelled runs one short statement without ctx's cancellation
// (uncancelled, prepared.go); its error is classified against ctx.
func (c conn) execUncancelled(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := c.db.ExecContext(uncancelled(ctx), query, args...)
	return res, unavailable(ctx, err)
}

func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*rows, error) {
	r, err := c.db.QueryContext(ctx, query, args...) //nolint:rowserrcheck // the caller checks Err of the rows returned
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return &rows{ctx: ctx, r: r}, nil
}

func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) row {
	return row{ctx: ctx, r: c.db.QueryRowContext(ctx, query, args...)}
}

func (c conn) BeginTx(ctx context.Context) (*txn, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return &txn{tx: tx}, nil
}

// txn is a transaction of the store.
type txn struct{ tx *sql.Tx }

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	return res, unavailable(ctx, err)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*rows, error) {
	r, err := t.tx.QueryContext(ctx, query, args...) //nolint:rowserrcheck // the caller checks Err of the rows returned
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return &rows{ctx: ctx, r: r}, nil
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) row {
	return row{ctx: ctx, r: t.tx.QueryRowContext(ctx, query, args...)}
}

func (t *txn) commit(ctx context.Context) error { return unavailable(ctx, t.tx.Commit()) }

// rollback ends a transaction that failed; its own error adds nothing to
// the one that made the caller give up.
func (t *txn) rollback() { _ = t.tx.Rollback() }

// rows is the result of a query. Next stops at the first error, which Err
// returns classified.
type rows struct {
	ctx context.Context
	r   *sql.Rows
}

func (r *rows) Next() bool { return r.r.Next() }

func (r *rows) Scan(dest ...any) error { return unavailable(r.ctx, r.r.Scan(dest...)) }

func (r *rows) Err() error { return unavailable(r.ctx, r.r.Err()) }

func (r *rows) Close() error { return r.r.Close() }

// row is the result of a query for one row; its error, sql.ErrNoRows
// included, comes with Scan.
type row struct {
	ctx context.Context
	r   *sql.Row
}

func (r row) Scan(dest ...any) error { return unavailable(r.ctx, r.r.Scan(dest...)) }

// execer runs a statement on the database or in a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier runs a query on the database or in a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) row
}

// inTx runs f in a transaction, committed if f returns nil.
func (s *Store) inTx(ctx context.Context, f func(*txn) error) error {
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.rollback()
		return err
	}
	return tx.commit(ctx)
}
