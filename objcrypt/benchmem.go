package objcrypt

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
)

// Memory per stream: what one Writer and one Reader allocate for an
// object, beside the bound the format and the buffers in flight set. The
// package's test checks it; make bench's speed report prints it (both
// through StreamMemory and StreamBounds).

// streamSlack is what a stream allocates besides its segment buffers, a
// constant whatever the object's size: the header, the wrapped key, the
// cipher, MAC and MD5 states (one MAC per window slot for a reader) and
// the trailer, about 10 KiB. It is well under one segment, so a stream
// holding one segment buffer more than its bound fails the check.
const streamSlack = 32 << 10

// heapSize is what the heap hands out for a buffer of n bytes larger than
// 32 KiB: whole 8 KiB pages (a 64 KiB frame of 65,584 bytes takes 72 KiB).
func heapSize(n int64) uint64 { return uint64((n + 8191) &^ 8191) }

// StreamBounds are the most bytes one stream may allocate with segments of
// segSize bytes and a Reader decrypting on par cores, from the format and
// the buffers each side keeps in flight. A Writer that seals one segment
// at a time keeps two plaintext segments (one filling, one being hashed)
// and two frames (one being written, one being hashed); one that seals
// groups of maxWriterLanes segments together (with the AES-NI layer, no
// decorators) keeps a group of plaintext segments, a group of frames and
// a spare frame (the previous group's last, being hashed). A Reader keeps one window of segments in flight, each slot with
// its frame and its plaintext: windowSlotsPerCore slots per decrypting
// core, at most maxWindowSegs and at most maxWindowBytes of plaintext.
func StreamBounds(segSize, par int) (enc, dec uint64) {
	s := int64(segSize)
	slot := heapSize(s) + heapSize(frameLen(s))
	win := min(max(windowSlotsPerCore*par, 2), maxWindowSegs, maxWindowBytes/segSize)
	lanes := int64(defaultWriterLanes())
	enc = 2*heapSize(s) + 2*heapSize(frameLen(s))
	if lanes > 1 {
		enc = uint64(lanes)*heapSize(s) + heapSize(lanes*frameLen(s)) + heapSize(frameLen(s))
	}
	return enc + streamSlack, uint64(win)*slot + streamSlack
}

// defaultWriterLanes is how many segments a Writer with the default
// options seals together on this machine.
func defaultWriterLanes() int {
	return writerLanes(&objectKeys{fast: newFastCBC(make([]byte, 16))}, nil)
}

// allocated returns the bytes f allocated on the heap. The buffer pools
// are emptied first, so a stream pays for the buffers it takes instead of
// reusing those an earlier stream gave back; the pools for the sizes a
// stream takes are created before, as a process creates them once, so
// their per-CPU slots are not counted.
func allocated(f func()) uint64 {
	sizes := []int{DefaultSegmentSize}
	for k := 1; k <= defaultWriterLanes(); k++ { // a group's frames, the last one shorter
		sizes = append(sizes, k*int(frameLen(DefaultSegmentSize)))
	}
	emptyPools(sizes...)
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

// StreamMemory encrypts size bytes of generated plaintext into f through
// one Writer with options o (the caller's Observer included: its states
// count for the stream), decrypts f back through one Reader, checks the
// round trip, and returns the bytes each stream allocated. Neither the
// plaintext nor the stored object is ever in memory whole.
//
// It does so twice and keeps the smaller figures: the first pass also
// fills the runtime's own caches (the wait-queue entries of channels and
// WaitGroups, which a collection empties), which belong to the process,
// not to a stream.
func StreamMemory(f *os.File, size int64, o WriterOptions) (enc, dec uint64, err error) {
	enc, dec = ^uint64(0), ^uint64(0)
	for range 2 {
		e, d, err := streamMemoryOnce(f, size, o)
		if err != nil {
			return 0, 0, err
		}
		enc, dec = min(enc, e), min(dec, d)
	}
	return enc, dec, nil
}

func streamMemoryOnce(f *os.File, size int64, o WriterOptions) (enc, dec uint64, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("objcrypt: stream memory: %w", err)
	}
	plainSum, outSum := sha256.New(), sha256.New()
	gen := io.TeeReader(newGenReader(size), plainSum)
	var w *Writer
	var encErr error
	enc = allocated(func() {
		if w, encErr = NewWriter(f, benchKey, benchPath, &o); encErr != nil {
			return
		}
		if _, encErr = w.ReadFrom(gen); encErr != nil {
			return
		}
		encErr = w.Close()
	})
	if encErr != nil {
		return 0, 0, fmt.Errorf("objcrypt: stream memory: encrypting: %w", encErr)
	}
	md := w.Metadata()
	if md.PlaintextLength != size {
		return 0, 0, fmt.Errorf("objcrypt: stream memory: wrote %d bytes of plaintext, want %d", md.PlaintextLength, size)
	}
	var n int64
	var decErr error
	dec = allocated(func() {
		var r *Reader
		if r, decErr = NewReader(f, md.StoredLength, benchKey, benchPath, nil); decErr != nil {
			return
		}
		n, decErr = r.WriteTo(outSum)
	})
	if decErr != nil {
		return 0, 0, fmt.Errorf("objcrypt: stream memory: decrypting: %w", decErr)
	}
	if n != size || !bytes.Equal(outSum.Sum(nil), plainSum.Sum(nil)) {
		return 0, 0, fmt.Errorf("objcrypt: stream memory: decrypted %d bytes, not the %d written", n, size)
	}
	return enc, dec, nil
}

// genReader yields size bytes of noise without holding them: it cycles
// through a block of random bytes whose length is not a multiple of the
// segment size, so no two segments are alike.
type genReader struct {
	block []byte
	pos   int
	left  int64
}

func newGenReader(size int64) *genReader {
	b := make([]byte, 100003)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(b)
	return &genReader{block: b, left: size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	n := 0
	for n < len(p) {
		c := copy(p[n:], g.block[g.pos:])
		n += c
		g.pos = (g.pos + c) % len(g.block)
	}
	g.left -= int64(n)
	return n, nil
}
