package objcrypt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
)

// span is a half-open byte range [off, end) of a stored object.
type span struct{ off, end int64 }

func (s span) String() string { return fmt.Sprintf("[%d,%d)", s.off, s.end) }

func (s span) within(outer span) bool { return s.off >= outer.off && s.end <= outer.end }

// readLog is an io.ReaderAt that records every read made through it.
type readLog struct {
	ra    io.ReaderAt
	mu    sync.Mutex
	reads []span
}

func (l *readLog) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	l.reads = append(l.reads, span{off, off + int64(len(p))})
	l.mu.Unlock()
	return l.ra.ReadAt(p, off)
}

// take returns the reads recorded since the last call and forgets them.
func (l *readLog) take() []span {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reads
	l.reads = nil
	return r
}

// frameSpans is where each segment's frame lies in a stored object,
// computed without the Reader: from the plaintext length alone through
// Layout for an undecorated object, from the index in the trailer for a
// decorated one. It also returns the trailer with the index, if any.
func frameSpans(t *testing.T, stored []byte, l Layout, plainLen int64) (frames []span, trailer span) {
	t.Helper()
	size := int64(len(stored))
	n := l.Segments(plainLen)
	trailer = span{size - trailerLen, size}
	if !l.Decorated {
		for i := range n {
			off, pl := l.SegmentOffset(plainLen, i)
			frames = append(frames, span{off, off + frameLen(pl)})
		}
	} else {
		trailer.off -= n * indexEntry
		index := stored[trailer.off : size-trailerLen]
		off := l.HeaderLen
		for i := range n {
			fl := frameLen(int64(binary.BigEndian.Uint32(index[indexEntry*i:])))
			frames = append(frames, span{off, off + fl})
			off += fl
		}
	}
	end := l.HeaderLen
	if n > 0 {
		end = frames[n-1].end
	}
	if end != trailer.off {
		t.Fatalf("frames end at %d, trailer starts at %d", end, trailer.off)
	}
	return frames, trailer
}

