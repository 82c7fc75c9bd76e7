package objcrypt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"opendev.org/x/arca/internal/bufpool"
)

// ReaderOptions configure a Reader; nil means the defaults.
type ReaderOptions struct {
	// KeyID and WrappedKey, when WrappedKey is set, replace the key part of
	// the file header: after a Rewrap they come from the object's metadata.
	KeyID      string
	WrappedKey []byte
	// Parallelism is how many goroutines decrypt segments of one read
	// window at once; 0 means GOMAXPROCS, 1 means on the caller's goroutine
	// only.
	Parallelism int
	// ETagKeys has NewReader derive the object's ETag keys as well
	// (Reader.ETagKeys): two HKDFs more, for callers that show the ETag.
	ETagKeys bool
	// DataKeys, when they were opened (OpenDataKeys) from this object's
	// project key, key id, wrapped key and path and for its algorithm,
	// replace unwrapping and deriving. Any other DataKeys are ignored and
	// the data key is unwrapped as without them. NewReader copies what it
	// takes: the caller may wipe them once it returns.
	DataKeys *DataKeys
}

// smallObjectRead is the largest stored object NewReader reads whole at
// once (one segment of the default size and the header and trailer).
const smallObjectRead = 64<<10 + 4096

// maxWindowBytes bounds the plaintext one Reader buffers per read window.
const maxWindowBytes = 1 << 20

// maxWindowSegs bounds the segments of one read window.
const maxWindowSegs = 8

// windowSlotsPerCore is how many segments a read window holds per
// decrypting core (up to maxWindowSegs). Segments are opened two at a time
// (their MACs computed together), so with two slots per core each core
// opened one pair per window, and waking the helpers and waiting for the
// last of them cost about as much as the pair: four give each core two
// pairs (16 MiB range on two cores: 2,284 → 2,788–2,961 MB/s with the
// frames read by each core, docs/benchmarks.md).
const windowSlotsPerCore = 4

// unitReadMin is the smallest window whose frames the decrypting
// goroutines read themselves, each those of the segments it opens; a
// smaller one is read in one call.
const unitReadMin = 2 * (DefaultSegmentSize + ivLen + macLen)

// Reader decrypts a stored object read through an io.ReaderAt. NewReader
// authenticates the header, the data key and the trailer (hence the
// plaintext length) before returning; each segment is authenticated before
// any of its plaintext is returned. A Reader reads the whole object unless
// Range narrows it, and can be re-ranged any number of times (multi-range
// GETs reuse its buffers).
//
// When Read returns an error other than io.EOF, the bytes returned before it
// were authentic but the object is not: the caller must not present the
// partial stream as complete (an object server aborts the response).
//
// A Reader is not safe for concurrent use; run one per stream.
type Reader struct {
	ra         io.ReaderAt
	size       int64
	hdr        *header
	layout     Layout
	keys       *objectKeys
	etagKeys   *ETagKeys
	plainLen   int64
	nseg       int64
	dataStart  int64
	frameOff   []int64 // decorated objects: where each frame starts (len nseg+1)
	bodyLen    []uint32
	decorators []Decorator
	par        int

	window []slot
	// stored is the whole object when it is in memory (NewReaderBytes):
	// the window's frames are slices of it, and ctBuf is not needed.
	stored []byte
	ctBuf  []byte
	// fillFrom is where the window's first frame starts in the object:
	// ctBuf[k] holds the object's byte fillFrom+k.
	fillFrom int64
	// readEach: each unit's frames are read by the goroutine opening it
	// (readUnit), rather than the whole window by fill.
	readEach bool
	// trailerSt is the segment state readTrailer used, kept for the
	// window's first slot.
	trailerSt *segState
	first     int64 // segment index of window[0]
	filled    int   // valid slots in window
	// units are the window's work items: unit u is slots
	// [units[u], units[u+1]), one segment or two opened together
	// (segState.openPair); nunits of them.
	units  [maxWindowSegs + 1]int
	nunits int
	next   atomic.Int32
	wg     sync.WaitGroup
	helper readHelper

	pos, end int64  // plaintext still to deliver: [pos, end)
	cur      []byte // decrypted bytes ready at pos
	err      error
}

// NewReader opens the object of size bytes behind ra, stored at path, with
// the project key. It reads the header and the trailer, and fails with
// ErrWrongKey, ErrKeyUnwrap, ErrTampered, ErrTruncated or ErrUnsupported
// before returning any plaintext.
func NewReader(ra io.ReaderAt, size int64, key ProjectKey, path string, opts *ReaderOptions) (*Reader, error) {
	if size < fixedHeaderLen+trailerLen {
		return nil, fmt.Errorf("%w: object is %d bytes", ErrTruncated, size)
	}
	if size <= smallObjectRead {
		// Header, trailer and frames of a small object in one read
		// instead of four.
		buf := make([]byte, size)
		if err := readFull(ra, buf, 0); err != nil {
			return nil, err
		}
		return NewReaderBytes(buf, key, path, opts)
	}
	return newReader(ra, size, nil, key, path, opts)
}

