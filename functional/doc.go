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
// TestSwiftDiffWholePath (swiftdiff_*_test.go) is the whole-path
// differential harness: a corpus of request scripts (data, in
// swiftdiff_corpus_test.go) sent as a Keystone user through both shapes of
// arca (arca-swift-filter in front of a Swift proxy; the arca middleware in
// a Swift proxy's pipeline), each to arca-object-servers, and through a
// Swift proxy of the same configuration to the stack's Python object
// servers; each shape's answers are compared with Swift's and every
// difference must be listed, with its reason and the shapes it holds for,
// in swiftdiff_explained_test.go (docs/compatibility.md for those kept on
// purpose). TestFunctionalEndToEnd, TestKeyServiceOutageRealStack,
// TestKeyLifecycleRealStack and TestDiskScanWholePath run through both
// shapes too (envOptions.shape). TestRollingUpgradeRealStack runs the
// reverse-proxy shape only: the release it upgrades from has no pipeline
// shape (its doc comment says what a pipeline upgrade test needs).
//
// It is not a benchmark and not a unit test: each step checks behaviour a
// user can see (status codes, checksums, bytes on disk, catalog entries).
package functional
