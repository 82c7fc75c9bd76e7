package objcrypt

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

var defaultRand io.Reader = rand.Reader

// WriterOptions configure a Writer. The zero value (or nil) means AES-128-CBC,
// 64 KiB segments, no decorators, no observer, crypto/rand.
type WriterOptions struct {
	Algorithm   Algorithm
	SegmentSize int
	// Decorators are applied to each segment in order before encryption.
	Decorators []Decorator
	// Observer, when set, is handed every byte of plaintext and of output.
	Observer Observer
	// Rand supplies the data key, the key-wrap nonce and every IV. Tests
	// inject a deterministic reader; production leaves it nil.
	Rand io.Reader
}

// Writer encrypts a plaintext stream into the stored object format. Write
// plaintext, then Close; Close writes the trailer and makes Metadata
// available. An Observer, when set, sees the plaintext and the output on
// another core while this goroutine encrypts, when the process has one to
// spare, and on this goroutine otherwise.
//
// Full segments are sealed together, up to maxWriterLanes at a time, when
// the AES-NI layer can encrypt their chains at once (cbcEncryptLanes) and
// no decorator is set; otherwise one at a time. Either way the output is
// the same, byte for byte.
//
// A Writer is not safe for concurrent use. Its buffers are a ring of
// plaintext segments (one group being filled: maxWriterLanes segments, or
// two when sealing one at a time) and buffers of frames: sealing groups,
// one group's and one spare frame (the previous group's last frame, still
// being observed while the next group is encrypted, is copied there);
// sealing one at a time, two frames (one being written, one being
// observed). They are taken when first needed (an object of one segment
// uses one of each) from a pool that Close returns them to; in steady
// state Write allocates nothing.
type Writer struct {
	out        io.Writer
	rnd        io.Reader
	hdr        []byte
	keys       *objectKeys
	etagKeys   *ETagKeys
	seg        *segState
	meta       Metadata
	layout     Layout
	decorators []Decorator
	scratch    [][]byte

	// lanes is how many segments are sealed together: a group.
	lanes int
	// pt is the ring of plaintext segment buffers, ringLen of them:
	// segment i of the object is filled in pt[i%ringLen]. A segment is
	// observed when the next one starts (the group's last one when the
	// group is sealed), so by the time the ring comes round to it again
	// it is observed and encrypted.
	pt      [maxWriterLanes][]byte
	ringLen int
	// ct holds a group of frames, end to end: with one segment a group,
	// ct[ctCur] is being written and the other observed; with groups,
	// ct[0] is the group's and ct[1] the spare frame.
	ct [2][]byte
	// segSize and frameCap are the sizes of a pt buffer and of one frame.
	segSize, frameCap int
	ctCur             int
	fill              int // segment of the group being filled (segment idx+fill)
	n                 int // bytes in it
	bodies            [maxWriterLanes][]byte
	index             []byte
	peek              [1]byte // ReadFrom's look-ahead at a segment boundary
	// prevFrames is the last group of frames written; the observer has
	// seen prevFrames[:prevOff] of it.
	prevFrames []byte
	prevOff    int

	idx           int64
	plainLen      int64
	stored        int64
	obs           Observer
	job           observeJob
	pending       bool
	streaming     bool // counted in streaming (observe.go)
	done          chan struct{}
	headerWritten bool
	closed        bool
	err           error
}

// maxWriterLanes is how many full segments a Writer seals together with
// the AES-NI layer: four chains interleaved encrypt about four times as
// fast as one (docs/benchmarks.md), for two more plaintext segments and
// three more frames than sealing one at a time (four plaintext segments,
// four frames and a spare one instead of two and two: about 320 KiB more
// with 64 KiB segments). Eight would save little more for twice that.
const maxWriterLanes = 4

// writerLanes is how many segments a Writer with keys k and decorators
// seals together: decorators compress each segment into one scratch
// buffer, and the standard library's CBC gains nothing from a group.
func writerLanes(k *objectKeys, decorators []Decorator) int {
	if k.fast == nil || len(decorators) > 0 {
		return 1
	}
	return maxWriterLanes
}

