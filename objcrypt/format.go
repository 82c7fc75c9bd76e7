package objcrypt

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Format constants; SPEC.md describes every byte.
const (
	// Version is the only format version this package writes and reads.
	Version = 1

	// DefaultSegmentSize is the plaintext size of every segment but the last.
	DefaultSegmentSize = 64 << 10
	// MinSegmentSize and MaxSegmentSize bound the segment size a header may
	// declare, so a forged header cannot make a reader allocate much.
	MinSegmentSize = 1 << 10
	MaxSegmentSize = 4 << 20

	// MaxKeyIDLen bounds the key id (a UUID in practice).
	MaxKeyIDLen = 255
	// MaxPathLen bounds the object path bound into the wrapped key.
	MaxPathLen = 1<<16 - 1

	magic          = "ARCA"
	fixedHeaderLen = 13 // magic, version, algorithm, header length, segment size, decorator count
	maxHeaderLen   = 4096
	maxDecorators  = 8

	ivLen      = 16
	macLen     = 32
	frameExtra = ivLen + macLen // per segment, on top of the padded body
	trailerLen = 8 + macLen     // plaintext length and MAC
	indexEntry = 4              // stored body length per segment, decorated objects only
	dataKeyLen = 32             // random per object; cipher and MAC keys derive from it
	wrapGCM    = 1              // wrap algorithm id: AES-256-GCM under an HKDF-derived KEK
	wrappedLen = 12 + dataKeyLen + 16
	// maxSegments bounds the segment count (hence the index a reader
	// allocates) independently of the file size: 2^24 segments of the
	// smallest size is 16 GiB; of the default size 1 TiB.
	maxSegments = 1 << 24
)

// Algorithm names the segment cipher; the MAC is always HMAC-SHA256 over the
// ciphertext (encrypt-then-MAC).
type Algorithm uint8

// Algorithms, named as the crypto_protocol configuration option names them.
const (
	AES128CBC Algorithm = 1 // "aes_128_cbc": AES-128-CBC + HMAC-SHA256
	AES256CBC Algorithm = 2 // "aes_256_cbc": AES-256-CBC + HMAC-SHA256
)

func (a Algorithm) String() string {
	switch a {
	case AES128CBC:
		return "aes_128_cbc"
	case AES256CBC:
		return "aes_256_cbc"
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

func (a Algorithm) keyLen() int {
	if a == AES256CBC {
		return 32
	}
	return 16
}

func (a Algorithm) valid() bool { return a == AES128CBC || a == AES256CBC }

// ParseAlgorithm accepts the crypto_protocol names.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "aes_128_cbc":
		return AES128CBC, nil
	case "aes_256_cbc":
		return AES256CBC, nil
	}
	return 0, fmt.Errorf("%w: algorithm %q", ErrUnsupported, s)
}

// Decorator names a per-segment transform applied to the plaintext before
// encryption and undone, in reverse order, after decryption.
type Decorator uint8

// Decorators.
const (
	// Zstd compresses each segment with zstd and keeps the result only when
	// it is smaller than the segment.
	Zstd Decorator = 1
)

func (d Decorator) String() string {
	if d == Zstd {
		return "zstd"
	}
	return fmt.Sprintf("decorator(%d)", uint8(d))
}

// ParseDecorator accepts the names String returns.
func ParseDecorator(s string) (Decorator, error) {
	if strings.TrimSpace(s) == "zstd" {
		return Zstd, nil
	}
	return 0, fmt.Errorf("%w: decorator %q", ErrUnsupported, s)
}

// header is the parsed file header. formatLen is the length of the part the
// segment and trailer MACs bind (everything up to the key id); the key part
// after it may be superseded by a rewrapped key kept in metadata.
type header struct {
	alg         Algorithm
	segmentSize int
	decorators  []Decorator
	keyID       string
	wrapped     []byte
	length      int // total header length
}

// headerLen is the encoded length of a header with these fields.
func headerLen(keyIDLen, nDecorators int) int {
	return fixedHeaderLen + 2*nDecorators + 1 + keyIDLen + 1 + 1 + wrappedLen
}

// appendHeader encodes h (which the writer built and so trusts).
func appendHeader(b []byte, h *header) []byte {
	n := headerLen(len(h.keyID), len(h.decorators))
	b = append(b, magic...)
	b = append(b, Version, byte(h.alg))
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint32(b, uint32(h.segmentSize))
	b = append(b, byte(len(h.decorators)))
	for _, d := range h.decorators {
		b = append(b, byte(d), 0) // no parameters yet; the length byte keeps the chain open
	}
	b = append(b, byte(len(h.keyID)))
	b = append(b, h.keyID...)
	b = append(b, wrapGCM, byte(len(h.wrapped)))
	b = append(b, h.wrapped...)
	return b
}

// headerLenPrefix reads the total header length from the fixed prefix, so a
// reader knows how much to read before parsing. It checks magic and version
// first: an unknown format is ErrUnsupported, not a parse error.
func headerLenPrefix(b []byte) (int, error) {
	if len(b) < fixedHeaderLen {
		return 0, fmt.Errorf("%w: header shorter than %d bytes", ErrTruncated, fixedHeaderLen)
	}
	if string(b[:4]) != magic {
		return 0, fmt.Errorf("%w: bad magic %q", ErrUnsupported, b[:4])
	}
	if b[4] != Version {
		return 0, fmt.Errorf("%w: format version %d", ErrUnsupported, b[4])
	}
	n := int(binary.BigEndian.Uint16(b[6:8]))
	if n < fixedHeaderLen || n > maxHeaderLen {
		return 0, fmt.Errorf("%w: header length %d", ErrTampered, n)
	}
	return n, nil
}

