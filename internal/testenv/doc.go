// Package testenv is the one test environment of the project's tests: the
// real stack that tools/stack.sh starts (Keystone, Swift, MariaDB) and the
// private parts tests build on top of it. By concern:
//
//   - stack.go: StackMissing, the one switch for "the stack must be there":
//     a test that finds a part of the stack missing calls it and is skipped,
//     or fails when ARCA_REQUIRE_STACK=1 (make test, CI), so nothing is
//     silently skipped where the stack is supposed to be up. SwiftDir and
//     RequireTools go through it; RandomHex tags one test's names (regions,
//     users, databases, containers) apart from another's.
//   - keystone.go: the stack's Keystone (LoadKeystone, set by
//     eval "$(tools/stack.sh env)"): tokens for its users (UserAdmin,
//     UserDemo, UserAlt, UserArca, UserArcaObject, UserArcaFilter), the
//     [keystone_authtoken] and openrc for them, a domain user of a test's
//     own, a service user of a test's own with the roles it names
//     (keystone_service_user.go) and the removal of a test's private
//     catalog region.
//   - db.go: throw-away databases, SQLite or uniquely named on the real
//     MariaDB/MySQL (ARCA_TEST_MYSQL_DSN, default root@tcp(127.0.0.1:3306)/),
//     opened through package dbconn with production's settings.
//   - mariadb.go: a private mariadbd for tests that must crash the database
//     itself (the shared server serves concurrent runs and is never killed).
//   - proxy.go: a TCP proxy a test cuts and restores, as a dead network would,
//     or redirects to another backend, as a load balancer would.
//   - api.go: the binaries under cmd/, built once per test binary, and real
//     arca-api processes (StartAPI) configured and migrated with arca-manage
//     as an operator would; release.go, the binaries of an earlier commit
//     (ReleaseBinaries), for the rolling upgrade from it.
//   - proc.go, run.go: daemons in process groups of their own stopped when
//     the test ends (StartProc), goroutine-safe logs shown when a test fails,
//     command-line tools run to completion (Run, RunOutputs).
//   - swift.go, objectstack.go: Swift rings and configurations, a private
//     object tier of arca-object-servers (two unless told) behind a
//     swift-proxy-server (StartCluster), each restarted on another build
//     by Cluster.Restart, and with an arca-api of its own
//     (StartObjectStack).
//   - swiftcrypt.go: Swift's own encryption (keymaster + encryption) in
//     a private proxy's pipeline (WithSwiftEncryption,
//     ClusterOptions.SwiftEncryption), from swift-encryption.conf, which
//     tools/bench-report.sh reads too.
//   - wholepath.go: a proxy configuration with every middleware a Swift
//     client's requests reach (WholePathProxyConfig, StartWholePathProxy),
//     the same for two object tiers compared, and arca-swift-filter in
//     front of a proxy (StartSwiftFilter).
//   - pipeline.go: the pipeline shape: a proxy with the arca middleware
//     in its pipeline (PipelineProxyConfig, StartPipelineProxy) and
//     arca-swift-filter serving its decision socket (StartDecisionSocket).
//   - keystone_project.go: a project of a test's own with a user holding
//     one role on it (NewProjectUser), e.g. a reader Swift refuses writes.
//   - pyobject.go: Debian's Python swift-object-server, the reference the
//     object server is compared and measured against
//     (StartPythonObjectServer).
//
// It is test support: import it only from _test.go files.
package testenv
