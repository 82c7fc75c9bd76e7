package objcrypt

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
)

var defaultRand io.Reader = rand.Reader

// WriterOptions configure a Writer. The zero value (or nil) means AES-128-CBC,
// 64 KiB segments, no decorators, no stored MD5, crypto/rand.
type WriterOptions struct {
	Algorithm   Algorithm
	SegmentSize int
	// Decorators are applied to each segment in order before encryption.
	Decorators []Decorator
	// StoredMD5 also computes the MD5 of the bytes written (for Swift's
	// auditor). It costs a second MD5 pass; ask only if it is needed.
	StoredMD5 bool
	// Rand supplies the data key, the key-wrap nonce and every IV. Tests
	// inject a deterministic reader; production leaves it nil.
	Rand io.Reader
}

// Writer encrypts a plaintext stream into the stored object format. Write
// plaintext, then Close; Close writes the trailer and makes Metadata
// available. The MD5 of the plaintext (and optionally of the output) is
// computed on another core while this goroutine encrypts.
//
// A Writer is not safe for concurrent use. Its buffers are two segments of
// plaintext and two of ciphertext, taken when first needed (an object of
// one segment uses one of each) from a pool that Close returns them to; in
// steady state Write allocates nothing.
type Writer struct {
	out        io.Writer
	rnd        io.Reader
	hdr        []byte
	keys       *objectKeys
	seg        *segState
	meta       Metadata
	layout     Layout
	decorators []Decorator
	scratch    [][]byte

	pt [2][]byte // plaintext segments: one filling, one being hashed
	ct [2][]byte // frames: one being written, one being hashed
	// segSize and frameCap are the sizes of pt and ct buffers.
	segSize, frameCap int
	cur               int
	n                 int // bytes in pt[cur]
	index             []byte
	iv                [ivLen]byte
	peek              [1]byte // ReadFrom's look-ahead at a segment boundary
	// prevFrame is the last frame written, not yet in the stored MD5.
	prevFrame []byte

	idx           int64
	plainLen      int64
	stored        int64
	ptMD5, ctMD5  hash.Hash
	pair          *[2]*md5d // ptMD5 and ctMD5 when both are kept
	job           hashJob
	pending       bool
	done          chan struct{}
	headerWritten bool
	closed        bool
	err           error
}

// hashJob hashes one segment's plaintext (and the previous segment's frame)
// on the pool while the writer encrypts. At most one is in flight per writer, which
// keeps the hashes in stream order.
type hashJob struct {
	w      *Writer
	pt, ct []byte
}

func (j *hashJob) run() {
	j.hash()
	j.w.done <- struct{}{}
}

func (j *hashJob) hash() {
	if j.w.pair != nil {
		md5Pair(j.w.pair[0], j.w.pair[1], j.pt, j.ct)
		return
	}
	j.w.ptMD5.Write(j.pt)
	if len(j.ct) > 0 {
		j.w.ctMD5.Write(j.ct)
	}
}

// inlineHashMax is the largest segment the writer hashes itself rather
// than on the pool.
const inlineHashMax = 16 << 10

