package objcrypt

import (
	"crypto/hmac"
	"fmt"
	"io"
)

// ECReader reads an archive in the EC layout: the fragment archive as the
// proxy sent it, every fragment authenticated before any of its bytes is
// returned. Range positions it; Read then returns that range.
type ECReader struct {
	ra     io.ReaderAt
	keys   *ecKeys
	length int64
	count  int64
	stride int64
	index  uint32
	frag   []byte // the current fragment, opened
	fragNo int64  // its number, -1 for none
	off    int64  // the next byte Read returns
	end    int64
	macBuf []byte
	closed bool
}

// NewECReader opens an archive of size stored bytes at path under key: it
// unwraps the data key, checks the archive MAC against size and reads the
// first header for the archive's shape.
func NewECReader(ra io.ReaderAt, size int64, key ProjectKey, path string, m ECMetadata) (*ECReader, error) {
	keys, err := openECKeys(key, path, &m)
	if err != nil {
		return nil, err
	}
	if size != m.Length {
		return nil, fmt.Errorf("%w: archive is %d bytes, its metadata says %d", ErrTruncated, size, m.Length)
	}
	r := &ECReader{ra: ra, keys: keys, length: m.Length, count: m.Fragments, fragNo: -1}
	if m.Fragments == 0 {
		if m.Length != 0 {
			return nil, fmt.Errorf("%w: bytes without fragments", ErrTampered)
		}
		return r, nil
	}
	var h [ECHeaderLen]byte
	if err := readFull(ra, h[:], 0); err != nil {
		return nil, err
	}
	if err := checkECHeader(h[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	r.stride, r.index = ecFragLen(h[:]), ecFragIndex(h[:])
	last := m.Length - (m.Fragments-1)*r.stride
	if m.Fragments > maxSegments || last < ECHeaderLen || last > r.stride {
		return nil, fmt.Errorf("%w: archive length does not fit its fragments", ErrTampered)
	}
	return r, nil
}

// Size is the archive's length (stored and plaintext).
func (r *ECReader) Size() int64 { return r.length }

// FragIndex is the index in the archive's headers, or -1 when empty.
func (r *ECReader) FragIndex() int {
	if r.count == 0 {
		return -1
	}
	return int(r.index)
}

// ETagKeys are the archive's ETag keys.
func (r *ECReader) ETagKeys() *ETagKeys { return r.keys.etag }

// Close wipes the plaintext fragment the reader holds; Read, WriteTo and
// Range fail with ErrClosed afterwards.
func (r *ECReader) Close() error {
	clear(r.frag)
	r.frag, r.fragNo, r.closed = nil, -1, true
	return nil
}

// Range positions the reader at off for n bytes (clamped to the archive).
func (r *ECReader) Range(off, n int64) error {
	if r.closed {
		return ErrClosed
	}
	if off < 0 || n < 0 {
		return fmt.Errorf("%w: range %d+%d", ErrInvalid, off, n)
	}
	r.off, r.end = min(off, r.length), min(off+n, r.length)
	return nil
}

// load reads, authenticates and decrypts fragment i.
func (r *ECReader) load(i int64) error {
	start := i * r.stride
	n := min(r.stride, r.length-start)
	if cap(r.frag) < int(n) {
		r.frag = make([]byte, n)
	}
	f := r.frag[:n]
	r.fragNo = -1
	if err := readFull(r.ra, f, start); err != nil {
		return err
	}
	if err := checkECHeader(f); err != nil {
		return fmt.Errorf("%w: fragment %d: %w", ErrTampered, i, err)
	}
	if ecFragLen(f) != n || ecFragIndex(f) != r.index {
		return fmt.Errorf("%w: fragment %d: header disagrees with the archive", ErrTampered, i)
	}
	mac := openHeader(f)
	payload := f[ECHeaderLen:]
	r.macBuf = r.keys.fragMAC(r.macBuf[:0], i, i == r.count-1, f, payload)
	if !hmac.Equal(r.macBuf, mac[:]) {
		return fmt.Errorf("%w: fragment %d", ErrTampered, i)
	}
	r.keys.crypt(i, payload)
	r.frag, r.fragNo = f, i
	return nil
}

// Read returns the next bytes of the range set by Range.
func (r *ECReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if r.off >= r.end {
		return 0, io.EOF
	}
	i := r.off / r.stride
	if i != r.fragNo {
		if err := r.load(i); err != nil {
			return 0, err
		}
	}
	within := r.off - i*r.stride
	n := copy(p, r.frag[within:min(int64(len(r.frag)), within+r.end-r.off)])
	r.off += int64(n)
	return n, nil
}

// WriteTo writes the rest of the range to w.
func (r *ECReader) WriteTo(w io.Writer) (int64, error) {
	if r.closed {
		return 0, ErrClosed
	}
	var total int64
	for r.off < r.end {
		i := r.off / r.stride
		if i != r.fragNo {
			if err := r.load(i); err != nil {
				return total, err
			}
		}
		within := r.off - i*r.stride
		chunk := r.frag[within:min(int64(len(r.frag)), within+r.end-r.off)]
		n, err := w.Write(chunk)
		total += int64(n)
		r.off += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(chunk) {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}
