// Package testdb provisions throw-away databases for tests: a SQLite file
// in the test's temporary directory, or a uniquely named database on the
// real MariaDB/MySQL server (ARCA_TEST_MYSQL_DSN, default
// root@tcp(127.0.0.1:3306)/), dropped when the test ends.
//
// Databases are opened through package dbconn, with the very settings
// production uses. MySQL and SQLite return them migrated to the latest
// schema; RawMySQL and RawSQLite return them empty, for migration tests.
//
// When the server cannot be reached the test is skipped with a message,
// or fails if ARCA_REQUIRE_STACK=1 (as in make test, which starts the
// stack). It is a test helper only: nothing outside _test.go files should
// import it.
package testdb
