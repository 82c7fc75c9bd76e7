package objcrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// sealedFrames seals n segments of segSize bytes each (payload seed 9)
// with the object's segment state and returns that state, the frames
// and the plaintext bodies. Segment n-1 is marked last.
func sealedFrames(t *testing.T, n, segSize int) (*segState, [][]byte, [][]byte) {
	t.Helper()
	s := testSegState(t)
	pt := payload(n*segSize, 9)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = pt[i*segSize : (i+1)*segSize]
	}
	fl := int(frameLen(int64(segSize)))
	dst := make([]byte, n*fl)
	for i := range n { // distinct IVs, as the Writer's random ones
		for j := range ivLen {
			dst[i*fl+j] = byte(i*31 + j)
		}
	}
	all := s.sealFrames(dst, bodies, 0, true)
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = all[i*fl : (i+1)*fl]
	}
	return s, frames, bodies
}

// untouched is the byte a destination buffer is filled with before an
// open: a segment that fails must leave it as it was (no plaintext of an
// unverified segment anywhere).
const untouched = 0xa5

func fresh(n int) []byte { return bytes.Repeat([]byte{untouched}, n) }

// checkUntouched fails unless dst still holds only the fill byte.
func checkUntouched(t *testing.T, what string, dst []byte) {
	t.Helper()
	for i, c := range dst {
		if c != untouched {
			t.Errorf("%s: a segment that failed wrote into its destination at %d", what, i)
			return
		}
	}
}

// The two-lane verify (openPair) against the single-lane one (open) on
// the same pair of frames: both accept exactly the same segments and give
// the same plaintext; a segment that fails yields ErrTampered and writes
// nothing; the other segment of the pair is judged on its own.
func TestOpenPairAgreesWithOpen(t *testing.T) {
	const segSize = 4096
	s, frames, bodies := sealedFrames(t, 3, segSize)
	flip := func(f []byte, i int) []byte {
		g := bytes.Clone(f)
		g[i] ^= 0x01
		return g
	}
	fl := len(frames[0])
	tagAt := fl - macLen
	cases := []struct {
		name         string
		a, b         []byte
		idx          int64 // segment index of a
		lastB        bool
		okA, okB     bool
		wantA, wantB []byte // plaintext when ok
	}{
		{"intact pair", frames[0], frames[1], 0, false, true, true, bodies[0], bodies[1]},
		{"intact pair, second is last", frames[1], frames[2], 1, true, true, true, bodies[1], bodies[2]},
		{"IV of the first flipped", flip(frames[0], 3), frames[1], 0, false, false, true, nil, bodies[1]},
		{"ciphertext of the first flipped", flip(frames[0], ivLen+1000), frames[1], 0, false, false, true, nil, bodies[1]},
		{"ciphertext of the second flipped", frames[0], flip(frames[1], ivLen+segSize-1), 0, false, true, false, bodies[0], nil},
		{"tag of the first flipped", flip(frames[0], tagAt), frames[1], 0, false, false, true, nil, bodies[1]},
		{"tag of the second flipped", frames[0], flip(frames[1], fl-1), 0, false, true, false, bodies[0], nil},
		{"both flipped", flip(frames[0], 40), flip(frames[1], 50), 0, false, false, false, nil, nil},
		{"swapped", frames[1], frames[0], 0, false, false, false, nil, nil},
		{"one frame twice", frames[0], frames[0], 0, false, true, false, bodies[0], nil},
		{"shifted by one segment", frames[0], frames[1], 1, false, false, false, nil, nil},
		{"second claimed last", frames[0], frames[1], 0, true, true, false, bodies[0], nil},
		{"last not claimed last", frames[1], frames[2], 1, false, true, false, bodies[1], nil},
		{"second truncated", frames[0], frames[1][:fl-1], 0, false, true, false, bodies[0], nil},
		{"first truncated by a block", frames[0][:fl-16], frames[1], 0, false, false, true, nil, bodies[1]},
		{"tags exchanged", append(bytes.Clone(frames[0][:tagAt]), frames[1][tagAt:]...),
			append(bytes.Clone(frames[1][:tagAt]), frames[0][tagAt:]...), 0, false, false, false, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pa, pb := fresh(segSize), fresh(segSize)
			a, b, errA, errB := s.openPair(pa, pb, tc.a, tc.b, segSize, tc.idx, tc.lastB)
			sa, errSA := s.open(fresh(segSize), tc.a, segSize, tc.idx, false)
			sb, errSB := s.open(fresh(segSize), tc.b, segSize, tc.idx+1, tc.lastB)
			for _, c := range []struct {
				seg           string
				ok            bool
				got, single   []byte
				err, errSingl error
				want, dst     []byte
			}{
				{"first", tc.okA, a, sa, errA, errSA, tc.wantA, pa},
				{"second", tc.okB, b, sb, errB, errSB, tc.wantB, pb},
			} {
				if (c.err == nil) != (c.errSingl == nil) || !bytes.Equal(c.got, c.single) {
					t.Errorf("%s segment: pair gave %v, single lane %v", c.seg, c.err, c.errSingl)
				}
				if !c.ok {
					if !errors.Is(c.err, ErrTampered) {
						t.Errorf("%s segment: %v, want ErrTampered", c.seg, c.err)
					}
					checkUntouched(t, c.seg+" segment", c.dst)
					continue
				}
				if c.err != nil || !bytes.Equal(c.got, c.want) {
					t.Errorf("%s segment: %v, or not the plaintext", c.seg, c.err)
				}
			}
		})
	}
}

