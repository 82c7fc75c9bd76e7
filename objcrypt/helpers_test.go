package objcrypt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"testing"
)

var (
	testKey   = ProjectKey{ID: "0b9a3e0e-6c8d-4c39-8d6e-1f0a2b3c4d5e", Key: bytes.Repeat([]byte{0x42}, 32)}
	testKey16 = ProjectKey{ID: "k16", Key: bytes.Repeat([]byte{0x17}, 16)}
	testPath  = "/AUTH_p/c/o"
)

// detRand is a deterministic randomness source for tests.
func detRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// payload is mixed data: half compressible text, half noise.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		if (i/3000)%2 == 0 {
			b[i] = "the quick brown fox "[i%20]
		} else {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

func seal(t testing.TB, pt []byte, key ProjectKey, path string, o *WriterOptions) ([]byte, Metadata) {
	t.Helper()
	if o == nil {
		o = &WriterOptions{}
	}
	oo := *o
	if oo.Rand == nil {
		oo.Rand = detRand(1)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, key, path, &oo)
	if err != nil {
		t.Fatal(err)
	}
	writeUneven(t, w, pt, 7777)
	return buf.Bytes(), w.Metadata()
}

// writeUneven writes data to w in uneven pieces, each of 1 + the rest's
// length modulo step bytes (at most the rest), which exercises the
// writer's buffering, then closes w.
func writeUneven(t testing.TB, w io.WriteCloser, data []byte, step int) {
	t.Helper()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)%step)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// md5Observer is a Writer's observer that hashes the plaintext and, when
// stored is set, the stored bytes with crypto/md5.
type md5Observer struct{ plain, stored hash.Hash }

func newMD5Observer(stored bool) *md5Observer {
	o := &md5Observer{plain: md5.New()}
	if stored {
		o.stored = md5.New()
	}
	return o
}

func (o *md5Observer) Observe(plain, stored []byte) {
	o.plain.Write(plain)
	if o.stored != nil {
		o.stored.Write(stored)
	}
}

func (o *md5Observer) plainSum() string  { return hex.EncodeToString(o.plain.Sum(nil)) }
func (o *md5Observer) storedSum() string { return hex.EncodeToString(o.stored.Sum(nil)) }

// open decrypts [off, off+n) of a stored object, or returns the error.
func open(stored []byte, key ProjectKey, path string, off, n int64, o *ReaderOptions) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), key, path, o)
	if err != nil {
		return nil, err
	}
	if n >= 0 {
		if err := r.Range(off, n); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(r)
}

// typed reports whether err is one of the package's sentinels for bad data
// or a bad key, never a bare error.
func typed(err error) bool {
	for _, s := range []error{ErrTampered, ErrTruncated, ErrWrongKey, ErrKeyUnwrap, ErrUnsupported} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
