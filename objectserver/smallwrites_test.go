package objectserver

import (
	"bytes"
	"errors"
	"testing"
)

// countingWriter counts Write calls; it fails once failAt bytes are reached.
type countingWriter struct {
	bytes.Buffer
	writes int
	failAt int
}

var errDiskFull = errors.New("disk full")

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	if c.failAt > 0 && c.Len()+len(p) >= c.failAt {
		return 0, errDiskFull
	}
	return c.Buffer.Write(p)
}

// TestSmallWrites: an objcrypt stream's writes reach the file unchanged
// and in order; a small object's in one write, a large object's
// segments directly (no more writes than without it); a failed write is
// the error of every later call.
func TestSmallWrites(t *testing.T) {
	seg := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, n) }
	for _, tc := range []struct {
		name   string
		writes [][]byte
		want   int // write(2)s of the file
	}{
		{"4 KiB object", [][]byte{seg(112), seg(4144), seg(40)}, 1},
		{"empty object", [][]byte{seg(112), seg(40)}, 1},
		{"two 64 KiB segments", [][]byte{seg(112), seg(65568), seg(65568), seg(48)}, 4},
		{"small then large", [][]byte{seg(112), seg(10000), seg(65568), seg(40)}, 3},
		{"fills the buffer exactly", [][]byte{seg(smallWriteSize - 40), seg(40), seg(1)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f countingWriter
			sw := newSmallWrites(&f)
			var want []byte
			for _, p := range tc.writes {
				if n, err := sw.Write(p); err != nil || n != len(p) {
					t.Fatalf("Write: %d, %v", n, err)
				}
				want = append(want, p...)
			}
			if err := sw.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Bytes(), want) {
				t.Fatalf("stored %d bytes differ from the %d written", f.Len(), len(want))
			}
			if f.writes != tc.want {
				t.Fatalf("%d writes, want %d", f.writes, tc.want)
			}
		})
	}
	t.Run("a failed write", func(t *testing.T) {
		f := countingWriter{failAt: 1}
		sw := newSmallWrites(&f)
		if _, err := sw.Write(seg(100)); err != nil {
			t.Fatalf("collected write: %v", err)
		}
		if _, err := sw.Write(seg(70000)); !errors.Is(err, errDiskFull) {
			t.Fatalf("large write: %v, want the file's error", err)
		}
		if _, err := sw.Write(seg(1)); !errors.Is(err, errDiskFull) {
			t.Fatalf("after a failure: %v", err)
		}
		if err := sw.Flush(); !errors.Is(err, errDiskFull) {
			t.Fatalf("Flush after a failure: %v", err)
		}
	})
}
