package diskfile

import (
	"errors"
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

// TestObjectToReadDevice: ObjectToRead leaves the device's stat to Open,
// which still answers ErrDeviceUnavailable for a device that is missing or
// not a directory, NotFoundError for a missing object on a device that is
// there, and the object when it is there; with mount_check the device is
// checked at once, as by Object.
func TestObjectToReadDevice(t *testing.T) {
	m := newManager(t)
	d, err := m.Object("d1", "5", 0, "a", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "1700000000.00000.data", "body", map[string]string{"Content-Length": "4"})
	if err := os.WriteFile(filepath.Join(m.Devices, "afile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, device, object string
		mountCheck           bool
		wantDev, wantFound   bool
	}{
		{"found", "d1", "o", false, false, true},
		{"not found", "d1", "other", false, false, false},
		{"missing device", "d9", "o", false, true, false},
		{"device is a file", "afile", "o", false, true, false},
		{"mount_check, not a mount", "d1", "o", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := &Manager{Devices: m.Devices, Hasher: m.Hasher, ReclaimAge: m.ReclaimAge, NoFsync: true, MountCheck: tc.mountCheck}
			df, err := mm.ObjectToRead(tc.device, "5", 0, "a", "c", tc.object)
			if err == nil {
				var obj *Object
				obj, err = df.Open()
				if err == nil {
					defer obj.Close()
				}
			}
			var nf *NotFoundError
			switch {
			case tc.wantDev && !errors.Is(err, ErrDeviceUnavailable):
				t.Fatalf("got %v, want ErrDeviceUnavailable", err)
			case !tc.wantDev && tc.wantFound && err != nil:
				t.Fatalf("got %v, want the object", err)
			case !tc.wantDev && !tc.wantFound && !errors.As(err, &nf):
				t.Fatalf("got %v, want NotFoundError", err)
			}
		})
	}
}