// NewWriter returns a Writer that encrypts for the object at path (for
// example "/AUTH_p/c/o") under the project key, writing to out. Nothing is
// written before the first Write or Close.
func NewWriter(out io.Writer, key ProjectKey, path string, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Algorithm == 0 {
		o.Algorithm = AES128CBC
	}
	if !o.Algorithm.valid() {
		return nil, fmt.Errorf("%w: algorithm %v", ErrInvalid, o.Algorithm)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if err := checkSegmentSize(o.SegmentSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(o.Decorators) > maxDecorators {
		return nil, fmt.Errorf("%w: %d decorators", ErrInvalid, len(o.Decorators))
	}
	for i, d := range o.Decorators {
		if d != Zstd || slices.Contains(o.Decorators[:i], d) {
			return nil, fmt.Errorf("%w: decorator %v", ErrInvalid, d)
		}
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if o.Rand == nil {
		o.Rand = defaultRand
	}

	dataKey := make([]byte, dataKeyLen)
	if _, err := io.ReadFull(o.Rand, dataKey); err != nil {
		return nil, fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	wrapped, err := wrapKey(key, path, dataKey, o.Rand)
	if err != nil {
		return nil, err
	}
	h := &header{
		alg:         o.Algorithm,
		segmentSize: o.SegmentSize,
		decorators:  slices.Clone(o.Decorators),
		keyID:       key.ID,
		wrapped:     wrapped,
	}
	hdr := appendHeader(nil, h)
	keys, err := newObjectKeys(dataKey, h.alg, hdr[:h.formatLen()])
	clear(dataKey)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		out:        out,
		rnd:        o.Rand,
		hdr:        hdr,
		keys:       keys,
		seg:        newSegState(keys),
		decorators: h.decorators,
		ptMD5:      md5.New(),
		done:       make(chan struct{}, 1),
		meta: Metadata{
			Version:     Version,
			Algorithm:   h.alg,
			SegmentSize: h.segmentSize,
			Decorators:  h.decorators,
			KeyID:       key.ID,
			WrappedKey:  wrapped,
		},
	}
	w.job.w = w
	w.layout = w.meta.Layout()
	if o.StoredMD5 {
		// Both streams through one two-lane MD5: about a third less CPU
		// than two crypto/md5 passes.
		pt, ct := newMD5d(), newMD5d()
		w.pair = &[2]*md5d{pt, ct}
		w.ptMD5, w.ctMD5 = pt, ct
	}
	w.segSize = o.SegmentSize
	w.frameCap = int(frameLen(w.layout.maxBody(int64(o.SegmentSize))))
	w.scratch = make([][]byte, len(h.decorators))
	for i := range w.scratch {
		w.scratch[i] = make([]byte, 0, o.SegmentSize+len(h.decorators)+64)
	}
	return w, nil
}

// Layout returns the layout of the object being written.
func (w *Writer) Layout() Layout { return w.layout }

// Write encrypts p. Errors are sticky: after one, the output is unusable.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	total := 0
	for len(p) > 0 {
		w.ensurePT()
		// A full segment is sealed only once more data arrives: until then
		// it may be the last one, and the MAC says which.
		if w.n == len(w.pt[w.cur]) {
			if err := w.flush(false); err != nil {
				return total, err
			}
			w.ensurePT()
		}
		c := copy(w.pt[w.cur][w.n:], p)
		w.n += c
		total += c
		p = p[c:]
	}
	return total, nil
}

// ReadFrom reads plaintext from r until EOF straight into the segment
// buffers, saving io.Copy a copy.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	var total int64
	for {
		w.ensurePT()
		if w.n == len(w.pt[w.cur]) {
			// Peek one byte before sealing, for the same reason as in Write.
			// It goes in the Writer: a local would escape to the heap
			// through the io.Reader, once per segment.
			c, err := io.ReadFull(r, w.peek[:])
			if c == 0 {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					return total, nil
				}
				return total, err
			}
			if err := w.flush(false); err != nil {
				return total, err
			}
			w.ensurePT()
			w.pt[w.cur][0] = w.peek[0]
			w.n = 1
			total++
		}
		c, err := r.Read(w.pt[w.cur][w.n:])
		w.n += c
		total += int64(c)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// ensurePT gives the segment being filled its buffer.
func (w *Writer) ensurePT() {
	if w.pt[w.cur] == nil {
		w.pt[w.cur] = getBuf(w.segSize)
	}
}

// release returns the buffers to the pool; no hash job may be in flight.
func (w *Writer) release() {
	for i := range 2 {
		putBuf(w.pt[i])
		putBuf(w.ct[i])
		w.pt[i], w.ct[i] = nil, nil
	}
	w.prevFrame = nil
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *Writer) writeOut(b []byte) error {
	if _, err := w.out.Write(b); err != nil {
		w.err = fmt.Errorf("objcrypt: writing object: %w", err)
		return w.err
	}
	w.stored += int64(len(b))
	return nil
}

func (w *Writer) writeHeader() error {
	if w.headerWritten {
		return nil
	}
	w.headerWritten = true
	if w.ctMD5 != nil {
		w.ctMD5.Write(w.hdr) // before any hash job: stream order
	}
	return w.writeOut(w.hdr)
}

// wait waits for the hash job in flight, if any.
func (w *Writer) wait() {
	if w.pending {
		<-w.done
		w.pending = false
	}
}

// flush seals pt[cur] as segment idx and writes it. The segment's
// plaintext goes to the pool for MD5 before encryption starts, so hashing
// and encryption of the same segment overlap; the stored MD5, which needs
// the frame, trails by one segment.
func (w *Writer) flush(last bool) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	if w.idx >= maxSegments {
		w.err = fmt.Errorf("%w: object exceeds %d segments", ErrInvalid, maxSegments)
		return w.err
	}
	w.wait() // the previous job read the other pt buffer and the ct buffer reused below
	pt := w.pt[w.cur][:w.n]
	if w.n <= inlineHashMax {
		// A short (last) segment is hashed here: handing it to the pool
		// costs more than it saves, and small objects are mostly that.
		w.job.pt, w.job.ct = pt, w.prevFrame
		w.job.hash()
	} else {
		w.job.pt, w.job.ct = pt, w.prevFrame
		w.pending = true
		submit(&w.job)
	}
	if w.ct[w.cur] == nil {
		w.ct[w.cur] = getBuf(w.frameCap)
	}

	body := pt
	if len(w.decorators) > 0 {
		var err error
		if body, err = decorate(w.decorators, w.scratch, pt); err != nil {
			w.err = err
			return err
		}
		w.index = binary.BigEndian.AppendUint32(w.index, uint32(len(body)))
	}
	if _, err := io.ReadFull(w.rnd, w.iv[:]); err != nil {
		w.err = fmt.Errorf("objcrypt: reading randomness: %w", err)
		return w.err
	}
	frame := w.seg.seal(w.ct[w.cur], body, w.iv[:], w.idx, last)
	if err := w.writeOut(frame); err != nil {
		return err
	}
	if w.ctMD5 != nil {
		w.prevFrame = frame
	}
	w.plainLen += int64(w.n)
	w.idx++
	w.cur ^= 1
	w.n = 0
	return nil
}

// Close seals the last segment, writes the trailer and completes the
// metadata. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		w.wait()
		w.release()
		return w.err
	}
	var err error
	if w.n > 0 {
		err = w.flush(true)
	} else {
		err = w.writeHeader()
	}
	w.wait()
	if err != nil {
		w.release()
		return err
	}
	if w.prevFrame != nil {
		w.ctMD5.Write(w.prevFrame)
	}
	w.release()
	trailer := make([]byte, 0, len(w.index)+trailerLen)
	trailer = append(trailer, w.index...)
	trailer = binary.BigEndian.AppendUint64(trailer, uint64(w.plainLen))
	trailer = append(trailer, w.seg.trailerMAC(w.plainLen, w.index)...)
	if w.ctMD5 != nil {
		w.ctMD5.Write(trailer)
	}
	if err := w.writeOut(trailer); err != nil {
		return err
	}
	w.meta.PlaintextLength = w.plainLen
	w.meta.PlaintextMD5 = hex.EncodeToString(w.ptMD5.Sum(nil))
	w.meta.StoredLength = w.stored
	if w.ctMD5 != nil {
		w.meta.StoredMD5 = hex.EncodeToString(w.ctMD5.Sum(nil))
	}
	return nil
}

// Metadata returns the object's metadata; complete only after Close
// returned nil.
func (w *Writer) Metadata() Metadata {
	m := w.meta
	m.Decorators = slices.Clone(m.Decorators)
	m.WrappedKey = slices.Clone(m.WrappedKey)
	return m
}
