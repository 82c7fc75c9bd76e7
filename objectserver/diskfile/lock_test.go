package diskfile

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPartitionLockReleased: invalidate takes the partition's flock (as
// Swift's daemons do) and leaves it free for another process once done,
// with the suffix appended to hashes.invalid; a lock another holder has
// makes lockPartition wait.
func TestPartitionLockReleased(t *testing.T) {
	m := &Manager{}
	part := filepath.Join(t.TempDir(), "objects", "7")
	for _, suffix := range []string{"abc", "0f1"} {
		if err := m.invalidate(part, suffix); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(filepath.Join(part, partitionLock), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatalf("after invalidate the partition lock is still held: %v", err)
		}
		_ = unix.Close(fd)
	}
	b, err := os.ReadFile(filepath.Join(part, invalidsFile))
	if err != nil || string(b) != "abc\n0f1\n" {
		t.Fatalf("hashes.invalid %q, %v", b, err)
	}

	// held elsewhere: lockPartition waits for it
	fd, err := unix.Open(filepath.Join(part, partitionLock), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		unlock, err := lockPartition(part)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("lockPartition returned (%v) while another holder had the lock", err)
	default:
	}
	_ = unix.Close(fd) // releases it
	if err := <-got; err != nil {
		t.Fatalf("lockPartition after the release: %v", err)
	}
}