// union merges spans into sorted, disjoint ones.
func union(spans []span) []span {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	var out []span
	for _, x := range s {
		if x.end <= x.off {
			continue
		}
		if k := len(out) - 1; k >= 0 && x.off <= out[k].end {
			out[k].end = max(out[k].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

// TestRangeReadsOnlyCoveringSegments checks the range reader's I/O, not just
// its output: opening an object reads the header and the trailer (with the
// index) and nothing else, and a range reads exactly the frames of the
// segments that cover it, every one of them and not a byte more.
func TestRangeReadsOnlyCoveringSegments(t *testing.T) {
	const seg = 4096
	const nseg = 40
	const plainLen = (nseg-1)*seg + 1000 // the last segment is partial
	pt := payload(plainLen, 21)
	cases := []struct {
		name     string
		off, len int64
	}{
		{"start", 0, 100},
		{"first segment", 0, seg},
		{"last byte of a segment", seg - 1, 1},
		{"middle", 10*seg + 5, 300},
		{"across a boundary", 5*seg - 10, 20},
		{"single byte", 17 * seg, 1},
		{"several windows", 3*seg + 1, 12 * seg},
		{"end", plainLen - 10, 10},
		{"last partial segment", (nseg - 1) * seg, 1000},
		{"past the end", plainLen - 5, 100},
		{"whole object", 0, plainLen},
		{"empty", 7 * seg, 0},
		{"empty at the end", plainLen, 0},
	}
	for _, o := range []WriterOptions{
		{SegmentSize: seg},
		{SegmentSize: seg, Decorators: []Decorator{Zstd}},
	} {
		stored, md := seal(t, pt, testKey, testPath, &o)
		if len(stored) <= smallObjectRead {
			t.Fatalf("object of %d bytes is read whole; the test needs a larger one", len(stored))
		}
		l := md.Layout()
		frames, trailer := frameSpans(t, stored, l, plainLen)
		header := span{0, l.HeaderLen}
		size := int64(len(stored))
		name := "plain"
		if l.Decorated {
			name = "zstd"
		}
		for _, par := range []int{1, 2, 4} {
			// covering is the byte span of the frames of the segments
			// covering [off, off+n) clamped to the object.
			covering := func(off, n int64) (span, bool) {
				first, last, ok := l.SegmentsFor(off, min(n, plainLen-off))
				if !ok {
					return span{}, false
				}
				return span{frames[first].off, frames[last].end}, true
			}
			openLogged := func(t *testing.T) (*Reader, *readLog) {
				t.Helper()
				log := &readLog{ra: bytes.NewReader(stored)}
				r, err := NewReader(log, size, testKey, testPath, &ReaderOptions{Parallelism: par})
				if err != nil {
					t.Fatal(err)
				}
				for _, rd := range log.take() {
					if !rd.within(header) && !rd.within(trailer) {
						t.Fatalf("NewReader read %v, outside the header %v and the trailer %v", rd, header, trailer)
					}
				}
				return r, log
			}
			read := func(t *testing.T, r *Reader, off, n int64) {
				t.Helper()
				if err := r.Range(off, n); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				var err error
				if par == 2 {
					_, err = io.Copy(&got, r) // WriteTo
				} else {
					_, err = got.ReadFrom(struct{ io.Reader }{r}) // Read
				}
				end := min(off+n, plainLen)
				if err != nil || !bytes.Equal(got.Bytes(), pt[off:end]) {
					t.Fatalf("range %d+%d: %v, %d bytes, not the plaintext", off, n, err, got.Len())
				}
			}
			for _, c := range cases {
				t.Run(fmt.Sprintf("%s/par%d/%s", name, par, c.name), func(t *testing.T) {
					r, log := openLogged(t)
					read(t, r, c.off, c.len)
					reads := log.take()
					want, ok := covering(c.off, c.len)
					if !ok {
						if len(reads) > 0 {
							t.Fatalf("empty range read %v", reads)
						}
						return
					}
					for _, rd := range reads {
						if !rd.within(want) {
							t.Fatalf("read %v outside the covering frames %v (reads %v)", rd, want, reads)
						}
					}
					if u := union(reads); len(u) != 1 || u[0] != want {
						t.Fatalf("reads %v do not cover the frames %v", u, want)
					}
				})
			}
			// One Reader re-ranged through every case, as a multi-range GET
			// does: segments still in its window are not read again, and
			// nothing outside the covering frames is read.
			t.Run(fmt.Sprintf("%s/par%d/re-ranged", name, par), func(t *testing.T) {
				r, log := openLogged(t)
				for _, c := range append(slices.Clone(cases), cases...) {
					read(t, r, c.off, c.len)
					want, ok := covering(c.off, c.len)
					for _, rd := range log.take() {
						if !ok || !rd.within(want) {
							t.Fatalf("%s: read %v outside the covering frames %v", c.name, rd, want)
						}
					}
				}
			})
		}
	}
}

// A small object (at most smallObjectRead bytes stored) is read whole in one
// read when it is opened, instead of four (prefix, header, trailer, frames);
// ranges then read nothing more.
func TestRangeSmallObjectOneRead(t *testing.T) {
	pt := payload(3*1024+100, 22)
	stored, _ := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 1024})
	log := &readLog{ra: bytes.NewReader(stored)}
	r, err := NewReader(log, int64(len(stored)), testKey, testPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reads := log.take(); len(reads) != 1 || reads[0] != (span{0, int64(len(stored))}) {
		t.Fatalf("opening a small object read %v", reads)
	}
	for _, rg := range [][2]int64{{0, 5}, {1000, 100}, {0, int64(len(pt))}} {
		if err := r.Range(rg[0], rg[1]); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, pt[rg[0]:rg[0]+rg[1]]) {
			t.Fatalf("range %v: %v", rg, err)
		}
	}
	if reads := log.take(); len(reads) != 0 {
		t.Fatalf("ranges of a small object read %v", reads)
	}
}

// failingAt is an io.ReaderAt whose reads touching byte bad fail with err.
type failingAt struct {
	ra  io.ReaderAt
	bad int64
	err error
}

func (f failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off <= f.bad && f.bad < off+int64(len(p)) {
		return 0, f.err
	}
	return f.ra.ReadAt(p, off)
}

// TestReaderReadErrorMidWindow: decrypting on several cores, each reads
// the frames it opens, so a read that fails in the middle of a window
// fails only the segments it covers. The caller gets the plaintext before them, nothing
// of them or after them, and then the read's error (not io.EOF, not a
// short body taken as complete), whatever the parallelism.
func TestReaderReadErrorMidWindow(t *testing.T) {
	const segSize = DefaultSegmentSize // windows past unitReadMin
	pt := payload(40*segSize+123, 9)
	stored, _ := seal(t, pt, testKey, testPath, nil)
	l, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	frames, _ := frameSpans(t, stored, l.Layout(), int64(len(pt)))
	errDisk := errors.New("disk says no")
	for _, badSeg := range []int{0, 5, 6, 17, 40} {
		for _, par := range []int{1, 2, 3, 8} {
			t.Run(fmt.Sprintf("segment%d/par%d", badSeg, par), func(t *testing.T) {
				ra := failingAt{ra: bytes.NewReader(stored), bad: frames[badSeg].off + 20, err: errDisk}
				r, err := NewReader(ra, int64(len(stored)), testKey, testPath, &ReaderOptions{Parallelism: par})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if !errors.Is(err, errDisk) {
					t.Fatalf("error %v, want the read's error", err)
				}
				// on several cores the failed read is a unit's: segment
				// badSeg, or it and the one before it when the two were
				// opened as a pair; on one, the window's
				n, lowest := len(got), (badSeg-1)*segSize
				if par == 1 {
					lowest = badSeg / windowSlotsPerCore * windowSlotsPerCore * segSize
				}
				if !bytes.Equal(got, pt[:n]) || n%segSize != 0 || n > badSeg*segSize || n < lowest {
					t.Fatalf("got %d bytes before the error, want the plaintext up to segment %d, from byte %d at least", n, badSeg, lowest)
				}
			})
		}
	}
}

// NewReaderBytes decrypts an object held in memory from where it is: every
// range gives the plaintext NewReader gives from a file, a tampered
// segment is refused the same way, and the caller's bytes are left as they
// were, whatever the parallelism and whether the object is decorated.
func TestNewReaderBytes(t *testing.T) {
	const seg = 4096
	pt := payload(30*seg+777, 23)
	for _, o := range []WriterOptions{
		{SegmentSize: seg},
		{SegmentSize: seg, Decorators: []Decorator{Zstd}},
		{}, // one default segment: small, as an object server's 4 KiB GET
	} {
		plain := pt
		if o.SegmentSize == 0 {
			plain = pt[:4096]
		}
		stored, md := seal(t, plain, testKey, testPath, &o)
		kept := bytes.Clone(stored)
		frames, _ := frameSpans(t, stored, md.Layout(), int64(len(plain)))
		name := fmt.Sprintf("seg%d/decorated=%v", o.SegmentSize, len(o.Decorators) > 0)
		for _, par := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/par%d", name, par), func(t *testing.T) {
				r, err := NewReaderBytes(stored, testKey, testPath, &ReaderOptions{Parallelism: par})
				if err != nil {
					t.Fatal(err)
				}
				n := int64(len(plain))
				for _, rg := range [][2]int64{{0, n}, {seg - 3, 2*seg + 9}, {n - 100, 100}, {5, 1}, {0, n}} {
					off, ln := min(rg[0], n), min(rg[1], n-min(rg[0], n))
					if err := r.Range(off, ln); err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(r)
					if err != nil || !bytes.Equal(got, plain[off:off+ln]) {
						t.Fatalf("range %d+%d: %v, %d bytes, not the plaintext", off, ln, err, len(got))
					}
				}
				if !bytes.Equal(stored, kept) {
					t.Fatal("NewReaderBytes changed the stored bytes it was given")
				}
				// The last segment's frame, one ciphertext bit flipped:
				// refused in memory as from a file.
				bad := bytes.Clone(stored)
				bad[frames[len(frames)-1].off+ivLen] ^= 1
				fromMem, err := NewReaderBytes(bad, testKey, testPath, &ReaderOptions{Parallelism: par})
				if err != nil {
					t.Fatal(err)
				}
				_, memErr := io.ReadAll(fromMem)
				fromFile, err := newReader(bytes.NewReader(bad), int64(len(bad)), nil, testKey, testPath, &ReaderOptions{Parallelism: par})
				if err != nil {
					t.Fatal(err)
				}
				_, fileErr := io.ReadAll(fromFile)
				if !errors.Is(memErr, ErrTampered) || memErr.Error() != fileErr.Error() {
					t.Fatalf("tampered segment: in memory %v, from a file %v", memErr, fileErr)
				}
			})
		}
	}
	if _, err := NewReaderBytes(make([]byte, 10), testKey, testPath, nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("10 bytes: %v, want ErrTruncated", err)
	}
}

