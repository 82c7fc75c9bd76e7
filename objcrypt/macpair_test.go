package objcrypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// testSegState is a Writer's segment state for a fresh object under
// testKey, with or without the SHA-NI lanes' pads.
func testSegState(t testing.TB) *segState {
	t.Helper()
	w, err := NewWriter(&bytes.Buffer{}, testKey, testPath, &WriterOptions{Rand: detRand(1)})
	if err != nil {
		t.Fatal(err)
	}
	return w.seg
}

// checkMACPair compares macPair's two tags with segmentMAC's (crypto/hmac)
// for frames a and b (same length), segments idx and idx+1.
func checkMACPair(t *testing.T, s *segState, a, b []byte, idx int64, lastB bool, bodyLen int) {
	t.Helper()
	var ta, tb [macLen]byte
	s.macPair(ta[:], tb[:], idx, lastB, bodyLen, a, b)
	if want := s.segmentMAC(idx, false, bodyLen, a); !bytes.Equal(ta[:], want) {
		t.Fatalf("%d-byte frame, segment %d: tag %x, want %x", len(a), idx, ta, want)
	}
	if want := s.segmentMAC(idx+1, lastB, bodyLen, b); !bytes.Equal(tb[:], want) {
		t.Fatalf("%d-byte frame, segment %d (last %v): tag %x, want %x", len(b), idx+1, lastB, tb, want)
	}
}

// The two-lane MACs against crypto/hmac: every frame length over two
// blocks' worth of tails (one and two padding blocks), different frames
// in the two lanes, the last flag, and segment indexes.
func TestMACPair(t *testing.T) {
	if !hasSHA2Lanes {
		t.Skip("no SHA-NI lanes in this build or on this CPU")
	}
	s := testSegState(t)
	if s.k.pads == nil {
		t.Fatal("SHA-NI lanes but no pads")
	}
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 2*(macPairMin+300))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := macPairMin; n < macPairMin+200; n++ {
		a, b := buf[:n], buf[len(buf)-n:]
		checkMACPair(t, s, a, b, int64(n), n%2 == 0, n-ivLen-n%16)
	}
	big := payload(DefaultSegmentSize+ivLen, 8)
	checkMACPair(t, s, big, bytes.Repeat([]byte{7}, len(big)), 1<<40, true, DefaultSegmentSize)
}

// sha256Blocks2 against crypto/sha256: two different messages, padded
// here, over block counts around one to a few.
func TestSHA256Blocks2(t *testing.T) {
	if !hasSHA2Lanes {
		t.Skip("no SHA-NI lanes in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 300 {
		a, b := make([]byte, n), make([]byte, n)
		for i := range a {
			a[i], b[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		pa, pb := shaPadded(a), shaPadded(b)
		sa, sb := sha256IV, sha256IV
		sha256Blocks2(&sa, &sb, &pa[0], &pb[0], len(pa)/64)
		wa, wb := sha256.Sum256(a), sha256.Sum256(b)
		if got := putState(nil, &sa); !bytes.Equal(got, wa[:]) {
			t.Fatalf("%d bytes, first lane: %x, want %x", n, got, wa)
		}
		if got := putState(nil, &sb); !bytes.Equal(got, wb[:]) {
			t.Fatalf("%d bytes, second lane: %x, want %x", n, got, wb)
		}
	}
}

// shaPadded is m with SHA-256's padding.
func shaPadded(m []byte) []byte {
	p := append(append([]byte{}, m...), 0x80)
	for len(p)%64 != 56 {
		p = append(p, 0)
	}
	return binary.BigEndian.AppendUint64(p, uint64(len(m))*8)
}

// FuzzMACPair: any two frames of the same length, any index, flag and
// body length, get segmentMAC's tags from macPair.
func FuzzMACPair(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1}, macPairMin), bytes.Repeat([]byte{2}, macPairMin+100), int64(0), true, uint32(1000))
	f.Add(make([]byte, 3000), make([]byte, 3000), int64(5), false, uint32(2984))
	f.Fuzz(func(t *testing.T, a, b []byte, idx int64, lastB bool, bodyLen uint32) {
		if !hasSHA2Lanes {
			t.Skip("no SHA-NI lanes")
		}
		n := min(len(a), len(b))
		if n < macPairMin || idx < 0 || idx == 1<<63-1 {
			return
		}
		checkMACPair(t, testSegState(t), a[:n], b[:n], idx, lastB, int(bodyLen))
	})
}
