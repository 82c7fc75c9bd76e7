package objcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// stdCBC is crypto/cipher's CBC encryption of src under key and iv: the
// reference every layer is held to.
func stdCBC(t *testing.T, key, iv, src []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(src))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, src) //nolint:gosec // the format's mode, checked here
	return out
}

// laneShapes are the block counts of the chains encrypted together: every
// lane count up to past the assembly's eight (which the driver splits),
// equal lengths, unequal ones in every order, empty chains among them,
// and segments of 64 KiB with a short last one, as the Writer hands them.
func laneShapes() [][]int {
	var shapes [][]int
	for lanes := 1; lanes <= maxAsmLanes+3; lanes++ {
		for _, blocks := range []int{0, 1, 2, 3, 7, 8, 9, 33} {
			shape := make([]int, lanes)
			for i := range shape {
				shape[i] = blocks
			}
			shapes = append(shapes, shape)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 60 {
		shape := make([]int, 1+r.IntN(maxAsmLanes+2))
		for i := range shape {
			shape[i] = r.IntN(40)
		}
		shapes = append(shapes, shape)
	}
	seg := DefaultSegmentSize / 16
	return append(shapes,
		[]int{seg, seg, seg, seg}, []int{seg, seg, seg, 1}, []int{seg, seg, 100},
		[]int{seg, 0}, []int{5, 4, 3, 2, 1, 0, 1, 2, 3}, []int{1, 40, 1, 40})
}

// Every cipher layer's multi-lane encryption gives, chain by chain, what
// one chain at a time and crypto/cipher give, for AES-128 and AES-256,
// misaligned buffers, in place or not, and leaves the IVs alone.
func TestCBCLanesAgree(t *testing.T) {
	for _, keyLen := range []int{16, 32} {
		key := payload(keyLen, 91)
		for layer, s := range cipherLayers(t, key) {
			for n, shape := range laneShapes() {
				for _, inPlace := range []bool{false, true} {
					name := fmt.Sprintf("AES-%d %s %v in-place=%v", 8*keyLen, layer, shape, inPlace)
					checkLanes(t, name, s, key, shape, uint64(n), inPlace)
				}
			}
		}
	}
}

func checkLanes(t *testing.T, name string, s *segState, key []byte, shape []int, seed uint64, inPlace bool) {
	t.Helper()
	jobs := make([]cbcJob, len(shape))
	var want, single, ivs [][]byte
	for i, blocks := range shape {
		src := payload(16*blocks+3, seed*100+uint64(i))[3:] // misaligned on purpose
		iv := payload(16, seed*100+50+uint64(i))
		dst := make([]byte, len(src))
		if inPlace {
			dst = bytes.Clone(src)
			jobs[i] = cbcJob{dst: dst, src: dst, iv: iv}
		} else {
			jobs[i] = cbcJob{dst: dst, src: src, iv: iv}
		}
		want = append(want, stdCBC(t, key, iv, src))
		one := make([]byte, len(src))
		s.cbcEncrypt(one, src, iv)
		single = append(single, one)
		ivs = append(ivs, bytes.Clone(iv))
	}
	s.cbcEncryptLanes(jobs)
	for i, j := range jobs {
		if !bytes.Equal(single[i], want[i]) {
			t.Fatalf("%s: lane %d: one chain differs from crypto/cipher", name, i)
		}
		if !bytes.Equal(j.dst, want[i]) {
			t.Fatalf("%s: lane %d of %d blocks differs from crypto/cipher", name, i, shape[i])
		}
		if !bytes.Equal(j.iv, ivs[i]) {
			t.Fatalf("%s: lane %d: IV modified", name, i)
		}
	}
}

// Sealing a group of segments together gives the frames sealing them one
// by one gives: full segments, a short last one with a partial block, an
// empty one, through every cipher layer.
func TestSealFramesGroupSameBytes(t *testing.T) {
	seg := 4096
	groups := [][]int{
		{seg}, {seg, seg}, {seg, seg, seg, seg}, {seg, seg, seg, 1}, {seg, seg, 17},
		{seg, 4080}, {seg, seg, seg, 0}, {0}, {15}, {seg, seg, seg, seg, seg, seg, seg, seg, seg, 100},
	}
	for _, keyLen := range []int{16, 32} {
		key := payload(keyLen, 3)
		layers := cipherLayers(t, key)
		ref := layers["stdlib"]
		for layer, s := range layers {
			for gi, lens := range groups {
				bodies := make([][]byte, len(lens))
				size := 0
				for i, n := range lens {
					bodies[i] = payload(n, uint64(100*gi+i))
					size += int(frameLen(int64(n)))
				}
				for _, last := range []bool{false, true} {
					got := make([]byte, size)
					want := make([]byte, 0, size)
					off := 0
					for i, body := range bodies {
						fl := int(frameLen(int64(len(body))))
						iv := payload(ivLen, uint64(1000*gi+i))
						copy(got[off:], iv)
						one := make([]byte, fl)
						copy(one, iv)
						want = append(want, ref.sealFrames(one, [][]byte{body}, 7+int64(i), last && i == len(bodies)-1)...)
						off += fl
					}
					got = s.sealFrames(got, bodies, 7, last)
					if !bytes.Equal(got, want) {
						t.Errorf("AES-%d %s: group %v last=%v: frames differ from one segment at a time", 8*keyLen, layer, lens, last)
					}
				}
			}
		}
	}
}

// writerUnderTest is a Writer sealing lanes segments together, through the
// AES-NI layer or, with stdlib, crypto/cipher's CBC.
func writerUnderTest(t *testing.T, out io.Writer, lanes int, stdlib bool, o WriterOptions) *Writer {
	t.Helper()
	w, err := NewWriter(out, testKey, testPath, &o)
	if err != nil {
		t.Fatal(err)
	}
	if stdlib {
		k := *w.keys
		k.fast = nil
		w.keys = &k
		w.seg = newSegState(w.keys)
	}
	w.setLanes(lanes)
	return w
}

// A Writer sealing its segments in groups writes the same bytes as one
// sealing them one at a time through crypto/cipher (what the format has
// always been), through Write in uneven pieces and through ReadFrom, and
// shows its observer exactly the plaintext and the stored bytes.
func TestWriterLanesSameBytes(t *testing.T) {
	const seg = 4096
	sizes := []int{0, 1, seg - 1, seg, seg + 1, 2*seg + 17, 3 * seg, 4 * seg, 4*seg + 1, 5*seg - 3,
		8 * seg, 8*seg + 16, 11*seg + 9, 13 * seg}
	for _, size := range sizes {
		pt := payload(size, uint64(size))
		o := WriterOptions{SegmentSize: seg}
		var ref bytes.Buffer
		o.Rand = detRand(9)
		w := writerUnderTest(t, &ref, 1, true, o)
		if _, err := w.Write(pt); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for lanes := 1; lanes <= maxWriterLanes; lanes++ {
			for _, stdlib := range []bool{false, true} {
				for _, readFrom := range []bool{false, true} {
					name := fmt.Sprintf("%d bytes, %d lanes, stdlib=%v, ReadFrom=%v", size, lanes, stdlib, readFrom)
					obs := newMD5Observer(true)
					o.Rand, o.Observer = detRand(9), obs
					var got bytes.Buffer
					w := writerUnderTest(t, &got, lanes, stdlib, o)
					writeVaried(t, w, pt, readFrom)
					if !bytes.Equal(got.Bytes(), ref.Bytes()) {
						t.Fatalf("%s: output differs from one segment at a time", name)
					}
					if want := fmt.Sprintf("%x", md5.Sum(pt)); obs.plainSum() != want {
						t.Fatalf("%s: observed plaintext MD5 %s, want %s", name, obs.plainSum(), want)
					}
					if want := fmt.Sprintf("%x", md5.Sum(got.Bytes())); obs.storedSum() != want {
						t.Fatalf("%s: observed stored MD5 %s, want %s", name, obs.storedSum(), want)
					}
				}
			}
		}
		back, err := open(ref.Bytes(), testKey, testPath, 0, -1, nil)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("%d bytes: round trip: %v", size, err)
		}
	}
}

// writeVaried writes pt to w in pieces of changing sizes (Write), or
// through ReadFrom from a reader returning them, then closes w.
func writeVaried(t *testing.T, w *Writer, pt []byte, readFrom bool) {
	t.Helper()
	if readFrom {
		if _, err := w.ReadFrom(&unevenReader{rest: pt}); err != nil {
			t.Fatal(err)
		}
	} else {
		for rest, i := pt, 0; len(rest) > 0; i++ {
			n := min(len(rest), 1+(i*2654435761)%9000)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// unevenReader returns its bytes in reads of changing sizes.
type unevenReader struct {
	rest []byte
	i    int
}

func (r *unevenReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		return 0, io.EOF
	}
	r.i++
	n := copy(p[:min(len(p), 1+(r.i*40503)%12000)], r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// The stored bytes of fixed objects under a fixed random source, as the
// Writer has written them since before segments were sealed in groups
// (the digests were taken with main's one-at-a-time Writer): the format,
// byte for byte, has not moved.
func TestWriterGolden(t *testing.T) {
	cases := []struct {
		size int
		o    WriterOptions
		want string
	}{
		{0, WriterOptions{}, "4858abe97475576ebece691b8639afba06ef601421c9c9fb188640d2b254d482"},
		{1000, WriterOptions{}, "0f13053fb30a9d444eab06839b8ef529c2649b37dc0ac89227ee9aae2214e0be"},
		{5*DefaultSegmentSize + 33, WriterOptions{}, "9ea97ffd550ad143ab7e278771153e8ffbd2c661e783b517f0765f292e8b7236"},
		{9 * DefaultSegmentSize, WriterOptions{Algorithm: AES256CBC}, "f449d8d56a56f6872c44f3e469ba798a6df8773089983c9664c7db0179530401"},
		{3*4096 + 5, WriterOptions{SegmentSize: 4096, Decorators: []Decorator{Zstd}}, "f8baebffd3773300eb469da770ae264ba0e553f1cd5c49b7792f65e1036ba043"},
	}
	for _, c := range cases {
		o := c.o
		o.Rand = detRand(uint64(c.size))
		var out bytes.Buffer
		w, err := NewWriter(&out, testKey, testPath, &o)
		if err != nil {
			t.Fatal(err)
		}
		writeVaried(t, w, payload(c.size, 4), false)
		sum := sha256.Sum256(out.Bytes())
		if got := hex.EncodeToString(sum[:]); got != c.want {
			t.Errorf("%d bytes %+v: stored SHA-256 %s, want %s", c.size, c.o, got, c.want)
		}
	}
}

// FuzzWriterLanes: whatever the plaintext, the segment size, the group
// size and the pieces it is written in, a Writer sealing segments in
// groups writes what one sealing them one at a time through crypto/cipher
// writes.
func FuzzWriterLanes(f *testing.F) {
	f.Add([]byte("hello"), uint8(0), uint8(4), uint16(7))
	f.Add(payload(5000, 1), uint8(1), uint8(3), uint16(999))
	f.Add(payload(17000, 2), uint8(3), uint8(2), uint16(4096))
	f.Fuzz(func(t *testing.T, pt []byte, segSel, lanes uint8, piece uint16) {
		seg := MinSegmentSize << (segSel % 4)
		o := WriterOptions{SegmentSize: seg, Rand: detRand(uint64(len(pt)))}
		var ref, got bytes.Buffer
		w := writerUnderTest(t, &ref, 1, true, o)
		writeVaried(t, w, pt, false)
		o.Rand = detRand(uint64(len(pt)))
		w = writerUnderTest(t, &got, 1+int(lanes)%maxWriterLanes, false, o)
		for rest := pt; len(rest) > 0; {
			n := min(len(rest), 1+int(piece))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), ref.Bytes()) {
			t.Fatalf("%d bytes, %d-byte segments, %d lanes: output differs", len(pt), seg, 1+int(lanes)%maxWriterLanes)
		}
	})
}
