package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The catalog's key-manager services are a name every test shares: the
// service type. A test that registers a key-manager service of its own
// name in a region of its own (arca-manage register --name, as functional/
// and keyservice's register tests do) does not disturb another doing the
// same, but DevStack's get_or_create_service, which the DevStack plugin test
// runs, looks the service up by type: finding exactly one, another test's,
// it would put its endpoints on a service that test then deletes ("No
// service with a type, name or ID of '…' exists"). So tests that create
// key-manager services hold the catalog lock shared, and a test that looks
// one up by type holds it exclusively. The lock is a file lock (flock) named
// after the Keystone URL, so it holds across the test binaries that go test
// runs in parallel, and is released when the test ends, after the cleanups
// registered later (which remove the services) have run.

// ShareKeyManagers takes the catalog lock shared, for a test that creates
// key-manager services of names of its own (and removes them). Call it
// before registering the cleanup that removes them.
func (e *KeystoneEnv) ShareKeyManagers(t testing.TB) { e.lockCatalog(t, syscall.LOCK_SH) }

// OwnKeyManagers takes the catalog lock exclusively, for a test that looks
// key-manager services up by type: while it runs, no other test's
// key-manager service comes or goes. Call it before registering the
// cleanup that removes what the test created.
func (e *KeystoneEnv) OwnKeyManagers(t testing.TB) { e.lockCatalog(t, syscall.LOCK_EX) }

func (e *KeystoneEnv) lockCatalog(t testing.TB, how int) {
	t.Helper()
	sum := sha256.Sum256([]byte(e.URL))
	path := filepath.Join(os.TempDir(), "arca-test-catalog-"+hex.EncodeToString(sum[:6])+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("testenv: catalog lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		t.Logf("testenv: waiting for the catalog lock %s (another test changes the key-manager services)", path)
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			_ = f.Close()
			t.Fatalf("testenv: catalog lock %s: %v", path, err)
		}
	}
	// Closing the file releases the lock.
	t.Cleanup(func() { _ = f.Close() })
}
