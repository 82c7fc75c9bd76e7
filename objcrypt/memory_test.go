package objcrypt

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestStreamMemoryBounded checks "memory bounded by a few segments per
// stream": encrypting and then decrypting a 64 MiB object allocates no
// more than the segment buffers each side keeps in flight and a constant.
// It is not timed, and runs under the race detector too (which does not
// change what the heap hands out).
func TestStreamMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB through a file twice")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "object"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc, dec, err := StreamMemory(f, 64<<20, WriterOptions{Observer: newMD5Observer(false)})
	if err != nil {
		t.Fatal(err)
	}
	encMax, decMax := StreamBounds(DefaultSegmentSize, runtime.GOMAXPROCS(0))
	t.Logf("64 MiB object: encrypt %d bytes (bound %d), decrypt %d bytes (bound %d)", enc, encMax, dec, decMax)
	if enc > encMax {
		t.Errorf("encrypting 64 MiB allocated %d bytes, bound %d (2 plaintext segments + 2 frames + %d)", enc, encMax, streamSlack)
	}
	if dec > decMax {
		t.Errorf("decrypting 64 MiB allocated %d bytes, bound %d (a window of segments and frames + %d)", dec, decMax, streamSlack)
	}
}
