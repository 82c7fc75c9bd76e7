// Package testmariadb runs a private MariaDB server for fault tests that
// must crash the database itself: the shared server of the development
// stack (127.0.0.1:3306) serves concurrent test runs and must never be
// killed.
//
// Start creates a datadir under t.TempDir() with mariadb-install-db and
// starts mariadbd on it with --no-defaults, its own socket, a free loopback
// port, small buffers and --skip-grant-tables (root without a password);
// Kill sends it SIGKILL, Restart starts it again on the same datadir and
// port (InnoDB crash recovery), and the server is killed when the test
// ends. Durability settings are MariaDB's defaults
// (innodb_flush_log_at_trx_commit = 1), as in production.
//
// When the MariaDB binaries are not installed the test is skipped with a
// message, or fails if ARCA_REQUIRE_STACK=1 (as in make test, whose
// tools/stack.sh installs mariadb-server). It is a test helper only:
// nothing outside _test.go files should import it.
package testmariadb
