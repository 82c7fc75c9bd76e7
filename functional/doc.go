// Package functional holds Arca's end-to-end scenario suite (issue 8):
// TestFunctionalEndToEnd drives the whole flow on the project's real stack
// (tools/stack.sh: Keystone, MariaDB, Swift's account and container servers)
// with the real CLIs (openstack, swift, arca-manage), as a newcomer would:
// arca-api registered in a private catalog region, a private Swift proxy
// behind arca-swift-filter, two arca-object-servers on their own devices in
// a 2-replica object ring. Everything it starts runs on free loopback ports
// and is stopped by PID; its catalog entries and database are removed.
// TestRollingUpgradeRealStack upgrades such a deployment (three object
// servers, two arca-api behind a switch) from an earlier release built from
// its commit to this checkout while clients store and read secrets and
// objects, and fails on a single failed request.
//
// Run it with "make functional" (the stack comes up first) or
//
//	eval "$(tools/stack.sh env)"; go test -run Functional ./functional/
//
// It is not a benchmark and not a unit test: each step checks behaviour a
// user can see (status codes, checksums, bytes on disk, catalog entries).
package functional
