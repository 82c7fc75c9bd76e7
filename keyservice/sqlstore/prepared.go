package sqlstore

import (
	"context"
	"database/sql"
)

// Prepared statements for the reads every hot request makes (a secret by
// id, a project key by id, a project's quotas before each creation). Everything else is sent as text with its
// arguments interpolated by the driver (dbconn), one round trip each. For
// these few, a statement prepared once per pooled connection is also one
// round trip per execution, and spares MariaDB the parsing and planning of
// the query each time: about 10-20 µs of its CPU per request on the bench
// machine (docs/benchmarks.md). database/sql prepares the statement again
// on each new connection, so reconnections after a database restart need
// nothing more.

// queryRowHot runs query, a constant, as a prepared statement. When the
// statement cannot be prepared (the database is down), it runs the query
// as text so that the caller sees the same error as for any other query.
func (s *Store) queryRowHot(ctx context.Context, query string, args ...any) row {
	run := uncancelled(ctx)
	if st, ok := s.hot.Load(query); ok {
		return row{ctx: ctx, r: st.(*sql.Stmt).QueryRowContext(run, args...)}
	}
	st, err := s.db.db.PrepareContext(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	if prev, loaded := s.hot.LoadOrStore(query, st); loaded {
		_ = st.Close() //nolint:sqlclosecheck // a duplicate: another request prepared it first, and the map keeps that one
		st = prev.(*sql.Stmt)
	}
	return row{ctx: ctx, r: st.QueryRowContext(run, args...)}
}

// uncancelled is the context a hot single statement (a read by primary key,
// a guarded one-row insert) runs under: ctx without its cancellation. Under
// a cancellable context, every statement costs arca-api three goroutine
// hand-offs: database/sql starts a goroutine per result set to watch the
// context, and the driver wakes its per-connection watcher at the start and
// the end of each statement. That was about a tenth of arca-api's CPU per
// secret payload read (docs/benchmarks.md, issue 21). These statements take
// well under a millisecond; a client that went away waits for nothing, and a
// database that stops answering is still cut off by the driver's read and
// write timeouts (internal/dbconn). A context already done is kept, so that
// the statement fails at once as before. Errors are still classified
// against ctx itself (unavailable).
func uncancelled(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
