package objcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// The EC fragment layout (SPEC.md, "Erasure coding: the fragment layout"):
// an erasure-coded fragment archive stored as the sequence of
// liberasurecode fragments it is, each fragment's header in clear (with
// the fragment's MAC in its unused checksum field) and its payload
// encrypted in place with AES-256-CTR, so the stored archive has the
// fragment archive's length and every header stays valid for pyeclib
// (Swift's Python auditor and reconstructor read it).

// ECLayout is the value of X-Object-Sysmeta-Arca-Layout for an archive in
// this layout.
const ECLayout = "ec1"

// liberasurecode's fragment header (liberasurecode 1.6, erasurecode.h):
// little-endian, packed.
const (
	ECHeaderLen     = 80
	ecMetaLen       = 59 // fragment_metadata_t, what metadata_chksum covers
	ecOffSize       = 4
	ecOffBackendMD  = 8
	ecOffOrigSize   = 12
	ecOffChksumType = 20
	ecOffChksum     = 21
	ecChksumLen     = 32
	ecOffMismatch   = 53
	ecOffMagic      = 59
	ecOffVersion    = 63
	ecOffMetaCRC    = 67
	ecMagic         = 0xb0c5ecc
	ecChksumNone    = 1
	ecMinVersion    = 0x010200 // metadata checksums since liberasurecode 1.2.0
	// maxECPayload bounds a fragment's payload, so a forged header cannot
	// make a writer or reader allocate much (a 1 MiB segment's fragment
	// at k = 1 is 1 MiB).
	maxECPayload = 32 << 20
)

const (
	labelECEnc = "arca objcrypt ec v1 fragment cipher key"
	labelECMAC = "arca objcrypt ec v1 fragment mac key"
)

var crcTable = crc32.MakeTable(crc32.IEEE)

// ecHeaderCRC is liberasurecode's metadata_chksum of a header: zlib's
// CRC-32 of its first 59 bytes.
func ecHeaderCRC(h []byte) uint32 { return crc32.Checksum(h[:ecMetaLen], crcTable) }

// ecFragLen is the length of the fragment whose header is h.
func ecFragLen(h []byte) int64 {
	return ECHeaderLen + int64(binary.LittleEndian.Uint32(h[ecOffSize:])) +
		int64(binary.LittleEndian.Uint32(h[ecOffBackendMD:]))
}

func ecFragIndex(h []byte) uint32 { return binary.LittleEndian.Uint32(h[0:]) }

// checkECHeader checks what every header of the layout has: magic, a
// version with metadata checksums, a valid CRC, chksum type none, no
// mismatch flag, a bounded payload.
func checkECHeader(h []byte) error {
	switch {
	case len(h) < ECHeaderLen:
		return errors.New("short fragment header")
	case binary.LittleEndian.Uint32(h[ecOffMagic:]) != ecMagic:
		return errors.New("not a liberasurecode fragment header")
	case binary.LittleEndian.Uint32(h[ecOffVersion:]) < ecMinVersion:
		return errors.New("liberasurecode header without a metadata checksum")
	case binary.LittleEndian.Uint32(h[ecOffMetaCRC:]) != ecHeaderCRC(h):
		return errors.New("fragment header checksum mismatch")
	case h[ecOffChksumType] != ecChksumNone || h[ecOffMismatch] != 0:
		return errors.New("fragment with a payload checksum")
	case binary.LittleEndian.Uint32(h[ecOffSize:]) > maxECPayload,
		binary.LittleEndian.Uint32(h[ecOffBackendMD:]) > maxECPayload:
		return errors.New("fragment payload too large")
	}
	return nil
}

// IsECFragmentHeader reports whether b starts with a liberasurecode
// fragment header that the EC layout takes as input: valid, without a
// payload checksum, its checksum field zero.
func IsECFragmentHeader(b []byte) bool {
	if checkECHeader(b) != nil {
		return false
	}
	for _, c := range b[ecOffChksum : ecOffChksum+ecChksumLen] {
		if c != 0 {
			return false
		}
	}
	return true
}

// ECMetadata is what the object server keeps beside an archive in the EC
// layout (objectserver/sysmeta). Length is both the stored and the
// plaintext length.
type ECMetadata struct {
	KeyID      string
	WrappedKey []byte
	Length     int64
	Fragments  int64
	MAC        []byte // the archive MAC, 32 bytes
}

// ecKeys are an archive's keys.
type ecKeys struct {
	block cipher.Block
	mac   hash.Hash
	etag  *ETagKeys
}

