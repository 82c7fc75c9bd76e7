package objcrypt

import (
	"encoding/binary"
)

// macPads are the SHA-256 states of an HMAC-SHA256 key after its inner
// and outer pad blocks (RFC 2104), from which macPair starts every
// segment's MAC, as crypto/hmac does.
type macPads struct{ inner, outer [8]uint32 }

// sha256IV is SHA-256's initial state (FIPS 180-4, 5.3.3).
var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// newMACPads returns key's pad states for macPair, or nil where the
// SHA-NI lanes are not (or the key is longer than a block, which
// HMAC would hash first; the object keys are 32 bytes).
func newMACPads(key []byte) *macPads {
	if !hasSHA2Lanes || len(key) > 64 {
		return nil
	}
	var in, out [64]byte
	copy(in[:], key)
	copy(out[:], key)
	for i := range in {
		in[i] ^= 0x36
		out[i] ^= 0x5c
	}
	m := &macPads{inner: sha256IV, outer: sha256IV}
	sha256Blocks2(&m.inner, &m.outer, &in[0], &out[0], 1)
	clear(in[:])
	clear(out[:])
	return m
}

// macPairMin is the shortest frame macPair takes: it hashes the MAC
// prefix with the frame's first bytes as one block, and two frames of
// the same length only pay off when they are long.
const macPairMin = 1024

// macPair computes the segment MACs of two frames of the same length,
// segments idx and idx+1 (the first is never the last), their bodies
// bodyLen bytes each: the same tags as segmentMAC, the two SHA-256
// computations interleaved (sha256Blocks2). ivAndCT are the frames
// without their tags (at least macPairMin bytes); the tags are written
// to tagA and tagB.
func (s *segState) macPair(tagA, tagB []byte, idx int64, lastB bool, bodyLen int, ivCTA, ivCTB []byte) {
	const head = 64 - macPrefixLen // frame bytes in the first block
	pads := s.k.pads
	sa, sb := pads.inner, pads.inner
	var ba, bb [128]byte
	s.macPrefix(ba[:macPrefixLen], idx, false, bodyLen)
	s.macPrefix(bb[:macPrefixLen], idx+1, lastB, bodyLen)
	copy(ba[macPrefixLen:64], ivCTA)
	copy(bb[macPrefixLen:64], ivCTB)
	sha256Blocks2(&sa, &sb, &ba[0], &bb[0], 1)
	rest := len(ivCTA) - head
	n := rest / 64
	sha256Blocks2(&sa, &sb, &ivCTA[head], &ivCTB[head], n)
	// The tail, the padding and the length of pad block, prefix and frame.
	done := head + 64*n
	blocks := sha256Pad(&ba, ivCTA[done:], uint64(64+macPrefixLen+len(ivCTA)))
	sha256Pad(&bb, ivCTB[done:], uint64(64+macPrefixLen+len(ivCTB)))
	sha256Blocks2(&sa, &sb, &ba[0], &bb[0], blocks)
	// The outer hash over the inner digest: one block.
	oa, ob := pads.outer, pads.outer
	sha256Pad(&ba, putState(ba[:0], &sa), 64+32)
	sha256Pad(&bb, putState(bb[:0], &sb), 64+32)
	sha256Blocks2(&oa, &ob, &ba[0], &bb[0], 1)
	putState(tagA[:0], &oa)
	putState(tagB[:0], &ob)
}

// sha256Pad writes tail, the padding and the message length (n bytes
// in all) into buf and returns how many blocks that is (1 or 2; tail is
// shorter than a block).
func sha256Pad(buf *[128]byte, tail []byte, n uint64) int {
	t := copy(buf[:], tail)
	clear(buf[t:])
	buf[t] = 0x80
	blocks := 1
	if t+1+8 > 64 {
		blocks = 2
	}
	binary.BigEndian.PutUint64(buf[64*blocks-8:], n*8)
	return blocks
}

// putState appends the state's words big-endian: a digest.
func putState(dst []byte, st *[8]uint32) []byte {
	for _, v := range st {
		dst = binary.BigEndian.AppendUint32(dst, v)
	}
	return dst
}
