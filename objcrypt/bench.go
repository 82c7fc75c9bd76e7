package objcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
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