func newECKeys(dataKey []byte) (*ecKeys, error) {
	prk, err := dataPRK(dataKey)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	enc, err := hkdf.Expand(sha256.New, prk, labelECEnc, 32)
	if err != nil {
		return nil, err
	}
	defer clear(enc)
	mk, err := hkdf.Expand(sha256.New, prk, labelECMAC, 32)
	if err != nil {
		return nil, err
	}
	defer clear(mk)
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	et, err := newETagKeysPRK(prk)
	if err != nil {
		return nil, err
	}
	return &ecKeys{block: block, mac: hmac.New(sha256.New, mk), etag: et}, nil
}

// fragMAC is T_i over the fragment's header as liberasurecode wrote it
// (plain: checksum field zero, its CRC) and its ciphertext payload.
func (k *ecKeys) fragMAC(dst []byte, i int64, last bool, plainHeader, payload []byte) []byte {
	k.mac.Reset()
	var pre [10]byte
	pre[0] = 0x01
	binary.BigEndian.PutUint64(pre[1:], uint64(i))
	if last {
		pre[9] = 1
	}
	k.mac.Write(pre[:])
	k.mac.Write(plainHeader[:ECHeaderLen])
	k.mac.Write(payload)
	return k.mac.Sum(dst)
}

// archiveMAC binds the archive's length and fragment count.
func (k *ecKeys) archiveMAC(length, fragments int64) []byte {
	k.mac.Reset()
	var b [17]byte
	b[0] = 0x02
	binary.BigEndian.PutUint64(b[1:], uint64(length))
	binary.BigEndian.PutUint64(b[9:], uint64(fragments))
	k.mac.Write(b[:])
	return k.mac.Sum(nil)
}

// crypt XORs fragment i's keystream into p (encrypts or decrypts).
func (k *ecKeys) crypt(i int64, p []byte) { k.cryptTo(i, p, p) }

// cryptTo is crypt from src into dst (same length; the same slice or not
// overlapping).
func (k *ecKeys) cryptTo(i int64, dst, src []byte) {
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[:8], uint64(i))
	cipher.NewCTR(k.block, iv[:]).XORKeyStream(dst, src)
}

// sealHeader turns a plain header into the stored one: MAC in the
// checksum field, CRC recomputed.
func sealHeader(h, mac []byte) {
	copy(h[ecOffChksum:ecOffChksum+ecChksumLen], mac)
	binary.LittleEndian.PutUint32(h[ecOffMetaCRC:], ecHeaderCRC(h))
}

// openHeader turns a stored header back into the plain one, returning
// the MAC it held.
func openHeader(h []byte) [32]byte {
	var mac [32]byte
	copy(mac[:], h[ecOffChksum:ecOffChksum+ecChksumLen])
	clear(h[ecOffChksum : ecOffChksum+ecChksumLen])
	binary.LittleEndian.PutUint32(h[ecOffMetaCRC:], ecHeaderCRC(h))
	return mac
}

// splitter cuts a byte stream into fragments, holding the latest complete
// one back until it is known whether it is the last. It checks the
// archive's shape: one fragment index, every fragment but the last of the
// first one's length, the last no longer.
type splitter struct {
	cur, held []byte
	stride    int64
	index     uint32
	count     int64
	length    int64
	check     func(h []byte) error
	emit      func(frag []byte, i int64, last bool) error
	err       error
}

func (s *splitter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		want := int64(ECHeaderLen)
		if len(s.cur) >= ECHeaderLen {
			want = ecFragLen(s.cur)
		}
		take := min(int64(len(p)), want-int64(len(s.cur)))
		s.cur = append(s.cur, p[:take]...)
		p = p[take:]
		if len(s.cur) == ECHeaderLen {
			if err := s.header(); err != nil {
				s.err = err
				return 0, err
			}
		}
		if len(s.cur) >= ECHeaderLen && int64(len(s.cur)) == ecFragLen(s.cur) {
			if err := s.complete(); err != nil {
				s.err = err
				return 0, err
			}
		}
	}
	s.length += int64(n)
	return n, nil
}

func (s *splitter) header() error {
	if err := s.check(s.cur); err != nil {
		return fmt.Errorf("%w: fragment %d: %w", ErrInvalid, s.count, err)
	}
	fl := ecFragLen(s.cur)
	if s.count == 0 && s.held == nil {
		s.stride, s.index = fl, ecFragIndex(s.cur)
	} else if fl > s.stride || ecFragIndex(s.cur) != s.index {
		return fmt.Errorf("%w: fragment %d does not match the archive's first", ErrInvalid, s.count)
	}
	if cap(s.cur) < int(fl) {
		s.cur = append(make([]byte, 0, fl), s.cur...)
	}
	return nil
}

