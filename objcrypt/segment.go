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
	pads       *macPads // nil without the SHA-NI lanes (macPair)
	headerHash [32]byte // SHA-256 of the header's format part
}

// newObjectKeys takes the object's dataPRK.
func newObjectKeys(prk []byte, alg Algorithm, formatPart []byte) (*objectKeys, error) {
	encKey, macKey, err := deriveKeysPRK(prk, alg)
	if err != nil {
		return nil, err
	}
	return keysFrom(encKey, macKey, formatPart)
}

// keysFrom builds an object's keys from its encryption and MAC keys (both
// kept, not copied) and its header's format part: every Reader and Writer
// gets them here, whether its keys were derived now or cached (DataKeys),
// so all run the same cipher layers (the AES-NI pipeline, the paired MACs).
func keysFrom(encKey, macKey, formatPart []byte) (*objectKeys, error) {
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	return &objectKeys{
		block:      block,
		fast:       newFastCBC(encKey),
		macKey:     macKey,
		pads:       newMACPads(macKey),
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
	s.macPrefix(p, idx, last, bodyLen)
	s.mac.Reset()
	s.mac.Write(p)
	s.mac.Write(ivAndCT)
	return s.mac.Sum(s.sum[:0])
}

// macPrefix writes the MAC input that precedes a segment's frame
// (macPrefixLen bytes) into p.
func (s *segState) macPrefix(p []byte, idx int64, last bool, bodyLen int) {
	p[0] = domainSegment
	copy(p[1:33], s.k.headerHash[:])
	binary.BigEndian.PutUint64(p[33:41], uint64(idx))
	p[41] = 0
	if last {
		p[41] = 1
	}
	binary.BigEndian.PutUint32(p[42:46], uint32(bodyLen))
}

// sealFrames seals consecutive segments idx, idx+1, ... into their frames,
// laid end to end in dst, and returns them. dst must hold the frames
// (frameLen of each body) and already start each frame with its fresh
// random IV. bodies[i] is segment idx+i's body; last says whether the
// final one is the object's last segment. The whole blocks are encrypted
// straight from the bodies, every segment's chain together (cbcEncryptLanes):
// the ciphertext is the same as one segment at a time. Only a partial
// last block is copied and zero-padded, and encrypted after its chain.
func (s *segState) sealFrames(dst []byte, bodies [][]byte, idx int64, last bool) []byte {
	var jobs [maxWriterLanes]cbcJob
	js := jobs[:0]
	if len(bodies) > len(jobs) {
		js = make([]cbcJob, 0, len(bodies))
	}
	off := 0
	for _, body := range bodies {
		padded := int(roundUp16(int64(len(body))))
		frame := dst[off : off+ivLen+padded+macLen]
		ct := frame[ivLen : ivLen+padded]
		full := len(body) &^ 15
		js = append(js, cbcJob{dst: ct[:full], src: body[:full], iv: frame[:ivLen]})
		if tail := len(body) - full; tail > 0 {
			copy(ct[full:], body[full:])
			clear(ct[full+tail:])
		}
		off += len(frame)
	}
	s.cbcEncryptLanes(js)
	var frames [maxWriterLanes][]byte
	fs := frames[:0]
	if len(bodies) > len(frames) {
		fs = make([][]byte, 0, len(bodies))
	}
	off = 0
	for _, body := range bodies {
		padded := int(roundUp16(int64(len(body))))
		frame := dst[off : off+ivLen+padded+macLen]
		if full := len(body) &^ 15; full < padded {
			blk := frame[ivLen+full : ivLen+padded]
			s.cbcEncrypt(blk, blk, frame[full:ivLen+full]) // chained on the previous block (or the IV)
		}
		fs = append(fs, frame)
		off += len(frame)
	}
	s.macFrames(fs, bodies, idx, last)
	return dst[:off]
}

// macFrames writes the MAC at the end of each frame (segments idx, ...;
// bodies are their bodies): two frames of the same length at a time
// through macPair where the SHA-NI lanes are (bodies of the same length:
// the last segment's frame may be as long as the others with a shorter
// body), one at a time otherwise.
func (s *segState) macFrames(frames, bodies [][]byte, idx int64, last bool) {
	for i := 0; i < len(frames); {
		ivCT := frames[i][:len(frames[i])-macLen]
		if j := i + 1; j < len(frames) && s.pairable(len(bodies[i]), len(bodies[j])) {
			ivCTB := frames[j][:len(frames[j])-macLen]
			s.macPair(frames[i][len(ivCT):], frames[j][len(ivCTB):], idx+int64(i), last && j == len(frames)-1,
				len(bodies[i]), ivCT, ivCTB)
			i += 2
			continue
		}
		isLast := last && i == len(frames)-1
		copy(frames[i][len(ivCT):], s.segmentMAC(idx+int64(i), isLast, len(bodies[i]), ivCT))
		i++
	}
}

// pairable says whether segments whose stored bodies are bodyA and bodyB
// bytes can have their MACs computed together (macPair): only where the
// SHA-NI lanes are, and for frames of the same length, which the two
// interleaved chains need, and long enough to pay off.
func (s *segState) pairable(bodyA, bodyB int) bool {
	return s.k.pads != nil && bodyA == bodyB && ivLen+int(roundUp16(int64(bodyA))) >= macPairMin
}

// open verifies a frame and decrypts its body into dst (capacity at least
// the padded body length). Nothing is decrypted before the MAC verifies.
func (s *segState) open(dst, frame []byte, bodyLen int, idx int64, last bool) ([]byte, error) {
	padded := int(roundUp16(int64(bodyLen)))
	if len(frame) != ivLen+padded+macLen || cap(dst) < padded {
		return nil, fmt.Errorf("%w: segment %d frame is %d bytes, body %d", ErrTampered, idx, len(frame), bodyLen)
	}
	return s.decryptVerified(dst, frame, s.segmentMAC(idx, last, bodyLen, frame[:ivLen+padded]), bodyLen, idx)
}

// openPair is open for segments idx and idx+1 (the first never the
// last), both bodyLen bytes stored: their MACs are computed together
// (macPair, two SHA-256 chains interleaved), then each segment is
// compared with its own tag and decrypted only if it matches, exactly as
// open would: a bad segment yields its error and no plaintext, and does
// not stop the other (the Reader delivers segments in order and stops at
// the first error). Frames macPair cannot take are opened one at a time.
func (s *segState) openPair(dstA, dstB, frameA, frameB []byte, bodyLen int, idx int64, lastB bool) (a, b []byte, errA, errB error) {
	padded := int(roundUp16(int64(bodyLen)))
	n := ivLen + padded
	if !s.pairable(bodyLen, bodyLen) || len(frameA) != n+macLen || len(frameB) != n+macLen ||
		cap(dstA) < padded || cap(dstB) < padded {
		a, errA = s.open(dstA, frameA, bodyLen, idx, false)
		b, errB = s.open(dstB, frameB, bodyLen, idx+1, lastB)
		return a, b, errA, errB
	}
	var tagA, tagB [macLen]byte
	s.macPair(tagA[:], tagB[:], idx, lastB, bodyLen, frameA[:n], frameB[:n])
	a, errA = s.decryptVerified(dstA, frameA, tagA[:], bodyLen, idx)
	b, errB = s.decryptVerified(dstB, frameB, tagB[:], bodyLen, idx+1)
	return a, b, errA, errB
}

// decryptVerified compares the frame's tag with tag, the MAC computed
// over it, in constant time, and only if they match decrypts the body
// into dst. The frame's length has been checked against bodyLen.
func (s *segState) decryptVerified(dst, frame, tag []byte, bodyLen int, idx int64) ([]byte, error) {
	padded := int(roundUp16(int64(bodyLen)))
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

// maxAsmLanes is the most chains the AES-NI layer interleaves in one loop
// (cbclanes_amd64.s); it takes more in batches of that many.
const maxAsmLanes = 8

// cbcJob is one chain of cbcEncryptLanes: len(src)/16 whole blocks of src
// encrypted into dst, chained from iv.
type cbcJob struct{ dst, src, iv []byte }

// cbcEncryptLanes encrypts every job as cbcEncrypt would, the chains
// interleaved where the AES-NI layer is (one after another otherwise).
func (s *segState) cbcEncryptLanes(jobs []cbcJob) {
	if s.k.fast != nil {
		s.k.fast.encryptLanes(jobs)
		return
	}
	for _, j := range jobs {
		n := len(j.src) &^ 15
		s.cbcEncrypt(j.dst[:n], j.src[:n], j.iv)
	}
}

func (s *segState) cbcDecrypt(dst, src, iv []byte) {
	if s.k.fast != nil {
		s.k.fast.decrypt(dst, src, iv)
		return
	}
	s.dec.(ivSetter).SetIV(iv)
	s.dec.CryptBlocks(dst, src)
}
