package objcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Benchmark entry points: the loops this package's benchmarks time,
// exported so that make bench's speed report (tools/speedreport crypto)
// measures the very code `go test -bench` does, internals included, without
// a copy of it. They take no *testing.B, so that objcrypt does not bring
// package testing into production binaries: each returns a prepared
// BenchLoop, and the caller times its operations (b.Loop in a Benchmark
// function, testing.Benchmark in a tool).

// BenchChunk is what one operation of the CBC, HMAC and encryption loops
// handles: 64 KiB, the chunk the speed targets are stated for.
const BenchChunk = 64 << 10

// benchKey and benchPath are the project key and object path of the
// benchmark streams: what they are does not change the work.
var (
	benchKey  = ProjectKey{ID: "bench", Key: bytes.Repeat([]byte{0x42}, 32)}
	benchPath = "/AUTH_bench/c/o"
)

// A BenchLoop is one benchmark's operation, prepared: Do does it once.
type BenchLoop struct {
	// Bytes is what one operation handles (for testing.B.SetBytes).
	Bytes int64
	do    func() error
	close func() error
}

// Do performs one operation.
func (l *BenchLoop) Do() error { return l.do() }

// Close releases what the loop holds (a Writer finishes its object).
func (l *BenchLoop) Close() error {
	if l.close == nil {
		return nil
	}
	return l.close()
}

// StdCBCBench is crypto/cipher's AES-CBC over one BenchChunk in place, one
// goroutine: the baseline this package's cipher layer and pipelines are
// measured against. keyLen is 16 or 32.
func StdCBCBench(keyLen int, decrypt bool) (*BenchLoop, error) {
	block, err := aes.NewCipher(make([]byte, keyLen))
	if err != nil {
		return nil, fmt.Errorf("objcrypt: bench cipher: %w", err)
	}
	// A zero key and IV: the loop measures throughput and protects nothing.
	mode := cipher.NewCBCEncrypter(block, make([]byte, ivLen)) //nolint:gosec // see above
	if decrypt {
		mode = cipher.NewCBCDecrypter(block, make([]byte, ivLen))
	}
	buf := make([]byte, BenchChunk)
	return &BenchLoop{Bytes: BenchChunk, do: func() error {
		mode.CryptBlocks(buf, buf)
		return nil
	}}, nil
}

// CBCBench is this package's AES-128-CBC layer alone (the AES-NI pipeline
// where the CPU has it, else the standard library's modes) over one
// BenchChunk in place, one goroutine, as a segment is sealed or opened.
func CBCBench(decrypt bool) (*BenchLoop, error) {
	key := make([]byte, 16)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("objcrypt: bench cipher: %w", err)
	}
	s := newSegState(&objectKeys{block: block, fast: newFastCBC(key)})
	buf := make([]byte, BenchChunk)
	iv := make([]byte, ivLen)
	crypt := s.cbcEncrypt
	if decrypt {
		crypt = s.cbcDecrypt
	}
	return &BenchLoop{Bytes: BenchChunk, do: func() error {
		crypt(buf, buf, iv)
		return nil
	}}, nil
}

// CBCLanesBench is this package's AES-128-CBC encryption of lanes
// independent BenchChunks per operation (segments, each with its own IV),
// in place, one goroutine: interleaved in one loop where the CPU has
// AES-NI (as the Writer seals a group of full segments), one after
// another otherwise.
func CBCLanesBench(lanes int) (*BenchLoop, error) {
	key := make([]byte, 16)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("objcrypt: bench cipher: %w", err)
	}
	s := newSegState(&objectKeys{block: block, fast: newFastCBC(key)})
	jobs := make([]cbcJob, lanes)
	for i := range jobs {
		buf := make([]byte, BenchChunk)
		jobs[i] = cbcJob{dst: buf, src: buf, iv: make([]byte, ivLen)}
	}
	return &BenchLoop{Bytes: int64(lanes) * BenchChunk, do: func() error {
		s.cbcEncryptLanes(jobs)
		return nil
	}}, nil
}

