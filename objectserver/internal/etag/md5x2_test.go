package etag

import (
	"crypto/md5"
	"math/rand/v2"
	"testing"
)

// The two-stream MD5 against crypto/md5: every length around the block
// size, streams of different lengths written in uneven pieces, alone and
// in pairs.
func TestMD5x2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for n := range 300 {
		d := newMD5d()
		d.Write(data[:n])
		if got, want := d.Sum(nil), md5.Sum(data[:n]); string(got) != string(want[:]) {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
	}
	for trial := range 500 {
		la, lb := r.IntN(5000), r.IntN(5000)
		a, b := newMD5d(), newMD5d()
		pa, pb := data[:la], data[5000-lb:]
		for len(pa) > 0 || len(pb) > 0 {
			na, nb := min(len(pa), r.IntN(700)), min(len(pb), r.IntN(700))
			if trial%3 == 0 {
				a.Write(pa[:na]) // single writes mixed in
				pa, na = pa[na:], 0
			}
			md5Pair(a, b, pa[:na], pb[:nb])
			pa, pb = pa[na:], pb[nb:]
		}
		wa, wb := md5.Sum(data[:la]), md5.Sum(data[5000-lb:])
		if string(a.Sum(nil)) != string(wa[:]) || string(b.Sum(nil)) != string(wb[:]) {
			t.Fatalf("trial %d (%d, %d bytes): wrong pair sums", trial, la, lb)
		}
	}
	if got, want := md5Blocks2(data[:4096]), md5.Sum(data[:4096]); string(got) != string(want[:]) {
		t.Fatalf("portable block function: %x, want %x", got, want)
	}
}

// md5Blocks2 hashes p with the portable code path's pieces where they are
// built, else with the assembly: whichever this build has.
func md5Blocks2(p []byte) []byte {
	d := newMD5d()
	d.Write(p)
	return d.Sum(nil)
}

func BenchmarkMD5x2(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.Run("crypto-md5-two-streams", func(b *testing.B) {
		x, y := md5.New(), md5.New()
		b.SetBytes(2 * int64(len(buf)))
		for b.Loop() {
			x.Write(buf)
			y.Write(buf)
		}
	})
	b.Run("md5x2-pair", func(b *testing.B) {
		x, y := newMD5d(), newMD5d()
		b.SetBytes(2 * int64(len(buf)))
		for b.Loop() {
			md5Pair(x, y, buf, buf)
		}
	})
	b.Run("md5x2-single", func(b *testing.B) {
		x := newMD5d()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			x.Write(buf)
		}
	})
	b.Run("crypto-md5-single", func(b *testing.B) {
		x := md5.New()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			x.Write(buf)
		}
	})
}

// FuzzMD5x2: any two streams, written in pieces of any sizes, hash as
// crypto/md5 hashes them (the generated assembly where it is built).
func FuzzMD5x2(f *testing.F) {
	f.Add([]byte("abc"), []byte{}, uint16(1), uint16(0))
	f.Add(make([]byte, 200), make([]byte, 130), uint16(64), uint16(63))
	f.Fuzz(func(t *testing.T, p, q []byte, stepP, stepQ uint16) {
		a, b := newMD5d(), newMD5d()
		sp, sq := int(stepP)%300+1, int(stepQ)%300
		for rp, rq := p, q; len(rp) > 0 || len(rq) > 0; {
			np, nq := min(len(rp), sp), min(len(rq), sq)
			if sq == 0 {
				nq = len(rq) // one write of the whole second stream
			}
			md5Pair(a, b, rp[:np], rq[:nq])
			rp, rq = rp[np:], rq[nq:]
		}
		wp, wq := md5.Sum(p), md5.Sum(q)
		if string(a.Sum(nil)) != string(wp[:]) || string(b.Sum(nil)) != string(wq[:]) {
			t.Fatalf("%d and %d bytes in pieces of %d and %d: wrong sums", len(p), len(q), sp, sq)
		}
	})
}
