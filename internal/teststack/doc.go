// Package teststack is the real-stack harness shared by the project's
// tests: the parts of a private deployment that tests build on top of the
// loopback Keystone, Swift and MariaDB that tools/stack.sh starts.
//
// It starts daemons in process groups of their own and stops them when the
// test ends (Start, Proc), keeps their output goroutine-safe and shows it
// when a test fails (LogBuffer, NewLog), waits for their health checks,
// runs command-line tools (Run), writes Swift rings and configurations
// (WriteRings, ProxyConfig, ObjectServerConfig), brings up two
// arca-object-servers behind a private swift-proxy-server (StartCluster),
// and those with an arca-api of their own for the object tier's tests
// (StartObjectStack).
// Keystone itself is package testkeystone's, arca-api package testapi's.
//
// Where the stack is missing, RequireStack skips the test, or fails it when
// ARCA_REQUIRE_STACK=1 (make test, CI), so nothing is silently skipped
// where the stack is supposed to be up.
//
// It is test support: import it only from _test.go files.
package teststack