// NewWriter returns a Writer that encrypts for the object at path (for
// example "/AUTH_p/c/o") under the project key, writing to out. Nothing is
// written before the first Write or Close.
func NewWriter(out io.Writer, key ProjectKey, path string, opts *WriterOptions) (*Writer, error) {
	o, err := writerOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	dataKey := make([]byte, dataKeyLen)
	defer clear(dataKey)
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
	prk, err := dataPRK(dataKey)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	keys, err := newObjectKeys(prk, h.alg, hdr[:h.formatLen()])
	if err != nil {
		return nil, err
	}
	etagKeys, err := newETagKeysPRK(prk)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		etagKeys:   etagKeys,
		out:        out,
		rnd:        o.Rand,
		hdr:        hdr,
		keys:       keys,
		seg:        newSegState(keys),
		decorators: h.decorators,
		obs:        o.Observer,
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
	w.setLanes(writerLanes(keys, h.decorators))
	w.layout = w.meta.Layout()
	w.segSize = o.SegmentSize
	w.frameCap = int(frameLen(w.layout.maxBody(int64(o.SegmentSize))))
	w.scratch = make([][]byte, len(h.decorators))
	for i := range w.scratch {
		w.scratch[i] = make([]byte, 0, o.SegmentSize+len(h.decorators)+64)
	}
	return w, nil
}

// setLanes sets how many segments are sealed together (1 to
// maxWriterLanes); only before the first Write.
func (w *Writer) setLanes(n int) {
	w.lanes = n
	w.ringLen = max(n, 2)
}

