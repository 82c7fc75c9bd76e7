// Package migrations holds Arca's SQL schema, one folder per dialect
// (mysql/, sqlite/), embedded into every binary, and applies it with
// github.com/golang-migrate/migrate/v4.
//
// Both folders carry the same version numbers, so a version means the same
// schema on either database. A MySQL file holds exactly one DDL statement:
// MySQL commits DDL implicitly, so a file with two statements could fail
// half-applied and leave the schema in a state no version describes. SQLite
// files may hold several statements; they run in one transaction.
//
// Adding a schema change is adding a file pair per dialect:
// NNNNNN_what.up.sql and NNNNNN_what.down.sql. Latest follows the files.
//
// The version is recorded by golang-migrate in schema_migrations. Check
// reads it without changing anything, so arca-api can refuse to serve on
// an out-of-date or dirty schema; only Up, Down, Steps and Force write.
//
// This package knows the schema, not how to query it (package sqlstore),
// nor how to open a database (package dbconn).
package migrations