// NewReaderBytes is NewReader over a stored object held whole in memory
// (a small data file an object server has read already): its frames are
// decrypted from stored where they are, not copied into a buffer of the
// Reader's. stored is only read, and must not change while the Reader is
// in use.
func NewReaderBytes(stored []byte, key ProjectKey, path string, opts *ReaderOptions) (*Reader, error) {
	size := int64(len(stored))
	if size < fixedHeaderLen+trailerLen {
		return nil, fmt.Errorf("%w: object is %d bytes", ErrTruncated, size)
	}
	return newReader(bytes.NewReader(stored), size, stored, key, path, opts)
}

// newReader is NewReader; stored, when not nil, is the whole object ra
// reads.
func newReader(ra io.ReaderAt, size int64, stored []byte, key ProjectKey, path string, opts *ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	var prefix [fixedHeaderLen]byte
	if err := readFull(ra, prefix[:], 0); err != nil {
		return nil, err
	}
	hl, err := headerLenPrefix(prefix[:])
	if err != nil {
		return nil, err
	}
	if int64(hl)+trailerLen > size {
		return nil, fmt.Errorf("%w: object is %d bytes, header alone %d", ErrTruncated, size, hl)
	}
	hb := make([]byte, hl)
	if err := readFull(ra, hb, 0); err != nil {
		return nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	keyID, wrapped := h.keyID, h.wrapped
	if o.WrappedKey != nil {
		keyID, wrapped = o.KeyID, o.WrappedKey
	}
	var keys *objectKeys
	var etagKeys *ETagKeys
	if o.DataKeys.matches(key, keyID, path, wrapped, h.alg) {
		keys, etagKeys, err = o.DataKeys.objectKeys(hb[:h.formatLen()], o.ETagKeys)
	} else {
		keys, etagKeys, err = openObjectKeys(key, keyID, path, wrapped, h.alg, hb[:h.formatLen()], o.ETagKeys)
	}
	if err != nil {
		return nil, err
	}
	r := &Reader{
		ra:         ra,
		stored:     stored,
		size:       size,
		hdr:        h,
		keys:       keys,
		etagKeys:   etagKeys,
		dataStart:  int64(hl),
		decorators: h.decorators,
		layout: Layout{
			HeaderLen:   int64(hl),
			SegmentSize: int64(h.segmentSize),
			Decorated:   len(h.decorators) > 0,
			decorators:  len(h.decorators),
		},
	}
	r.helper.r = r
	if err := r.readTrailer(); err != nil {
		return nil, err
	}
	r.par = o.Parallelism
	if r.par <= 0 {
		r.par = runtime.GOMAXPROCS(0)
	}
	r.end = r.plainLen
	return r, nil
}

func readFull(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: short read at %d", ErrTruncated, off)
	}
	return fmt.Errorf("objcrypt: reading object at %d: %w", off, err)
}

// readTrailer authenticates the plaintext length (and the index) and checks
// that the object's size is exactly what they imply.
func (r *Reader) readTrailer() error {
	var tail [trailerLen]byte
	if err := readFull(r.ra, tail[:], r.size-trailerLen); err != nil {
		return err
	}
	plainLen := int64(binary.BigEndian.Uint64(tail[:8]))
	segSize := r.layout.SegmentSize
	// Bound everything the unauthenticated length implies by what is on
	// disk before allocating for it: a frame is at least 64 bytes.
	room := r.size - r.dataStart - trailerLen
	if plainLen < 0 || plainLen > maxSegments*segSize {
		return fmt.Errorf("%w: trailer (plaintext length)", ErrTampered)
	}
	nseg := r.layout.Segments(plainLen)
	minFrame := int64(ivLen + 16 + macLen)
	if r.layout.Decorated {
		minFrame += indexEntry
	}
	if nseg*minFrame > room {
		return fmt.Errorf("%w: trailer (plaintext length %d in %d bytes)", ErrTampered, plainLen, r.size)
	}
	var index []byte
	if r.layout.Decorated {
		index = make([]byte, nseg*indexEntry)
		if err := readFull(r.ra, index, r.size-trailerLen-int64(len(index))); err != nil {
			return err
		}
	}
	st := newSegState(r.keys)
	if !hmacEqual(st.trailerMAC(plainLen, index), tail[8:]) {
		return fmt.Errorf("%w: trailer (truncated, extended or altered object)", ErrTampered)
	}
	r.trailerSt = st // the window's first slot takes it (setupWindow)
	r.plainLen, r.nseg = plainLen, nseg
	if !r.layout.Decorated {
		if want := r.layout.EncryptedSize(plainLen); want != r.size {
			return fmt.Errorf("%w: object is %d bytes, format says %d", ErrTampered, r.size, want)
		}
		return nil
	}
	r.frameOff = make([]int64, nseg+1)
	r.bodyLen = make([]uint32, nseg)
	off := r.dataStart
	for i := range nseg {
		b := binary.BigEndian.Uint32(index[4*i:])
		_, want := r.layout.SegmentOffset(plainLen, i)
		if b < 1 || int64(b) > r.layout.maxBody(want) {
			return fmt.Errorf("%w: index entry %d", ErrTampered, i)
		}
		r.frameOff[i] = off
		r.bodyLen[i] = b
		off += frameLen(int64(b))
	}
	r.frameOff[nseg] = off
	if off+int64(len(index))+trailerLen != r.size {
		return fmt.Errorf("%w: object is %d bytes, index says %d", ErrTampered, r.size, off+int64(len(index))+trailerLen)
	}
	return nil
}

