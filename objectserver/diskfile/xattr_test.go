package diskfile

import (
	"crypto/md5" //nolint:gosec // G501: Swift's metadata checksum
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/pickle"
)

// writeChunked stores meta as Python Swift 2.x did: the pickle in chunks
// of size bytes under user.swift.metadata, ...1, ...2 (ext4 keeps all of
// a file's xattrs in one block, so chunks of Arca's 64 KiB cannot be
// made here).
func writeChunked(t *testing.T, f *os.File, meta map[string]string, size int) {
	t.Helper()
	data, err := pickle.Encode(meta)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data) //nolint:gosec // G401: Swift's metadata checksum
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), size)
		if err := unix.Fsetxattr(int(f.Fd()), chunkKey(i), data[:n], 0); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := unix.Fsetxattr(int(f.Fd()), metadataChecksumKey, []byte(hex.EncodeToString(sum[:])), 0); err != nil {
		t.Fatal(err)
	}
}

// TestMetadataRoundTrip: what writeMetadata (or Swift, in chunks) stores,
// readMetadata returns, for one chunk and several, non-ASCII values and
// non-ASCII keys.
func TestMetadataRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   map[string]string // raw header bytes, as the server holds them
		chunk int               // 0: writeMetadata, else Swift-style chunks of this size
	}{
		{"small", map[string]string{"name": "/a/c/o", "Content-Type": "text/plain", "X-Timestamp": "1700000000.00000"}, 0},
		{"latin-1 value", map[string]string{"name": "/a/c/o", "X-Object-Meta-Fruit": "\xc3\xbc and \xff"}, 0},
		{"latin-1 key", map[string]string{"name": "/a/c/o", "X-Object-Meta-\xfc": "v", "X-Object-Meta-Plain": "\xe9"}, 0},
		{"two kilobytes", map[string]string{"name": "/a/c/o", "X-Object-Meta-Big": strings.Repeat("x", 2000)}, 0},
		{"swift chunks", map[string]string{"name": "/a/c/o", "X-Object-Meta-Long": strings.Repeat("y", 600), "X-Object-Meta-Fruit": "\xc3\xbc"}, 254},
		{"swift chunks, latin-1 key", map[string]string{"name": "/a/c/o", "X-Object-Meta-\xfc": strings.Repeat("z", 300)}, 254},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			stored := map[string]string{}
			for k, v := range tc.raw {
				stored[toStored(k)] = toStored(v)
			}
			if tc.chunk == 0 {
				if err := writeMetadata(f, stored); err != nil {
					t.Fatal(err)
				}
			} else {
				writeChunked(t, f, stored, tc.chunk)
			}
			got, err := readMetadata(int(f.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.raw) {
				t.Errorf("read %q, want %q", got, tc.raw)
			}
		})
	}
}

// TestMetadataChecksumMismatch: a checksum that does not match is bad
// metadata (the caller quarantines), whatever the chunk count.
func TestMetadataChecksumMismatch(t *testing.T) {
	for _, chunk := range []int{0, 254} {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		meta := map[string]string{"name": "/a/c/o", "X-Object-Meta-A": strings.Repeat("a", 600)}
		if chunk == 0 {
			if err := writeMetadata(f, meta); err != nil {
				t.Fatal(err)
			}
		} else {
			writeChunked(t, f, meta, chunk)
		}
		if err := unix.Fsetxattr(int(f.Fd()), metadataChecksumKey, []byte("00000000000000000000000000000000"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := readMetadata(int(f.Fd())); !errors.Is(err, errBadMetadata) {
			t.Errorf("chunks of %d: %v, want errBadMetadata", chunk, err)
		}
		f.Close()
	}
}
