package objcrypt

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

var defaultRand io.Reader = rand.Reader

// Observer sees an object's bytes as a Writer produces them: the plaintext
// and the bytes written out, each in stream order (a caller hashes them,
// for example). Observe is called with the next plaintext and the next
// stored bytes, either possibly empty. Calls never overlap, but may come
// from another goroutine than the Writer's caller: a segment's plaintext
// and the previous segment's stored bytes are observed while the Writer
// encrypts, so observing costs another core's time rather than the
// caller's. The slices are valid only during the call.
type Observer interface {
	Observe(plain, stored []byte)
}

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
// another core while this goroutine encrypts.
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
	etagKeys   *ETagKeys
	seg        *segState
	meta       Metadata
	layout     Layout
	decorators []Decorator
	scratch    [][]byte

	pt [2][]byte // plaintext segments: one filling, one being observed
	ct [2][]byte // frames: one being written, one being observed
	// segSize and frameCap are the sizes of pt and ct buffers.
	segSize, frameCap int
	cur               int
	n                 int // bytes in pt[cur]
	index             []byte
	iv                [ivLen]byte
	peek              [1]byte // ReadFrom's look-ahead at a segment boundary
	// prevFrame is the last frame written, not yet observed.
	prevFrame []byte

	idx           int64
	plainLen      int64
	stored        int64
	obs           Observer
	job           observeJob
	pending       bool
	done          chan struct{}
	headerWritten bool
	closed        bool
	err           error
}

// observeJob hands one segment's plaintext (and the previous segment's
// frame) to the observer on the pool while the writer encrypts. At most
// one is in flight per writer, which keeps the observer's calls in stream
// order.
type observeJob struct {
	w      *Writer
	pt, ct []byte
}

func (j *observeJob) run() {
	j.w.obs.Observe(j.pt, j.ct)
	j.w.done <- struct{}{}
}

// inlineObserveMax is the largest segment the writer observes itself
// rather than on the pool.
const inlineObserveMax = 16 << 10

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
	w.layout = w.meta.Layout()
	w.segSize = o.SegmentSize
	w.frameCap = int(frameLen(w.layout.maxBody(int64(o.SegmentSize))))
	w.scratch = make([][]byte, len(h.decorators))
	for i := range w.scratch {
		w.scratch[i] = make([]byte, 0, o.SegmentSize+len(h.decorators)+64)
	}
	return w, nil
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

// release returns the buffers to the pool; no observe job may be in flight.
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
	if w.obs != nil {
		w.obs.Observe(nil, w.hdr) // before any observe job: stream order
	}
	return w.writeOut(w.hdr)
}

// wait waits for the observe job in flight, if any.
func (w *Writer) wait() {
	if w.pending {
		<-w.done
		w.pending = false
	}
}

// flush seals pt[cur] as segment idx and writes it. The segment's
// plaintext goes to the pool for the observer before encryption starts, so
// observing and encrypting the same segment overlap; the stored bytes,
// which need the frame, are observed one segment behind.
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
	w.observe(pt)
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
	if w.obs != nil {
		w.prevFrame = frame
	}
	w.plainLen += int64(w.n)
	w.idx++
	w.cur ^= 1
	w.n = 0
	return nil
}

// observe hands the segment's plaintext and the previous frame to the
// observer: on the pool, or here for a short (last) segment, where handing
// it over costs more than it saves (and small objects are mostly that).
func (w *Writer) observe(pt []byte) {
	if w.obs == nil {
		return
	}
	if len(pt) <= inlineObserveMax {
		w.obs.Observe(pt, w.prevFrame)
		return
	}
	w.job.pt, w.job.ct = pt, w.prevFrame
	w.pending = true
	submit(&w.job)
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
		w.obs.Observe(nil, w.prevFrame)
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
