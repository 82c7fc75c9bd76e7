package objcrypt

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fuzzSeeds are small valid objects in each shape the format has: empty,
// one short segment, several segments, compressed, AES-256. Mutating them
// reaches every parser branch; a valid object after mutation would be a
// forgery, which the targets treat as a failure.
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for i, c := range []struct {
		n int
		o WriterOptions
	}{
		{0, WriterOptions{SegmentSize: 1024}},
		{20, WriterOptions{SegmentSize: 1024}},
		{2500, WriterOptions{SegmentSize: 1024}},
		{2500, WriterOptions{SegmentSize: 1024, Decorators: []Decorator{Zstd}}},
		{1100, WriterOptions{SegmentSize: 1024, Algorithm: AES256CBC}},
	} {
		c.o.Rand = detRand(uint64(100 + i))
		stored, _ := seal(t, payload(c.n, uint64(i)), testKey, testPath, &c.o)
		out = append(out, stored)
	}
	return out
}

// fuzzPlains are the plaintexts of fuzzSeeds. Whatever a mutated object
// yields (segments a mutation did not touch still decrypt) must be a piece
// of one of them: never plaintext that was not written.
func fuzzPlains() [][]byte {
	return [][]byte{payload(0, 0), payload(20, 1), payload(2500, 2), payload(2500, 3), payload(1100, 4)}
}

func isPieceOfSeed(got []byte, size, off int64) bool {
	for _, pt := range fuzzPlains() {
		if int64(len(pt)) == size && off+int64(len(got)) <= size && bytes.Equal(pt[off:off+int64(len(got))], got) {
			return true
		}
	}
	return false
}

func FuzzHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[:min(len(s), 200)])
	}
	f.Add([]byte("ARCA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHeader(data)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Anything accepted must be exactly what the writer would write.
		if again := appendHeader(nil, h); !bytes.Equal(again, data[:h.length]) {
			t.Fatalf("header does not re-encode:\n%x\n%x", again, data[:h.length])
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	valid := map[string]bool{}
	for _, s := range fuzzSeeds(f) {
		valid[string(s)] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, par := range []int{1, 2} {
			r, err := NewReader(bytes.NewReader(data), int64(len(data)), testKey, testPath, &ReaderOptions{Parallelism: par})
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil && !valid[string(data)] {
				t.Fatal("a mutated object decrypted")
			}
			if err != nil && !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}

func FuzzRangeReader(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, int64(i*300), int64(1500))
		f.Add(s, int64(0), int64(-1))
	}
	f.Fuzz(func(t *testing.T, data []byte, off, n int64) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), testKey, testPath, nil)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		size := r.Size()
		if err := r.Range(off, n); err != nil {
			if off >= 0 && n >= 0 && off <= size {
				t.Fatalf("valid range [%d,+%d) of %d refused: %v", off, n, size, err)
			}
			return
		}
		got, err := io.ReadAll(r)
		if err != nil && !typed(err) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && int64(len(got)) != min(n, size-off) {
			t.Fatalf("range [%d,+%d) of %d gave %d bytes", off, n, size, len(got))
		}
		if !isPieceOfSeed(got, size, off) {
			t.Fatalf("range [%d,+%d) returned bytes that were never written", off, n)
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from fuzzSeeds when
// ARCA_WRITE_FUZZ_SEEDS=1 (after a format change); otherwise it checks the
// committed corpus still holds valid objects.
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	if os.Getenv("ARCA_WRITE_FUZZ_SEEDS") != "1" {
		for i := range seeds {
			p := filepath.Join("testdata", "fuzz", "FuzzDecrypt", fmt.Sprintf("seed-%d", i))
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("fuzz corpus missing (regenerate with ARCA_WRITE_FUZZ_SEEDS=1): %v", err)
			}
		}
		return
	}
	write := func(target, name string, values ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n"
		for _, v := range values {
			body += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bs := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	for i, s := range seeds {
		name := fmt.Sprintf("seed-%d", i)
		write("FuzzHeader", name, bs(s[:min(len(s), 200)]))
		write("FuzzDecrypt", name, bs(s))
		write("FuzzRangeReader", name, bs(s), fmt.Sprintf("int64(%d)", i*300), "int64(1500)")
	}
}

// FuzzRoundTrip: whatever the plaintext and segment size, compressed or
// not, what a Writer writes a Reader reads back, whole and by range. (It
// finds the compressible segments under 256 bytes that zstd framed
// without their content size, which readers refused, within seconds.)
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(0), true, uint16(0), uint16(5))
	f.Add(bytes.Repeat([]byte("the quick brown fox "), 5), uint8(0), true, uint16(3), uint16(40))
	f.Add(payload(5000, 1), uint8(1), true, uint16(1000), uint16(3000))
	f.Add(payload(17000, 2), uint8(3), false, uint16(4090), uint16(100))
	f.Fuzz(func(t *testing.T, pt []byte, segSel uint8, compress bool, off, n uint16) {
		o := WriterOptions{SegmentSize: MinSegmentSize << (segSel % 4)}
		if compress {
			o.Decorators = []Decorator{Zstd}
		}
		stored, _ := seal(t, pt, testKey, testPath, &o)
		got, err := open(stored, testKey, testPath, 0, -1, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes, %d-byte segments, zstd %v: %v", len(pt), o.SegmentSize, compress, err)
		}
		from := min(int64(off), int64(len(pt)))
		to := min(from+int64(n), int64(len(pt)))
		got, err = open(stored, testKey, testPath, from, to-from, &ReaderOptions{Parallelism: 2})
		if err != nil || !bytes.Equal(got, pt[from:to]) {
			t.Fatalf("%d bytes, range %d-%d: %v", len(pt), from, to, err)
		}
	})
}
