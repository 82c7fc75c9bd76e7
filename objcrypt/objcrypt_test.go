package objcrypt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	const seg = 4096
	sizes := []int{0, 1, 15, 16, 17, seg - 1, seg, seg + 1, 2*seg - 1, 2 * seg, 7*seg + 123}
	opts := []struct {
		name string
		o    WriterOptions
		key  ProjectKey
	}{
		{"aes128", WriterOptions{SegmentSize: seg}, testKey},
		{"aes256", WriterOptions{SegmentSize: seg, Algorithm: AES256CBC}, testKey16},
		{"aes128-zstd", WriterOptions{SegmentSize: seg, Decorators: []Decorator{Zstd}}, testKey},
		{"aes256-zstd", WriterOptions{SegmentSize: seg, Algorithm: AES256CBC, Decorators: []Decorator{Zstd}}, testKey},
	}
	for _, tc := range opts {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
				pt := payload(size, uint64(size))
				o, obs := tc.o, newMD5Observer(true)
				o.Observer = obs
				stored, md := seal(t, pt, tc.key, testPath, &o)
				sum := md5.Sum(pt)
				if obs.plainSum() != hex.EncodeToString(sum[:]) || md.PlaintextLength != int64(size) {
					t.Fatalf("metadata %+v", md)
				}
				if md.StoredLength != int64(len(stored)) {
					t.Fatalf("stored length %d, wrote %d", md.StoredLength, len(stored))
				}
				if s := md5.Sum(stored); obs.storedSum() != hex.EncodeToString(s[:]) {
					t.Fatal("stored MD5 mismatch")
				}
				l := md.Layout()
				if es := l.EncryptedSize(int64(size)); l.Decorated && es < int64(len(stored)) || !l.Decorated && es != int64(len(stored)) {
					t.Fatalf("EncryptedSize %d, stored %d", es, len(stored))
				}
				for _, par := range []int{1, 3} {
					got, err := open(stored, tc.key, testPath, 0, -1, &ReaderOptions{Parallelism: par})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("parallelism %d: round trip mismatch", par)
					}
				}
			})
		}
	}
}

func TestCompressionShrinks(t *testing.T) {
	pt := bytes.Repeat([]byte("arca "), 100000)
	stored, _ := seal(t, pt, testKey, testPath, &WriterOptions{Decorators: []Decorator{Zstd}})
	if len(stored) > len(pt)/10 {
		t.Fatalf("compressible %d bytes stored as %d", len(pt), len(stored))
	}
}

// TestCompressedSmallSegmentsRead: every segment size a writer can end an
// object with reads back, compressible or not. zstd leaves the content
// size out of a frame under 256 bytes that is not a single segment, and
// readers refuse such a frame (the format requires the size, which bounds
// the segment before it is inflated): the writer stores those segments as
// they are. Before, an object of 38 to 255 bytes of this text (or a last
// segment of that size) was written, then refused as tampered on every
// read.
func TestCompressedSmallSegmentsRead(t *testing.T) {
	const seg = 1024
	text := bytes.Repeat([]byte("the quick brown fox "), 200)
	for n := 1; n <= 2*seg+300; n++ {
		pt := text[:n]
		stored, _ := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: seg, Decorators: []Decorator{Zstd}})
		got, err := open(stored, testKey, testPath, 0, -1, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes of text in %d-byte segments, compressed: %v", n, seg, err)
		}
	}
}

func TestWriterReadFrom(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 2 * 4096, 3*4096 + 5} {
		pt := payload(size, 3)
		want, _ := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 4096})
		var buf bytes.Buffer
		w, err := NewWriter(&buf, testKey, testPath, &WriterOptions{SegmentSize: 4096, Rand: detRand(1)})
		if err != nil {
			t.Fatal(err)
		}
		// LimitReader hides bytes.Reader's WriteTo, so io.Copy takes ReadFrom.
		if n, err := io.Copy(w, io.LimitReader(bytes.NewReader(pt), int64(len(pt)))); err != nil || n != int64(len(pt)) {
			t.Fatal(n, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("size %d: ReadFrom and Write differ for the same randomness", size)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
	}
}

func TestRangesSmall(t *testing.T) {
	for _, o := range []WriterOptions{
		{SegmentSize: 1024},
		{SegmentSize: 1024, Decorators: []Decorator{Zstd}},
	} {
		pt := payload(3*1024+100, 9)
		stored, _ := seal(t, pt, testKey, testPath, &o)
		r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, &ReaderOptions{Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		// Every range whose ends are on a coarse grid plus every boundary.
		var points []int64
		for p := int64(0); p <= int64(len(pt)); p += 97 {
			points = append(points, p)
		}
		points = append(points, 1023, 1024, 1025, 2047, 2048, int64(len(pt)))
		for _, a := range points {
			for _, b := range points {
				if b < a {
					continue
				}
				if err := r.Range(a, b-a); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, pt[a:b]) {
					t.Fatalf("range [%d,%d): %v", a, b, err)
				}
			}
		}
		if err := r.Range(int64(len(pt))+1, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("range past end: %v", err)
		}
	}
}