// parseHeader parses a complete header. It never allocates more than the
// input and rejects anything it would not write itself.
func parseHeader(b []byte) (*header, error) {
	n, err := headerLenPrefix(b)
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, fmt.Errorf("%w: header needs %d bytes, have %d", ErrTruncated, n, len(b))
	}
	b = b[:n]
	h := &header{length: n, alg: Algorithm(b[5])}
	if !h.alg.valid() {
		return nil, fmt.Errorf("%w: algorithm %d", ErrUnsupported, b[5])
	}
	h.segmentSize = int(binary.BigEndian.Uint32(b[8:12]))
	if err := checkSegmentSize(h.segmentSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	nd := int(b[12])
	if nd > maxDecorators {
		return nil, fmt.Errorf("%w: %d decorators", ErrUnsupported, nd)
	}
	p := b[fixedHeaderLen:]
	for range nd {
		if len(p) < 2 || len(p) < 2+int(p[1]) {
			return nil, fmt.Errorf("%w: decorator list", ErrTruncated)
		}
		d := Decorator(p[0])
		if d != Zstd || p[1] != 0 {
			return nil, fmt.Errorf("%w: decorator %d with %d parameter bytes", ErrUnsupported, p[0], p[1])
		}
		for _, prev := range h.decorators {
			if prev == d {
				return nil, fmt.Errorf("%w: decorator %v repeated", ErrTampered, d)
			}
		}
		h.decorators = append(h.decorators, d)
		p = p[2+int(p[1]):]
	}
	if len(p) < 1 || len(p) < 1+int(p[0]) || p[0] == 0 {
		return nil, fmt.Errorf("%w: key id", ErrTampered)
	}
	h.keyID = string(p[1 : 1+int(p[0])])
	p = p[1+int(p[0]):]
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: wrapped key", ErrTampered)
	}
	if p[0] != wrapGCM {
		return nil, fmt.Errorf("%w: key wrap algorithm %d", ErrUnsupported, p[0])
	}
	if int(p[1]) != wrappedLen || len(p) != 2+wrappedLen {
		return nil, fmt.Errorf("%w: wrapped key length", ErrTampered)
	}
	h.wrapped = p[2:]
	return h, nil
}

// formatLen is the length of the header prefix the MACs bind: everything up
// to and including the decorator list. The key part that follows is bound
// by the AEAD that wraps the data key instead, so a key can be rewrapped
// (metadata only) without rewriting the data.
func (h *header) formatLen() int { return fixedHeaderLen + 2*len(h.decorators) }

func checkSegmentSize(n int) error {
	if n < MinSegmentSize || n > MaxSegmentSize || n%16 != 0 {
		return fmt.Errorf("segment size %d not a multiple of 16 in [%d, %d]", n, MinSegmentSize, MaxSegmentSize)
	}
	return nil
}

// Layout computes sizes and positions of an encrypted object without I/O.
// Get one from Writer.Layout or Metadata.Layout.
type Layout struct {
	HeaderLen   int64 // bytes before the first segment
	SegmentSize int64 // plaintext bytes per segment (the last may be shorter)
	Decorated   bool  // a decorator may change segment sizes: sizes are upper bounds
	decorators  int
}

func roundUp16(n int64) int64 { return (n + 15) &^ 15 }

// Segments is the number of segments of an object of plaintextLen bytes.
func (l Layout) Segments(plaintextLen int64) int64 {
	if plaintextLen <= 0 {
		return 0
	}
	return (plaintextLen + l.SegmentSize - 1) / l.SegmentSize
}

// frameLen is the stored size of a segment whose body is n bytes.
func frameLen(n int64) int64 { return ivLen + roundUp16(n) + macLen }

// maxBody is the largest body a segment of n plaintext bytes can have: each
// decorator adds at most one tag byte when it keeps the input unchanged.
func (l Layout) maxBody(n int64) int64 { return n + int64(l.decorators) }

// EncryptedSize is the size of the stored object for plaintextLen bytes of
// plaintext. Exact for objects without decorators; with decorators it is
// the largest size the object can have (compression only shrinks it).
func (l Layout) EncryptedSize(plaintextLen int64) int64 {
	n := l.Segments(plaintextLen)
	size := l.HeaderLen + trailerLen
	if n == 0 {
		return size
	}
	full := n - 1
	last := plaintextLen - full*l.SegmentSize
	size += full*frameLen(l.maxBody(l.SegmentSize)) + frameLen(l.maxBody(last))
	if l.Decorated {
		size += n * indexEntry
	}
	return size
}

// SegmentOffset is where segment i starts in the stored object, and how
// many plaintext bytes it holds. Exact only without decorators (Decorated
// false); decorated objects are located through the index in their trailer.
func (l Layout) SegmentOffset(plaintextLen, i int64) (offset, plainLen int64) {
	offset = l.HeaderLen + i*frameLen(l.SegmentSize)
	plainLen = min(l.SegmentSize, plaintextLen-i*l.SegmentSize)
	return offset, max(plainLen, 0)
}

// SegmentsFor returns the segments [first, last] that cover plaintext
// bytes [off, off+length); ok is false for an empty range.
func (l Layout) SegmentsFor(off, length int64) (first, last int64, ok bool) {
	if length <= 0 || off < 0 {
		return 0, 0, false
	}
	return off / l.SegmentSize, (off + length - 1) / l.SegmentSize, true
}