// readPaired reads the whole object through a Reader decrypting on par
// cores and also returns whether any window was opened two segments at
// a time.
func readPaired(t *testing.T, stored []byte, par int) (got []byte, paired bool, err error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(stored), int64(len(stored)), testKey, testPath, &ReaderOptions{Parallelism: par})
	if err != nil {
		return nil, false, err
	}
	var buf [512]byte
	for {
		n, rerr := r.Read(buf[:])
		got = append(got, buf[:n]...)
		paired = paired || r.nunits < r.filled
		if errors.Is(rerr, io.EOF) {
			return got, paired, nil
		}
		if rerr != nil {
			return got, paired, rerr
		}
	}
}

// Whole objects through the Reader, damaged segment by segment: an even
// and an odd number of segments (the last one then opened alone), a full
// and a short last segment, one and two cores. The Reader must return
// exactly the segments before the first bad one and then a typed error;
// with the SHA-NI lanes it must have opened segments in pairs.
func TestReaderPairsTamper(t *testing.T) {
	const seg = 1024
	for _, size := range []int{4 * seg, 5 * seg, 5*seg + 100, 8*seg - 1} {
		pt := payload(size, 11)
		stored, md := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: seg})
		l := md.Layout()
		nseg := int(l.Segments(int64(size)))
		frame := func(b []byte, i int) []byte {
			off, n := l.SegmentOffset(int64(size), int64(i))
			return b[off : off+frameLen(n)]
		}
		type damage struct {
			name string
			bad  int // the first segment that must fail
			f    func(b []byte)
		}
		var ds []damage
		for i := range nseg {
			ds = append(ds,
				damage{fmt.Sprintf("ciphertext %d", i), i, func(b []byte) { frame(b, i)[ivLen+7] ^= 0x80 }},
				damage{fmt.Sprintf("tag %d", i), i, func(b []byte) { f := frame(b, i); f[len(f)-1] ^= 1 }},
			)
		}
		ds = append(ds,
			damage{"swap 0 and 1 (a pair)", 0, func(b []byte) { swapFrames(frame(b, 0), frame(b, 1)) }},
			damage{"swap 1 and 2 (across pairs)", 1, func(b []byte) { swapFrames(frame(b, 1), frame(b, 2)) }},
		)
		for par := 1; par <= 2; par++ {
			got, paired, err := readPaired(t, stored, par)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes, par %d: intact object: %v", size, par, err)
			}
			if paired != hasSHA2Lanes {
				t.Errorf("%d bytes, par %d: opened in pairs %v, SHA-NI lanes %v", size, par, paired, hasSHA2Lanes)
			}
			for _, d := range ds {
				bad := bytes.Clone(stored)
				d.f(bad)
				got, _, err := readPaired(t, bad, par)
				if !typed(err) {
					t.Errorf("%d bytes, par %d, %s: %v, want a typed error", size, par, d.name, err)
				}
				if want := pt[:d.bad*seg]; !bytes.Equal(got, want) {
					t.Errorf("%d bytes, par %d, %s: %d bytes before the error, want %d", size, par, d.name, len(got), len(want))
				}
			}
		}
	}
}

// swapFrames exchanges two frames of the same length in place.
func swapFrames(a, b []byte) {
	t := bytes.Clone(a)
	copy(a, b)
	copy(b, t)
}
