package etag

import (
	"encoding/binary"
	"hash"
)

// md5d is an MD5 digest whose blocks go through md5x2, so that an
// object's two streams (the plaintext, for Swift's ETag, and the stored
// bytes, for Swift's auditor) are hashed together in one pass at nearly
// the cost of one. crypto/md5 remains the reference: the tests compare
// every length and split against it.
type md5d struct {
	s   [4]uint32
	buf [64]byte
	nb  int
	n   uint64
}

var _ hash.Hash = (*md5d)(nil)

func newMD5d() *md5d {
	d := &md5d{}
	d.Reset()
	return d
}

func (d *md5d) Reset() {
	d.s = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	d.nb, d.n = 0, 0
}

func (d *md5d) Size() int      { return 16 }
func (d *md5d) BlockSize() int { return 64 }

func (d *md5d) Write(p []byte) (int, error) {
	md5Pair(d, nil, p, nil)
	return len(p), nil
}

func (d *md5d) Sum(in []byte) []byte {
	c := *d
	var pad [72]byte
	pad[0] = 0x80
	padLen := 56 - int(c.n%64)
	if padLen <= 0 {
		padLen += 64
	}
	binary.LittleEndian.PutUint64(pad[padLen:], c.n<<3)
	_, _ = c.Write(pad[:padLen+8]) // hashing into memory cannot fail
	var out [16]byte
	for i, v := range c.s {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return append(in, out[:]...)
}

// single hashes whole blocks of one stream (the second lane runs on a
// copy of the first and is dropped: a lane costs little when the other
// is busy anyway).
func single(s *[4]uint32, p []byte) {
	if n := len(p) / 64; n > 0 {
		var spare [4]uint32
		md5x2(s, &spare, &p[0], &p[0], n)
	}
}

// fill tops up a partial block from p and hashes it when full; it
// returns what is left of p.
func (d *md5d) fill(p []byte) []byte {
	if d.nb == 0 {
		return p
	}
	c := copy(d.buf[d.nb:], p)
	d.nb += c
	if d.nb == 64 {
		single(&d.s, d.buf[:])
		d.nb = 0
	}
	return p[c:]
}

// rest hashes the whole blocks of p alone and keeps the tail.
func (d *md5d) rest(p []byte) {
	if len(p) == 0 {
		return // a partial block may be waiting in buf
	}
	full := len(p) &^ 63
	single(&d.s, p[:full])
	d.nb = copy(d.buf[:], p[full:])
}

// md5Pair writes p to x and q to y (y may be nil), hashing the blocks
// they have in common in one md5x2 pass.
func md5Pair(x, y *md5d, p, q []byte) {
	x.n += uint64(len(p))
	p = x.fill(p)
	if y != nil {
		y.n += uint64(len(q))
		q = y.fill(q)
		// Both streams now start on a block boundary, unless one ran
		// out while filling (then its nb > 0 and len == 0).
		if n := min(len(p), len(q)) / 64; n > 0 {
			md5x2(&x.s, &y.s, &p[0], &q[0], n)
			p, q = p[64*n:], q[64*n:]
		}
		y.rest(q)
	}
	x.rest(p)
}
