package diskfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPartitionFilesNotFollowed: someone with the disk plants the
// partition's .lock and hashes.invalid as symbolic links to files outside
// the devices. Invalidating a suffix (every PUT and DELETE, a REPLICATE
// naming suffixes) appended to the target, and a plain REPLICATE emptied
// it: any file the server's user may write, its own configuration
// included. The links are not followed; the operations fail, the targets
// are untouched.
func TestPartitionFilesNotFollowed(t *testing.T) {
	for _, planted := range []string{partitionLock, invalidsFile} {
		t.Run(planted, func(t *testing.T) {
			m := newManager(t)
			outside := filepath.Join(t.TempDir(), "object-server.conf")
			const content = "[DEFAULT]\nkept = as it was\n"
			if err := os.WriteFile(outside, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			part := filepath.Join(m.Devices, "d1", "objects", "7")
			if err := os.MkdirAll(part, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(part, planted)); err != nil {
				t.Fatal(err)
			}
			if err := m.Invalidate("d1", "7", 0, []string{"abc"}); err == nil {
				t.Error("invalidating a suffix through a planted link succeeded")
			}
			if _, err := m.GetHashes(context.Background(), "d1", "7", 0, nil); err == nil {
				t.Error("hashing the partition through a planted link succeeded")
			}
			if got, err := os.ReadFile(outside); err != nil || string(got) != content {
				t.Fatalf("the file the link names: %q, %v", got, err)
			}
		})
	}
}
