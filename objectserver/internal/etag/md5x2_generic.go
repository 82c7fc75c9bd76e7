//go:build !amd64 || purego

package etag

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"
)

var md5T = func() (t [64]uint32) {
	for i := range t {
		t[i] = uint32(math.Floor(math.Abs(math.Sin(float64(i+1))) * (1 << 32)))
	}
	return t
}()

var md5Shift = [4][4]int{{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}}

// md5x2 is the portable form of the two-stream compression function:
// one stream after the other.
func md5x2(sa, sb *[4]uint32, pa, pb *byte, blocks int) {
	md5Blocks(sa, unsafe.Slice(pa, 64*blocks))
	md5Blocks(sb, unsafe.Slice(pb, 64*blocks))
}

func md5Blocks(s *[4]uint32, p []byte) {
	for ; len(p) >= 64; p = p[64:] {
		var m [16]uint32
		for i := range m {
			m[i] = binary.LittleEndian.Uint32(p[4*i:])
		}
		a, b, c, d := s[0], s[1], s[2], s[3]
		for i := range 64 {
			var f uint32
			var k int
			switch i / 16 {
			case 0:
				f, k = d^(b&(c^d)), i
			case 1:
				f, k = c^(d&(b^c)), (5*i+1)%16
			case 2:
				f, k = b^c^d, (3*i+5)%16
			default:
				f, k = c^(b|^d), (7*i)%16
			}
			a, b, c, d = d, b+bits.RotateLeft32(a+f+md5T[i]+m[k], md5Shift[i/16][i%4]), b, c
		}
		s[0] += a
		s[1] += b
		s[2] += c
		s[3] += d
	}
}
