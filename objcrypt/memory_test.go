package objcrypt

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// streamSlack is what a stream allocates besides its segment buffers, a
// constant whatever the object's size: the header, the wrapped key, the
// cipher, MAC and MD5 states (one MAC per window slot for a reader) and
// the trailer, about 10 KiB. It is well under one segment, so a stream
// holding one segment buffer more than its bound fails the check.
const streamSlack = 32 << 10

// heapSize is what the heap hands out for a buffer of n bytes larger than
// 32 KiB: whole 8 KiB pages (a 64 KiB frame of 65,584 bytes takes 72 KiB).
func heapSize(n int64) uint64 { return uint64((n + 8191) &^ 8191) }

// streamBounds are the most bytes one stream may allocate, from the
// format and the buffers each side keeps in flight. A Writer keeps two
// plaintext segments (one filling, one being hashed) and two frames (one
// being written, one being hashed). A Reader keeps one window of segments
// in flight, each slot with its frame and its plaintext: two slots per
// decrypting core, at most 8 and at most maxWindowBytes of plaintext.
func streamBounds(segSize, par int) (enc, dec uint64) {
	s := int64(segSize)
	slot := heapSize(s) + heapSize(frameLen(s))
	win := min(max(2*par, 2), 8, maxWindowBytes/segSize)
	return 2*slot + streamSlack, uint64(win)*slot + streamSlack
}

// allocated returns the bytes f allocated on the heap. The buffer pools
// are emptied first, so a stream pays for the buffers it takes instead of
// reusing those an earlier stream gave back; the pools for the sizes a
// stream takes are created before, as a process creates them once, so
// their per-CPU slots are not counted.
func allocated(f func()) uint64 {
	emptyPools(DefaultSegmentSize, int(frameLen(DefaultSegmentSize)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// emptyPools leaves an empty buffer pool for each size. A buffer put into a
// new pool to create it must come back out, or it could be left in another
// CPU's slot for the stream to reuse: then it starts again.
func emptyPools(sizes ...int) {
	for done := false; !done; {
		bufPools.Clear()
		done = true
		for _, n := range sizes {
			b := make([]byte, n)
			putBuf(b)
			if &getBuf(n)[0] != &b[0] {
				done = false
			}
		}
	}
}

// streamMemory encrypts size bytes of generated plaintext into a file
// through one Writer, decrypts the file through one Reader into MD5, and
// returns the bytes each stream allocated. Neither the plaintext nor the
// stored object is ever in memory whole.
//
// It does so twice and keeps the smaller figures: the first pass also
// fills the runtime's own caches (the wait-queue entries of channels and
// WaitGroups, which a collection empties), which belong to the process,
// not to a stream.
func streamMemory(t testing.TB, size int64) (enc, dec uint64) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "object"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc, dec = ^uint64(0), ^uint64(0)
	for range 2 {
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		gen := newGenReader(size)
		obs := newMD5Observer(false)
		var w *Writer
		var encErr error
		e := allocated(func() {
			w, encErr = NewWriter(f, testKey, testPath, &WriterOptions{Observer: obs})
			if encErr != nil {
				return
			}
			if _, encErr = w.ReadFrom(gen); encErr != nil {
				return
			}
			encErr = w.Close()
		})
		if encErr != nil {
			t.Fatal(encErr)
		}
		md := w.Metadata()
		if md.PlaintextLength != size {
			t.Fatalf("wrote %d bytes of plaintext, want %d", md.PlaintextLength, size)
		}
		h := md5.New()
		var n int64
		var decErr error
		d := allocated(func() {
			var r *Reader
			if r, decErr = NewReader(f, md.StoredLength, testKey, testPath, nil); decErr != nil {
				return
			}
			n, decErr = r.WriteTo(h)
		})
		if decErr != nil {
			t.Fatal(decErr)
		}
		if n != size || hex.EncodeToString(h.Sum(nil)) != obs.plainSum() {
			t.Fatalf("decrypted %d bytes, not the %d written", n, size)
		}
		enc, dec = min(enc, e), min(dec, d)
	}
	return enc, dec
}

// TestStreamMemoryBounded checks "memory bounded by a few segments per
// stream": encrypting and then decrypting a 64 MiB object allocates no
// more than the segment buffers each side keeps in flight and a constant.
// It is not timed, and runs under the race detector too (which does not
// change what the heap hands out).
func TestStreamMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB through a file twice")
	}
	enc, dec := streamMemory(t, 64<<20)
	encMax, decMax := streamBounds(DefaultSegmentSize, runtime.GOMAXPROCS(0))
	t.Logf("64 MiB object: encrypt %d bytes (bound %d), decrypt %d bytes (bound %d)", enc, encMax, dec, decMax)
	if enc > encMax {
		t.Errorf("encrypting 64 MiB allocated %d bytes, bound %d (2 plaintext segments + 2 frames + %d)", enc, encMax, streamSlack)
	}
	if dec > decMax {
		t.Errorf("decrypting 64 MiB allocated %d bytes, bound %d (a window of segments and frames + %d)", dec, decMax, streamSlack)
	}
}
