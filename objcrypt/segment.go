package objcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// MAC domains: a segment MAC can never be confused with the trailer MAC.
const (
	domainSegment = 1
	domainTrailer = 2
	macPrefixLen  = 1 + 32 + 8 + 1 + 4
)

// objectKeys is what one object needs to seal and open its segments. It is
// immutable after construction and shared by all goroutines working on the
// object; mutable state lives in segState.
type objectKeys struct {
	block      cipher.Block
	fast       *fastCBC // nil when the CPU lacks AES instructions
	macKey     []byte
	headerHash [32]byte // SHA-256 of the header's format part
}

// newObjectKeys takes the object's dataPRK.
func newObjectKeys(prk []byte, alg Algorithm, formatPart []byte) (*objectKeys, error) {
	encKey, macKey, err := deriveKeysPRK(prk, alg)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	return &objectKeys{
		block:      block,
		fast:       newFastCBC(encKey),
		macKey:     macKey,
		headerHash: sha256.Sum256(formatPart),
	}, nil
}

// segState is one goroutine's working state: an HMAC and a CBC mode whose IV
// is reset per segment, so sealing and opening allocate nothing.
type segState struct {
	k      *objectKeys
	mac    hash.Hash
	enc    cipher.BlockMode
	dec    cipher.BlockMode
	prefix [macPrefixLen]byte
	sum    [32]byte
}

type ivSetter interface{ SetIV([]byte) }

func newSegState(k *objectKeys) *segState {
	s := &segState{
		k:   k,
		mac: hmac.New(sha256.New, k.macKey),
	}
	if k.fast == nil { // the standard library's modes, only when needed
		var zero [ivLen]byte
		s.enc = cipher.NewCBCEncrypter(k.block, zero[:])
		s.dec = cipher.NewCBCDecrypter(k.block, zero[:])
	}
	return s
}

// segmentMAC computes the tag of segment idx over its IV and ciphertext. The
// MAC input names the object (header hash), the position, whether it is the
// last segment and the body length, so segments cannot be reordered,
// dropped, appended, resized or moved between objects.
func (s *segState) segmentMAC(idx int64, last bool, bodyLen int, ivAndCT []byte) []byte {
	p := s.prefix[:]
	p[0] = domainSegment
	copy(p[1:33], s.k.headerHash[:])
	binary.BigEndian.PutUint64(p[33:41], uint64(idx))
	p[41] = 0
	if last {
		p[41] = 1
	}
	binary.BigEndian.PutUint32(p[42:46], uint32(bodyLen))
	s.mac.Reset()
	s.mac.Write(p)
	s.mac.Write(ivAndCT)
	return s.mac.Sum(s.sum[:0])
}

// seal writes the frame of a segment into dst (which must hold
// frameLen(len(body)) bytes) and returns it. iv must be fresh randomness.
// The whole blocks are encrypted straight from body; only a partial last
// block is copied and zero-padded.
func (s *segState) seal(dst, body, iv []byte, idx int64, last bool) []byte {
	padded := int(roundUp16(int64(len(body))))
	frame := dst[:ivLen+padded+macLen]
	copy(frame, iv[:ivLen])
	ct := frame[ivLen : ivLen+padded]
	full := len(body) &^ 15
	s.cbcEncrypt(ct[:full], body[:full], frame[:ivLen])
	if tail := len(body) - full; tail > 0 {
		blk := ct[full:]
		copy(blk, body[full:])
		clear(blk[tail:])
		s.cbcEncrypt(blk, blk, frame[full:ivLen+full]) // chained on the previous block (or the IV)
	}
	copy(frame[ivLen+padded:], s.segmentMAC(idx, last, len(body), frame[:ivLen+padded]))
	return frame
}

// open verifies a frame and decrypts its body into dst (capacity at least
// the padded body length). Nothing is decrypted before the MAC verifies.
func (s *segState) open(dst, frame []byte, bodyLen int, idx int64, last bool) ([]byte, error) {
	padded := int(roundUp16(int64(bodyLen)))
	if len(frame) != ivLen+padded+macLen || cap(dst) < padded {
		return nil, fmt.Errorf("%w: segment %d frame is %d bytes, body %d", ErrTampered, idx, len(frame), bodyLen)
	}
	tag := s.segmentMAC(idx, last, bodyLen, frame[:ivLen+padded])
	if subtle.ConstantTimeCompare(tag, frame[ivLen+padded:]) != 1 {
		return nil, fmt.Errorf("%w: segment %d", ErrTampered, idx)
	}
	out := dst[:padded]
	s.cbcDecrypt(out, frame[ivLen:ivLen+padded], frame[:ivLen])
	// The writer pads with zeros; anything else means a writer bug or a
	// forger holding the key. Either way it is not our format.
	for _, c := range out[bodyLen:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: segment %d padding", ErrTampered, idx)
		}
	}
	return out[:bodyLen], nil
}

// trailerMAC authenticates the plaintext length and, for decorated objects,
// the index of stored body lengths.
func (s *segState) trailerMAC(plainLen int64, index []byte) []byte {
	var p [1 + 32 + 8]byte
	p[0] = domainTrailer
	copy(p[1:33], s.k.headerHash[:])
	binary.BigEndian.PutUint64(p[33:], uint64(plainLen))
	s.mac.Reset()
	s.mac.Write(p[:])
	s.mac.Write(index)
	return s.mac.Sum(s.sum[:0])
}

func subtleEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// cbcEncrypt and cbcDecrypt are the cipher layer: AES-CBC over whole blocks
// with the given IV, through the AES-NI pipeline where there is one and the
// standard library otherwise. The known-answer tests run through here.
func (s *segState) cbcEncrypt(dst, src, iv []byte) {
	if s.k.fast != nil {
		s.k.fast.encrypt(dst, src, iv)
		return
	}
	s.enc.(ivSetter).SetIV(iv)
	s.enc.CryptBlocks(dst, src)
}

func (s *segState) cbcDecrypt(dst, src, iv []byte) {
	if s.k.fast != nil {
		s.k.fast.decrypt(dst, src, iv)
		return
	}
	s.dec.(ivSetter).SetIV(iv)
	s.dec.CryptBlocks(dst, src)
}
