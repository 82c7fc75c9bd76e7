package objcrypt

import (
	"bytes"
	"errors"
	"testing"
)

// mustFail opens a damaged object and requires a typed error, and that
// nothing but a prefix of the true plaintext came out before it.
func mustFail(t *testing.T, what string, stored, pt []byte, key ProjectKey, path string) error {
	t.Helper()
	got, err := open(stored, key, path, 0, -1, &ReaderOptions{Parallelism: 2})
	if err == nil {
		t.Fatalf("%s: opened without error", what)
	}
	if !typed(err) {
		t.Fatalf("%s: untyped error %v", what, err)
	}
	if !bytes.HasPrefix(pt, got) {
		t.Fatalf("%s: returned %d bytes that are not the object's", what, len(got))
	}
	return err
}

func tamperCases() []WriterOptions {
	return []WriterOptions{
		{SegmentSize: 1024},
		{SegmentSize: 1024, Decorators: []Decorator{Zstd}},
	}
}

func TestTamperEveryByte(t *testing.T) {
	for _, o := range tamperCases() {
		pt := payload(2500, 4) // three segments, the last short
		stored, _ := seal(t, pt, testKey, testPath, &o)
		for i := range stored {
			bad := bytes.Clone(stored)
			bad[i] ^= 0x01
			mustFail(t, "flip", bad, pt, testKey, testPath)
			bad[i] ^= 0xff
			mustFail(t, "flip", bad, pt, testKey, testPath)
		}
	}
}

func TestTamperTruncateAppend(t *testing.T) {
	for _, o := range tamperCases() {
		pt := payload(2500, 4)
		stored, _ := seal(t, pt, testKey, testPath, &o)
		// Every length, which includes every segment boundary.
		for n := range len(stored) {
			mustFail(t, "truncate", stored[:n], pt, testKey, testPath)
		}
		for _, extra := range [][]byte{{0}, make([]byte, 16), stored[:100], stored[len(stored)-40:]} {
			mustFail(t, "append", append(bytes.Clone(stored), extra...), pt, testKey, testPath)
		}
	}
}

func TestTamperSegments(t *testing.T) {
	o := WriterOptions{SegmentSize: 1024}
	pt := payload(4096, 4)
	stored, md := seal(t, pt, testKey, testPath, &o)
	l := md.Layout()
	frame := func(b []byte, i int64) []byte {
		off, _ := l.SegmentOffset(int64(len(pt)), i)
		return b[off : off+frameLen(1024)]
	}

	swapped := bytes.Clone(stored)
	copy(frame(swapped, 0), frame(stored, 1))
	copy(frame(swapped, 1), frame(stored, 0))
	mustFail(t, "swap", swapped, pt, testKey, testPath)

	lastFirst := bytes.Clone(stored)
	copy(frame(lastFirst, 3), frame(stored, 2))
	copy(frame(lastFirst, 2), frame(stored, 3))
	mustFail(t, "swap last", lastFirst, pt, testKey, testPath)

	// Same key, same path, same plaintext: only the data key differs.
	other, _ := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 1024, Rand: detRand(2)})
	spliced := bytes.Clone(stored)
	copy(frame(spliced, 1), frame(other, 1))
	mustFail(t, "splice", spliced, pt, testKey, testPath)

	// Drop a middle segment and keep the trailer.
	dropped := append(bytes.Clone(stored[:l.HeaderLen+frameLen(1024)]), stored[l.HeaderLen+2*frameLen(1024):]...)
	mustFail(t, "drop", dropped, pt, testKey, testPath)

	// The other object's trailer on this one.
	mixed := append(bytes.Clone(stored[:len(stored)-trailerLen]), other[len(other)-trailerLen:]...)
	mustFail(t, "trailer", mixed, pt, testKey, testPath)

	// The other object's wrapped key (metadata of an overwrite) on this file.
	_, omd := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 1024, Rand: detRand(2)})
	_, err := open(stored, testKey, testPath, 0, -1, &ReaderOptions{KeyID: omd.KeyID, WrappedKey: omd.WrappedKey})
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("foreign wrapped key: %v", err)
	}
}

func TestWrongKeyOrPath(t *testing.T) {
	pt := payload(3000, 4)
	stored, _ := seal(t, pt, testKey, testPath, &WriterOptions{SegmentSize: 1024})
	cases := []struct {
		name string
		key  ProjectKey
		path string
		want error
	}{
		{"other material, same id", ProjectKey{ID: testKey.ID, Key: bytes.Repeat([]byte{1}, 32)}, testPath, ErrKeyUnwrap},
		{"other key id", testKey16, testPath, ErrWrongKey},
		{"moved", testKey, "/AUTH_p/c/o2", ErrKeyUnwrap},
		{"other account", testKey, "/AUTH_q/c/o", ErrKeyUnwrap},
	}
	for _, tc := range cases {
		err := mustFail(t, tc.name, stored, pt, tc.key, tc.path)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if !errors.Is(ErrTruncated, ErrTampered) {
		t.Error("ErrTruncated is not a kind of ErrTampered")
	}
}