// HMACBench is HMAC-SHA256 of one BenchChunk per operation (reset, write,
// sum), as each segment's MAC is computed.
func HMACBench() *BenchLoop {
	h := hmac.New(sha256.New, make([]byte, 32))
	buf := make([]byte, BenchChunk)
	var sum [32]byte
	return &BenchLoop{Bytes: BenchChunk, do: func() error {
		h.Reset()
		h.Write(buf)
		h.Sum(sum[:0])
		return nil
	}}
}

// MACFramesBench is the segment MACs as a Writer computes them: two
// frames of BenchChunk bodies per operation, both MACed at once where the
// SHA-NI lanes are (macPair), one after the other through crypto/hmac
// elsewhere.
func MACFramesBench() (*BenchLoop, error) {
	w, err := NewWriter(io.Discard, benchKey, benchPath, nil)
	if err != nil {
		return nil, err
	}
	frames := [][]byte{make([]byte, ivLen+BenchChunk+macLen), make([]byte, ivLen+BenchChunk+macLen)}
	bodies := [][]byte{make([]byte, BenchChunk), make([]byte, BenchChunk)}
	return &BenchLoop{Bytes: 2 * BenchChunk, do: func() error {
		w.seg.macFrames(frames, bodies, 0, false)
		return nil
	}}, nil
}

// OpenFramesBench is the Reader's work on two full segments of
// BenchChunk bodies per operation, each verified and then decrypted: with
// pair, as the Reader opens two segments of a window together (openPair:
// both MACs at once where the SHA-NI lanes are, one after the other
// through crypto/hmac elsewhere); without, one segment at a time (open).
func OpenFramesBench(pair bool) (*BenchLoop, error) {
	w, err := NewWriter(io.Discard, benchKey, benchPath, nil)
	if err != nil {
		return nil, err
	}
	s := w.seg
	fl := int(frameLen(BenchChunk))
	// Zero IVs and bodies: the loop measures throughput and protects nothing.
	frames := s.sealFrames(make([]byte, 2*fl), [][]byte{make([]byte, BenchChunk), make([]byte, BenchChunk)}, 0, false)
	fa, fb := frames[:fl], frames[fl:]
	pa, pb := make([]byte, BenchChunk), make([]byte, BenchChunk)
	return &BenchLoop{Bytes: 2 * BenchChunk, do: func() error {
		var errA, errB error
		if pair {
			_, _, errA, errB = s.openPair(pa, pb, fa, fb, BenchChunk, 0, false)
		} else {
			_, errA = s.open(pa, fa, BenchChunk, 0, false)
			_, errB = s.open(pb, fb, BenchChunk, 1, false)
		}
		return errors.Join(errA, errB)
	}}, nil
}

// EncryptBench is a Writer in steady state with options o: one object
// that keeps growing, each operation writing chunk to it (output to
// io.Discard). The first write is made before it returns, so that the
// Writer's buffers exist and allocations per operation are the steady
// state's. Close finishes the object.
func EncryptBench(chunk []byte, o WriterOptions) (*BenchLoop, error) {
	w, err := NewWriter(io.Discard, benchKey, benchPath, &o)
	if err != nil {
		return nil, err
	}
	write := func() error {
		_, err := w.Write(chunk)
		return err
	}
	if err := write(); err != nil {
		return nil, err
	}
	return &BenchLoop{Bytes: int64(len(chunk)), do: write, close: w.Close}, nil
}

// DecryptBench seals plaintext with options o, then each operation reads
// the whole object as one range through one Reader decrypting on
// parallelism cores (0: the Reader's default). One read is made before it
// returns: a Reader allocates its window buffers on first use.
func DecryptBench(plaintext []byte, o WriterOptions, parallelism int) (*BenchLoop, error) {
	var stored bytes.Buffer
	w, err := NewWriter(&stored, benchKey, benchPath, &o)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	r, err := NewReader(bytes.NewReader(stored.Bytes()), int64(stored.Len()), benchKey, benchPath,
		&ReaderOptions{Parallelism: parallelism})
	if err != nil {
		return nil, err
	}
	size := int64(len(plaintext))
	read := func() error {
		if err := r.Range(0, size); err != nil {
			return err
		}
		_, err := r.WriteTo(io.Discard)
		return err
	}
	if _, err := r.WriteTo(io.Discard); err != nil {
		return nil, err
	}
	return &BenchLoop{Bytes: size, do: read}, nil
}

