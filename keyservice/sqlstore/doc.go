// Package sqlstore implements keyservice.Store on database/sql, for
// MySQL/MariaDB (production, any number of arca-api processes sharing one
// database or Galera cluster) and SQLite (the embedded default).
//
// Concurrency is handled by the database, never by table locks: unique keys
// decide races between creators (the loser gets keyservice.ErrConflict) and
// conditional UPDATEs (WHERE old-value) implement compare-and-swap. SQL is
// built only from constant fragments and whitelisted column names; every
// value travels as a placeholder argument.
//
// Times are stored in UTC with microsecond precision: DATETIME(6) on MySQL,
// fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff' TEXT on SQLite (which orders and
// compares correctly as text). Everything the store returns is in UTC and
// truncated to microseconds, and the structs passed to Create* are
// normalised the same way, so a caller holds exactly what a re-read yields.
//
// One file per resource, as keyservice.Store is one interface per resource
// (secrets.go, metadata.go, orders.go, keks.go, projectkeys.go, audit.go,
// containers.go, acls.go, consumers.go, quotas.go). Every statement runs
// through conn (conn.go), which turns a database outage into
// keyservice.ErrUnavailable where the error is produced (unavailable.go), so
// no method needs a wrapper of its own to answer 503 rather than 500.
//
// The schema is owned by package migrations; the database handle comes from
// package dbconn, whose connection settings (UTC, utf8mb4, client found
// rows, SQLite pragmas) this package expects.
package sqlstore