// writerOptions checks opts and fills in the defaults.
func writerOptions(opts *WriterOptions) (WriterOptions, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Algorithm == 0 {
		o.Algorithm = AES128CBC
	}
	if !o.Algorithm.valid() {
		return o, fmt.Errorf("%w: algorithm %v", ErrInvalid, o.Algorithm)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if err := checkSegmentSize(o.SegmentSize); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(o.Decorators) > maxDecorators {
		return o, fmt.Errorf("%w: %d decorators", ErrInvalid, len(o.Decorators))
	}
	for i, d := range o.Decorators {
		if d != Zstd || slices.Contains(o.Decorators[:i], d) {
			return o, fmt.Errorf("%w: decorator %v", ErrInvalid, d)
		}
	}
	if o.Rand == nil {
		o.Rand = defaultRand
	}
	return o, nil
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
		buf := w.fillBuf()
		// A full segment is sealed only once more data arrives: until then
		// it may be the last one, and the MAC says which.
		if w.n == len(buf) {
			if err := w.next(); err != nil {
				return total, err
			}
			buf = w.fillBuf()
		}
		c := copy(buf[w.n:], p)
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
		buf := w.fillBuf()
		if w.n == len(buf) {
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
			if err := w.next(); err != nil {
				return total, err
			}
			buf = w.fillBuf()
			buf[0] = w.peek[0]
			w.n = 1
			total++
		}
		c, err := r.Read(buf[w.n:])
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

// fillBuf is the buffer of the segment being filled, taken when first
// needed.
func (w *Writer) fillBuf() []byte {
	return w.ptBuf(w.fill)
}

// ptBuf is the buffer of segment idx+i.
func (w *Writer) ptBuf(i int) []byte {
	slot := int((w.idx + int64(i)) % int64(w.ringLen))
	if w.pt[slot] == nil {
		w.pt[slot] = getBuf(w.segSize)
	}
	return w.pt[slot]
}

// next moves on from a full segment, more data having arrived: to the
// next segment of the group, the full one going to the observer, or, when
// the group is full, by sealing it.
func (w *Writer) next() error {
	if w.fill+1 == w.lanes {
		return w.flush(false)
	}
	if err := w.writeHeader(); err != nil { // the header is observed first
		return err
	}
	if err := w.checkSegments(w.fill + 2); err != nil {
		return err
	}
	w.wait()
	w.observe(w.fillBuf()[:w.n], false)
	w.fill++
	w.n = 0
	return nil
}

// release returns the buffers to the pool; no observe job may be in flight.
func (w *Writer) release() {
	w.stopStreaming()
	for i := range w.pt {
		putBuf(w.pt[i])
		w.pt[i] = nil
	}
	for i := range w.ct {
		putBuf(w.ct[i])
		w.ct[i] = nil
	}
	w.prevFrames = nil
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
	if w.obs != nil {
		w.obs.Observe(nil, w.hdr) // before any observe job: stream order
	}
	return w.writeOut(w.hdr)
}

// checkSegments fails when an object would have more than maxSegments
// segments with segs more after segment idx-1.
func (w *Writer) checkSegments(segs int) error {
	if w.idx+int64(segs) > maxSegments {
		w.err = fmt.Errorf("%w: object exceeds %d segments", ErrInvalid, maxSegments)
		return w.err
	}
	return nil
}

// flush seals the group, segments idx to idx+fill, and writes its frames.
// The group's last plaintext segment goes to the observer before
// encryption starts, so observing and encrypting overlap; the stored
// bytes, which need the frames, are observed one group behind.
func (w *Writer) flush(last bool) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	segs := w.fill + 1
	if err := w.checkSegments(segs); err != nil {
		return err
	}
	w.wait() // the previous job read a pt buffer and the frames reused below
	// The last segment, when the observer would see it on this goroutine
	// anyway, is observed after sealing, together with its own frames: an
	// object of one segment then hands the observer its plaintext and its
	// stored bytes in one call (objectserver's etag hashes the two in one
	// two-lane MD5 pass, and one stream alone at the cost of both). What
	// the observer has yet to see of the stored stream goes first, so
	// either stream is seen in order.
	var late []byte
	if last && w.obs != nil && w.n <= inlineObserveMax {
		late = w.fillBuf()[:w.n]
		if rest := w.prevFrames[w.prevOff:]; len(rest) > 0 {
			w.obs.Observe(nil, rest)
		}
		w.prevFrames, w.prevOff = nil, 0
	} else {
		w.keepObserved()
		w.observe(w.fillBuf()[:w.n], true)
	}
	bodies := w.bodies[:segs]
	size, plain := 0, 0
	for i := range bodies {
		pt := w.ptBuf(i)
		if i == w.fill {
			pt = pt[:w.n]
		}
		plain += len(pt)
		body := pt
		if len(w.decorators) > 0 { // one segment a group: scratch is free
			var err error
			if body, err = decorate(w.decorators, w.scratch, pt); err != nil {
				w.err = err
				return err
			}
			w.index = binary.BigEndian.AppendUint32(w.index, uint32(len(body)))
		}
		bodies[i] = body
		size += int(frameLen(int64(len(body))))
	}
	frames, err := w.frameBuf(size, segs)
	if err != nil {
		return err
	}
	frames = w.seg.sealFrames(frames, bodies, w.idx, last)
	clear(bodies)
	if err := w.writeOut(frames); err != nil {
		return err
	}
	switch {
	case late != nil:
		w.obs.Observe(late, frames)
	case w.obs != nil:
		w.prevFrames, w.prevOff = frames, 0
	}
	w.plainLen += int64(plain)
	w.idx += int64(segs)
	if w.lanes == 1 {
		w.ctCur ^= 1
	}
	w.fill, w.n = 0, 0
	return nil
}

// frameBuf returns the group's frame buffer, size bytes, with each frame's
// IV read from the random source in segment order (as the format has
// always drawn them).
func (w *Writer) frameBuf(size, segs int) ([]byte, error) {
	if cap(w.ct[w.ctCur]) < size {
		putBuf(w.ct[w.ctCur])
		w.ct[w.ctCur] = getBuf(segs * w.frameCap)
	}
	frames := w.ct[w.ctCur][:size]
	for off, i := 0, 0; i < segs; i++ {
		if _, err := io.ReadFull(w.rnd, frames[off:off+ivLen]); err != nil {
			w.err = fmt.Errorf("objcrypt: reading randomness: %w", err)
			return nil, w.err
		}
		off += int(frameLen(int64(len(w.bodies[i]))))
	}
	return frames, nil
}

// Abort abandons the stream without writing more (a PUT whose body
// failed): it waits for the observer, returns the buffers and takes the
// Writer out of the count of streams being written (observe.go). After
// it, Write and Close return ErrClosed; after Close it does nothing.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.err = ErrClosed
	w.wait()
	w.release()
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
	if w.obs != nil && w.prevOff < len(w.prevFrames) {
		w.obs.Observe(nil, w.prevFrames[w.prevOff:])
	}
	w.release()
	trailer := make([]byte, 0, len(w.index)+trailerLen)
	trailer = append(trailer, w.index...)
	trailer = binary.BigEndian.AppendUint64(trailer, uint64(w.plainLen))
	trailer = append(trailer, w.seg.trailerMAC(w.plainLen, w.index)...)
	if w.obs != nil {
		w.obs.Observe(nil, trailer)
	}
	if err := w.writeOut(trailer); err != nil {
		return err
	}
	w.meta.PlaintextLength = w.plainLen
	w.meta.StoredLength = w.stored
	return nil
}

// ETagKeys are the keys to seal the object's ETag with (SPEC.md,
// "Metadata"), derived from its data key.
func (w *Writer) ETagKeys() *ETagKeys { return w.etagKeys }

// Metadata returns the object's metadata; complete only after Close
// returned nil.
func (w *Writer) Metadata() Metadata {
	m := w.meta
	m.Decorators = slices.Clone(m.Decorators)
	m.WrappedKey = slices.Clone(m.WrappedKey)
	return m
}
