//go:build amd64 && !purego

package objcrypt

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// fastCBC is AES-CBC with AES-NI. Go's crypto/cipher CBC calls the block
// cipher once per 16-byte block, so decryption runs at the latency of one
// AES chain (about 1.3 GB/s); CBC decryption has no chain, and keeping eight
// blocks in flight is what lets it run several times faster. Encryption is
// a chain by nature; doing it in one loop only saves the per-block calls.
//
// The key schedule is computed here because crypto/aes does not expose it.
// The known-answer and cross-check tests compare this layer with the
// standard library on every block count up to a few pipelines.
type fastCBC struct {
	rounds int
	enc    [15 * 16]byte // round keys for AESENC, in order
	dec    [15 * 16]byte // round keys for AESDEC (equivalent inverse cipher)
}

func newFastCBC(key []byte) *fastCBC {
	if !cpu.X86.HasAES || (len(key) != 16 && len(key) != 32) {
		return nil
	}
	f := &fastCBC{rounds: len(key)/4 + 6}
	expandKey(key, f.enc[:])
	nr := f.rounds
	copy(f.dec[0:16], f.enc[nr*16:])
	for r := 1; r < nr; r++ {
		invMixColumns(f.dec[r*16:r*16+16], f.enc[(nr-r)*16:(nr-r)*16+16])
	}
	copy(f.dec[nr*16:nr*16+16], f.enc[0:16])
	return f
}

//go:noescape
func cbcEncryptAES(rounds int, xk *byte, dst, src, iv *byte, blocks int)

//go:noescape
func cbcDecryptAES(rounds int, xk *byte, dst, src, iv *byte, blocks int)

// encrypt and decrypt process len(src)/16 whole blocks; dst may alias src
// exactly. iv is not modified.
func (f *fastCBC) encrypt(dst, src, iv []byte) {
	n := len(src) / 16
	if n == 0 {
		return
	}
	_, _ = dst[n*16-1], iv[15] // bounds, before handing pointers to assembly
	cbcEncryptAES(f.rounds, &f.enc[0], &dst[0], &src[0], &iv[0], n)
}

func (f *fastCBC) decrypt(dst, src, iv []byte) {
	n := len(src) / 16
	if n == 0 {
		return
	}
	_, _ = dst[n*16-1], iv[15]
	cbcDecryptAES(f.rounds, &f.dec[0], &dst[0], &src[0], &iv[0], n)
}

// sbox is the AES S-box, computed (multiplicative inverse in GF(2^8)
// followed by the affine map of FIPS-197 5.1.1) rather than typed in.
var sbox = func() (s [256]byte) {
	for x := range 256 {
		inv := byte(0)
		if x != 0 {
			// x^254 is the inverse in GF(2^8).
			inv = 1
			for range 254 {
				inv = gmul(inv, byte(x))
			}
		}
		b := inv
		s[x] = b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^ 0x63
	}
	return s
}()

func rotl8(b byte, n int) byte { return b<<n | b>>(8-n) }

// gmul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// expandKey writes the (rounds+1) round keys of FIPS-197 5.2 to out.
func expandKey(key, out []byte) {
	nk := len(key) / 4
	total := 4 * (nk + 7)
	var buf [60]uint32 // 4*(8+7) words for AES-256
	w := buf[:total]
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	subWord := func(v uint32) uint32 {
		return uint32(sbox[v>>24])<<24 | uint32(sbox[v>>16&0xff])<<16 | uint32(sbox[v>>8&0xff])<<8 | uint32(sbox[v&0xff])
	}
	rcon := byte(1)
	for i := nk; i < total; i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ uint32(rcon)<<24
			rcon = gmul(rcon, 2)
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	for i, v := range w {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
}

// invMixColumns applies InvMixColumns (FIPS-197 5.3.3) to one round key,
// turning an encryption round key into one for the equivalent inverse
// cipher that AESDEC implements.
func invMixColumns(dst, src []byte) {
	m9, m11, m13, m14 := &invMixTables[0], &invMixTables[1], &invMixTables[2], &invMixTables[3]
	for c := range 4 {
		a0, a1, a2, a3 := src[4*c], src[4*c+1], src[4*c+2], src[4*c+3]
		dst[4*c] = m14[a0] ^ m11[a1] ^ m13[a2] ^ m9[a3]
		dst[4*c+1] = m9[a0] ^ m14[a1] ^ m11[a2] ^ m13[a3]
		dst[4*c+2] = m13[a0] ^ m9[a1] ^ m14[a2] ^ m11[a3]
		dst[4*c+3] = m11[a0] ^ m13[a1] ^ m9[a2] ^ m14[a3]
	}
}

// invMixTables are gmul by 9, 11, 13 and 14, computed once: a key
// schedule per object read would otherwise spend microseconds in gmul.
var invMixTables = func() (t [4][256]byte) {
	for x := range 256 {
		t[0][x] = gmul(byte(x), 9)
		t[1][x] = gmul(byte(x), 11)
		t[2][x] = gmul(byte(x), 13)
		t[3][x] = gmul(byte(x), 14)
	}
	return t
}()