func (s *splitter) complete() error {
	if s.held != nil {
		if int64(len(s.held)) != s.stride {
			return fmt.Errorf("%w: fragment %d shorter than the first, not last", ErrInvalid, s.count)
		}
		if err := s.emit(s.held, s.count, false); err != nil {
			return err
		}
		s.count++
	}
	s.held, s.cur = s.cur, s.held[:0]
	return nil
}

// close emits the last fragment; a partial fragment is an error.
func (s *splitter) close() error {
	if s.err != nil {
		return s.err
	}
	if len(s.cur) > 0 {
		return fmt.Errorf("%w: archive ends inside a fragment", ErrTruncated)
	}
	if s.held != nil {
		if err := s.emit(s.held, s.count, true); err != nil {
			return err
		}
		s.count++
		s.held = nil
	}
	return nil
}

// ECWriter encrypts a fragment archive into the EC layout as it streams:
// Write the archive as the proxy sent it, then Close.
type ECWriter struct {
	out     io.Writer
	keys    *ecKeys
	keyID   string
	wrapped []byte
	obs     Observer
	sp      splitter
	md      *ECMetadata
	macBuf  []byte
	// pending holds sealed fragments not yet written (with an
	// observer), pendingLast the index of the last of them.
	pending     []byte
	pendingLast int64
}

// NewECWriter starts an archive for path under key. obs (may be nil) sees
// the plaintext and stored bytes, as a Writer's Observer.
func NewECWriter(out io.Writer, key ProjectKey, path string, obs Observer, rnd io.Reader) (*ECWriter, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = defaultRand
	}
	dk := make([]byte, dataKeyLen)
	defer clear(dk)
	if _, err := io.ReadFull(rnd, dk); err != nil {
		return nil, fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	wrapped, err := wrapKey(key, path, dk, rnd)
	if err != nil {
		return nil, err
	}
	keys, err := newECKeys(dk)
	if err != nil {
		return nil, err
	}
	w := &ECWriter{out: out, keys: keys, keyID: key.ID, wrapped: wrapped, obs: obs}
	w.sp.check = func(h []byte) error {
		if !IsECFragmentHeader(h) {
			return errors.New("not a liberasurecode fragment without checksum")
		}
		return nil
	}
	w.sp.emit = w.seal
	return w, nil
}

// seal encrypts and authenticates fragment i and writes it. With an
// observer, the fragment is sealed into a buffer of its own rather than in
// place, so that the observer sees it as received and as stored in one
// call: the object server's two MD5s then go through one two-lane pass
// (objectserver/internal/etag) instead of two single ones, for the cost
// of no extra copy (CTR reads the payload and writes the other buffer).
// That buffer holds up to ecWriteBatch fragments, written together.
func (w *ECWriter) seal(frag []byte, i int64, last bool) error {
	out := frag
	if w.obs != nil {
		if len(w.pending)+len(frag) > cap(w.pending) {
			if err := w.flush(); err != nil {
				return err
			}
			if want := w.batchCap(len(frag), i, last); cap(w.pending) < want {
				w.pending = make([]byte, 0, want)
			}
		}
		n := len(w.pending)
		w.pending = w.pending[:n+len(frag)]
		out = w.pending[n:]
		copy(out[:ECHeaderLen], frag[:ECHeaderLen])
	}
	payload := out[ECHeaderLen:]
	w.keys.cryptTo(i, payload, frag[ECHeaderLen:])
	w.macBuf = w.keys.fragMAC(w.macBuf[:0], i, last, out, payload)
	sealHeader(out, w.macBuf)
	if w.obs != nil {
		w.obs.Observe(frag, out)
		w.pendingLast = i
		if last {
			return w.flush()
		}
		return nil
	}
	if _, err := w.out.Write(out); err != nil {
		return fmt.Errorf("objcrypt: writing fragment %d: %w", i, err)
	}
	return nil
}

// ecWriteBatch is how many sealed fragments an ECWriter with an observer
// writes in one call: a write system call per fragment (a proxy's 1 MiB
// EC segment over 4 data fragments is a 256 KiB fragment) was a wake-up
// of the Go runtime's monitor thread per fragment on an idle-then-busy
// object server; four make a 1 MiB write at Swift's defaults.
const ecWriteBatch = 4

// batchCap is the capacity of the buffer sealed fragments wait in: one
// fragment for an archive of one, else ecWriteBatch of the first's
// length (every later fragment is no longer).
func (w *ECWriter) batchCap(fragLen int, i int64, last bool) int {
	if i == 0 && last {
		return fragLen
	}
	return ecWriteBatch * fragLen
}