func TestRangesLarge(t *testing.T) {
	pt := payload(3<<20+777, 11)
	for _, o := range []WriterOptions{{}, {Decorators: []Decorator{Zstd}}} {
		stored, _ := seal(t, pt, testKey, testPath, &o)
		r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 40 {
			a := rng.Int64N(int64(len(pt)))
			n := rng.Int64N(int64(len(pt)) - a + 1)
			if err := r.Range(a, n); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if _, err := io.Copy(&got, r); err != nil || !bytes.Equal(got.Bytes(), pt[a:a+n]) {
				t.Fatalf("range [%d,+%d): %v", a, n, err)
			}
		}
	}
}

func TestRewrap(t *testing.T) {
	pt := payload(10000, 5)
	stored, md := seal(t, pt, testKey, testPath, nil)
	newKey := ProjectKey{ID: "new", Key: bytes.Repeat([]byte{9}, 32)}
	if err := Rewrap(&md, testKey, newKey, testPath, detRand(3)); err != nil {
		t.Fatal(err)
	}
	got, err := open(stored, newKey, testPath, 0, -1, &ReaderOptions{KeyID: md.KeyID, WrappedKey: md.WrappedKey})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("after rewrap: %v", err)
	}
	// The header still names the old key; without the metadata the new key is refused.
	if _, err := open(stored, newKey, testPath, 0, -1, nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("new key against old header: %v", err)
	}
	if err := Rewrap(&md, testKey, newKey, testPath, nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("rewrap with a stale old key: %v", err)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []WriterOptions{
		{SegmentSize: 1000}, {SegmentSize: 512}, {SegmentSize: MaxSegmentSize + 16},
		{Algorithm: 9}, {Decorators: []Decorator{Zstd, Zstd}}, {Decorators: []Decorator{7}},
	} {
		if _, err := NewWriter(io.Discard, testKey, testPath, &o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, k := range []ProjectKey{{ID: "x", Key: make([]byte, 24)}, {ID: "", Key: make([]byte, 16)}} {
		if _, err := NewWriter(io.Discard, k, testPath, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("key %d bytes id %q: %v", len(k.Key), k.ID, err)
		}
	}
	if _, err := NewWriter(io.Discard, testKey, "", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty path: %v", err)
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (e *errWriter) Write(p []byte) (int, error) {
	if len(p) > e.n {
		return 0, errors.New("disk full")
	}
	e.n -= len(p)
	return len(p), nil
}

func TestWriterErrorSticky(t *testing.T) {
	w, err := NewWriter(&errWriter{n: 5000}, testKey, testPath, &WriterOptions{SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(make([]byte, 100000))
	if err == nil {
		t.Fatal("no error from a failing writer")
	}
	if _, err2 := w.Write([]byte{1}); err2 == nil {
		t.Fatal("error not sticky")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after error returned nil")
	}
}

// Steady state allocates nothing: a Writer fed segment after segment, and a
// Reader re-ranged over a large object.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w, err := NewWriter(io.Discard, testKey, testPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, DefaultSegmentSize)
	w.Write(buf)
	if a := testing.AllocsPerRun(50, func() { w.Write(buf) }); a != 0 {
		t.Errorf("Writer.Write: %.1f allocs per segment", a)
	}
	// io.Copy into a Writer takes ReadFrom, which peeks a byte at every
	// segment boundary.
	src := newGenReader(0)
	if a := testing.AllocsPerRun(50, func() {
		src.left = DefaultSegmentSize
		w.ReadFrom(src)
	}); a != 0 {
		t.Errorf("Writer.ReadFrom: %.1f allocs per segment", a)
	}
	stored, _ := seal(t, make([]byte, 2<<20), testKey, testPath, nil)
	r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func() {
		r.Range(12345, 1<<20)
		r.WriteTo(io.Discard)
	}
	read()
	if a := testing.AllocsPerRun(10, read); a != 0 {
		t.Errorf("Reader range: %.1f allocs", a)
	}
}

// Writers take their segment buffers from a pool and give them back on
// Close, dirty: objects written one after another, of every shape, and
// with and without an observer of both streams, in and out of the pool,
// still decrypt to what was written and show the observer the right bytes.
func TestPooledWriterBuffers(t *testing.T) {
	sizes := []int{200 << 10, 3, 0, 16 << 10, 16<<10 + 1, 64 << 10, 64<<10 + 5, 1, 130 << 10}
	for round := range 2 {
		for i, n := range sizes {
			pt := payload(n, uint64(10*round+i))
			for _, stored := range []bool{false, true} {
				o := &WriterOptions{}
				obs := newMD5Observer(true)
				if stored {
					o.Observer = obs
				}
				if i%2 == 1 {
					o.SegmentSize = 4096
				}
				enc, _ := seal(t, pt, testKey, testPath, o)
				got, err := open(enc, testKey, testPath, 0, int64(n), nil)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("size %d stored=%v: %v (%d bytes back)", n, stored, err, len(got))
				}
				if !stored {
					continue
				}
				if want := fmt.Sprintf("%x", md5.Sum(pt)); obs.plainSum() != want {
					t.Fatalf("size %d: plaintext MD5 %s, want %s", n, obs.plainSum(), want)
				}
				if want := fmt.Sprintf("%x", md5.Sum(enc)); obs.storedSum() != want {
					t.Fatalf("size %d: stored MD5 %s, want %s", n, obs.storedSum(), want)
				}
			}
			// An abandoned writer (an aborted PUT never closes it) must not
			// disturb the next one.
			w, err := NewWriter(io.Discard, testKey, testPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write(pt)
		}
	}
}