// TestReaderClose: Close wipes the plaintext the Reader held (a decorated
// object's undone plaintext too) and lends its buffers out again; nothing reads through a closed Reader, and a second
// Close is harmless. The next Reader, of another object, delivers its own
// plaintext whatever the lent buffers held.
func TestReaderClose(t *testing.T) {
	const seg = 4096
	first := payload(3*seg+100, 31)
	second := payload(2*seg+5, 32)
	for _, o := range []WriterOptions{{SegmentSize: seg}, {}, {SegmentSize: seg, Decorators: []Decorator{Zstd}}} {
		stored, _ := seal(t, first, testKey, testPath, &o)
		r, err := NewReaderBytes(stored, testKey, testPath, &ReaderOptions{Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("before Close: %v, %d bytes", err, len(got))
		}
		var held [][]byte
		for _, s := range r.window {
			held = append(held, s.pt)
			for _, b := range s.scratch {
				held = append(held, b[:cap(b)])
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for i, pt := range held {
			if !bytes.Equal(pt, make([]byte, len(pt))) {
				t.Fatalf("slot %d: plaintext left in a buffer given back", i)
			}
		}
		if err := r.Range(0, 10); !errors.Is(err, ErrClosed) {
			t.Fatalf("Range after Close: %v, want ErrClosed", err)
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %d, %v, want ErrClosed", n, err)
		}
		if _, err := r.WriteTo(io.Discard); !errors.Is(err, ErrClosed) {
			t.Fatalf("WriteTo after Close: %v, want ErrClosed", err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		other, _ := seal(t, second, testKey, "/AUTH_q/c/other", &o)
		r2, err := NewReaderBytes(other, testKey, "/AUTH_q/c/other", &ReaderOptions{Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r2); err != nil || !bytes.Equal(got, second) {
			t.Fatalf("the next Reader: %v, %d bytes, not its own plaintext", err, len(got))
		}
		_ = r2.Close()
	}
}