// Size is the authenticated plaintext length.
func (r *Reader) Size() int64 { return r.plainLen }

// Layout is the layout of the object as its header describes it.
func (r *Reader) Layout() Layout { return r.layout }

// ETagKeys are the object's ETag keys when ReaderOptions.ETagKeys asked
// for them, else nil.
func (r *Reader) ETagKeys() *ETagKeys { return r.etagKeys }

// KeyID is the key id recorded in the file header.
func (r *Reader) KeyID() string { return r.hdr.keyID }

// Range makes the Reader deliver plaintext bytes [off, off+length) next;
// a range reaching past the end is cut at the end. Only the segments
// covering the range are read and decrypted.
func (r *Reader) Range(off, length int64) error {
	if errors.Is(r.err, ErrClosed) {
		return ErrClosed
	}
	if off < 0 || length < 0 || off > r.plainLen {
		return fmt.Errorf("%w: range %d+%d of %d bytes", ErrInvalid, off, length, r.plainLen)
	}
	r.pos, r.end = off, off+min(length, r.plainLen-off)
	r.cur = nil
	r.err = nil
	return nil
}

// Read reads decrypted plaintext of the current range.
func (r *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.cur) == 0 {
			if err := r.load(); err != nil {
				if n > 0 && errors.Is(err, io.EOF) {
					return n, nil
				}
				return n, err
			}
		}
		c := copy(p[n:], r.cur)
		r.cur = r.cur[c:]
		r.pos += int64(c)
		n += c
	}
	return n, nil
}

// WriteTo writes the rest of the current range to w without an extra
// copy; io.Copy uses it.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) == 0 {
			if err := r.load(); err != nil {
				if errors.Is(err, io.EOF) {
					return total, nil
				}
				return total, err
			}
		}
		c, err := w.Write(r.cur)
		r.cur = r.cur[c:]
		r.pos += int64(c)
		total += int64(c)
		if err != nil {
			return total, err
		}
	}
}

// load makes r.cur the decrypted bytes at r.pos, decrypting the next
// window of segments when r.pos has left the current one.
func (r *Reader) load() error {
	if r.err != nil {
		return r.err
	}
	if r.pos >= r.end {
		return io.EOF
	}
	seg := r.pos / r.layout.SegmentSize
	if seg < r.first || seg >= r.first+int64(r.filled) {
		if err := r.fill(seg); err != nil {
			r.err = err
			return err
		}
	}
	s := &r.window[seg-r.first]
	if s.err != nil {
		r.err = s.err
		return s.err
	}
	segStart := seg * r.layout.SegmentSize
	from := r.pos - segStart
	to := min(int64(len(s.out)), r.end-segStart)
	r.cur = s.out[from:to]
	return nil
}

// Close wipes the plaintext the Reader holds and gives its buffers back
// for other Readers to use; Read, WriteTo and Range fail with ErrClosed
// afterwards. Bytes Read copied out are the caller's. A Reader that is
// never closed holds nothing but memory: the garbage collector takes it,
// plaintext included.
func (r *Reader) Close() error {
	if errors.Is(r.err, ErrClosed) {
		return nil
	}
	for i := range r.window {
		s := &r.window[i]
		clear(s.pt)
		for _, b := range s.scratch { // a decorated object's undone plaintext
			clear(b[:cap(b)])
		}
		bufpool.Put(s.ptBuf)
		s.pt, s.ptBuf, s.scratch, s.out = nil, nil, nil, nil
	}
	r.window, r.filled, r.cur = nil, 0, nil
	r.err = ErrClosed
	return nil
}

func hmacEqual(a, b []byte) bool {
	return len(a) == len(b) && subtleEqual(a, b)
}

// openObjectKeys unwraps an object's data key and derives its keys from
// one HKDF-Extract (dataPRK): the segment keys and, when withETag, the
// ETag keys. The data key and PRK are wiped before it returns.
func openObjectKeys(key ProjectKey, keyID, path string, wrapped []byte, alg Algorithm, formatPart []byte, withETag bool) (*objectKeys, *ETagKeys, error) {
	dataKey, err := unwrapKey(key, keyID, path, wrapped)
	if err != nil {
		return nil, nil, err
	}
	prk, err := dataPRK(dataKey)
	clear(dataKey)
	if err != nil {
		return nil, nil, err
	}
	defer clear(prk)
	keys, err := newObjectKeys(prk, alg, formatPart)
	if err != nil || !withETag {
		return keys, nil, err
	}
	etagKeys, err := newETagKeysPRK(prk)
	return keys, etagKeys, err
}