// flush writes the sealed fragments waiting in the batch.
func (w *ECWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.out.Write(w.pending)
	w.pending = w.pending[:0]
	if err != nil {
		return fmt.Errorf("objcrypt: writing fragments up to %d: %w", w.pendingLast, err)
	}
	return nil
}

// Write takes the next bytes of the fragment archive.
func (w *ECWriter) Write(p []byte) (int, error) {
	if w.md != nil {
		return 0, ErrClosed
	}
	return w.sp.Write(p)
}

// Close writes the last fragment and makes Metadata available.
func (w *ECWriter) Close() error {
	if w.md != nil {
		return nil
	}
	if err := w.sp.close(); err != nil {
		return err
	}
	w.md = &ECMetadata{
		KeyID: w.keyID, WrappedKey: w.wrapped, Length: w.sp.length, Fragments: w.sp.count,
		MAC: w.keys.archiveMAC(w.sp.length, w.sp.count),
	}
	return nil
}

// Metadata is the archive's record, after Close.
func (w *ECWriter) Metadata() ECMetadata { return *w.md }

// ETagKeys are the archive's ETag keys (SPEC.md, "The ETag").
func (w *ECWriter) ETagKeys() *ETagKeys { return w.keys.etag }

// FragIndex is the fragment index the archive's headers carry (after at
// least one fragment), or -1.
func (w *ECWriter) FragIndex() int {
	if w.sp.count == 0 && w.sp.held == nil {
		return -1
	}
	return int(w.sp.index)
}

// openECKeys unwraps an archive's data key and checks its archive MAC.
func openECKeys(key ProjectKey, path string, m *ECMetadata) (*ecKeys, error) {
	dk, err := unwrapKey(key, m.KeyID, path, m.WrappedKey)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	keys, err := newECKeys(dk)
	if err != nil {
		return nil, err
	}
	if m.Length < 0 || m.Fragments < 0 || !hmac.Equal(keys.archiveMAC(m.Length, m.Fragments), m.MAC) {
		return nil, fmt.Errorf("%w: archive MAC", ErrMetadataTampered)
	}
	return keys, nil
}

// ECVerifier checks, as it streams, that an archive in the EC layout
// (sent by an SSYNC sender with its metadata) opens under key at path:
// every fragment's MAC, its shape, its length and fragment count. Write
// the stored bytes, then Close; the bytes are stored as they are.
type ECVerifier struct {
	keys   *ecKeys
	md     ECMetadata
	sp     splitter
	macBuf []byte
}

// NewECVerifier checks m's archive MAC and returns a verifier.
func NewECVerifier(key ProjectKey, path string, m ECMetadata) (*ECVerifier, error) {
	keys, err := openECKeys(key, path, &m)
	if err != nil {
		return nil, err
	}
	v := &ECVerifier{keys: keys, md: m}
	v.sp.check = checkECHeader
	v.sp.emit = v.verify
	return v, nil
}

func (v *ECVerifier) verify(frag []byte, i int64, last bool) error {
	h := make([]byte, ECHeaderLen)
	copy(h, frag)
	mac := openHeader(h)
	v.macBuf = v.keys.fragMAC(v.macBuf[:0], i, last, h, frag[ECHeaderLen:])
	if !hmac.Equal(v.macBuf, mac[:]) {
		return fmt.Errorf("%w: fragment %d", ErrTampered, i)
	}
	return nil
}

// Write takes the next stored bytes.
func (v *ECVerifier) Write(p []byte) (int, error) {
	if v.sp.length+int64(len(p)) > v.md.Length {
		return 0, fmt.Errorf("%w: archive longer than its metadata", ErrTampered)
	}
	return v.sp.Write(p)
}

// Close checks the last fragment and the archive's length and count.
func (v *ECVerifier) Close() error {
	if err := v.sp.close(); err != nil {
		return err
	}
	if v.sp.length != v.md.Length || v.sp.count != v.md.Fragments {
		return fmt.Errorf("%w: archive of %d bytes in %d fragments, metadata says %d in %d",
			ErrTruncated, v.sp.length, v.sp.count, v.md.Length, v.md.Fragments)
	}
	return nil
}

// FragIndex is the fragment index the archive's headers carry (after at
// least one fragment), or -1.
func (v *ECVerifier) FragIndex() int {
	if v.sp.count == 0 && v.sp.held == nil {
		return -1
	}
	return int(v.sp.index)
}

// ETagKeys are the archive's ETag keys.
func (v *ECVerifier) ETagKeys() *ETagKeys { return v.keys.etag }