// ECBenchStride is the fragment payload of the EC benchmarks: Swift's
// default 1 MiB EC segment over 4 data fragments (4+2).
const ECBenchStride = 256 << 10

// benchECArchive is a fragment archive of whole fragments of
// ECBenchStride, about size bytes, with liberasurecode 1.6's headers
// (checksum type none, as Swift's proxy sends them) and patterned
// payloads.
func benchECArchive(size int) []byte {
	frags := max(1, size/(ECHeaderLen+ECBenchStride))
	out := make([]byte, 0, frags*(ECHeaderLen+ECBenchStride))
	for i := range frags {
		var h [ECHeaderLen]byte
		binary.LittleEndian.PutUint32(h[0:], 1)
		binary.LittleEndian.PutUint32(h[ecOffSize:], ECBenchStride)
		binary.LittleEndian.PutUint64(h[ecOffOrigSize:], 4*ECBenchStride)
		h[ecOffChksumType] = ecChksumNone
		binary.LittleEndian.PutUint32(h[ecOffMagic:], ecMagic)
		binary.LittleEndian.PutUint32(h[ecOffVersion:], 0x10602)
		binary.LittleEndian.PutUint32(h[ecOffMetaCRC:], ecHeaderCRC(h[:]))
		out = append(out, h[:]...)
		for j := range ECBenchStride {
			out = append(out, byte(i+j*7))
		}
	}
	return out
}

// benchSink keeps the last bytes written to it in a buffer of its own: a
// copy, as a write into the page cache is.
type benchSink struct{ buf []byte }

func (s *benchSink) Write(p []byte) (int, error) {
	if cap(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	return copy(s.buf[:len(p)], p), nil
}

// ECCopyBench is the baseline of the EC layout's benchmarks: a fragment
// archive of about size bytes copied into a sink in 64 KiB writes, as an
// object server storing it in the clear does at least. With obs, obs
// sees every chunk as plaintext and as stored (both the same bytes).
func ECCopyBench(size int, obs Observer) *BenchLoop {
	archive := benchECArchive(size)
	sink := &benchSink{}
	return &BenchLoop{Bytes: int64(len(archive)), do: func() error {
		for rest := archive; len(rest) > 0; {
			n := min(len(rest), BenchChunk)
			if obs != nil {
				obs.Observe(rest[:n], rest[:n])
			}
			_, _ = sink.Write(rest[:n])
			rest = rest[n:]
		}
		return nil
	}}
}

// ECWriteBench is an ECWriter sealing a fragment archive of about size
// bytes per operation, written in 64 KiB chunks into a sink, obs (may be
// nil) seeing both streams as the object server's ETag hashes do.
func ECWriteBench(size int, obs Observer) (*BenchLoop, error) {
	archive := benchECArchive(size)
	sink := &benchSink{}
	seal := func() error {
		w, err := NewECWriter(sink, benchKey, benchPath, obs, nil)
		if err != nil {
			return err
		}
		for rest := archive; len(rest) > 0; {
			n := min(len(rest), BenchChunk)
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return w.Close()
	}
	if err := seal(); err != nil {
		return nil, err
	}
	return &BenchLoop{Bytes: int64(len(archive)), do: seal}, nil
}

// ECReadBench seals a fragment archive of about size bytes, then each
// operation reads it whole through an ECReader (every fragment
// authenticated and decrypted) into io.Discard.
func ECReadBench(size int) (*BenchLoop, error) {
	var stored bytes.Buffer
	w, err := NewECWriter(&stored, benchKey, benchPath, nil, nil)
	if err != nil {
		return nil, err
	}
	archive := benchECArchive(size)
	if _, err := w.Write(archive); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	r, err := NewECReader(bytes.NewReader(stored.Bytes()), int64(stored.Len()), benchKey, benchPath, w.Metadata())
	if err != nil {
		return nil, err
	}
	read := func() error {
		if err := r.Range(0, int64(len(archive))); err != nil {
			return err
		}
		_, err := r.WriteTo(io.Discard)
		return err
	}
	if err := read(); err != nil {
		return nil, err
	}
	return &BenchLoop{Bytes: int64(len(archive)), do: read}, nil
}
