package bufpool

import (
	"testing"
	"unsafe"
)

func TestGetLengthAndClass(t *testing.T) {
	for _, tc := range []struct {
		n, wantCap int
	}{
		{-1, MinSize},
		{0, MinSize},
		{1, MinSize},
		{MinSize, MinSize},
		{MinSize + 1, 2 * MinSize},
		{4296, 8 << 10},
		{64<<10 + 4096, 128 << 10},
		{MaxSize, MaxSize},
		{MaxSize + 1, MaxSize + 1},
	} {
		bp := Get(tc.n)
		if want := max(tc.n, 0); len(*bp) != want {
			t.Errorf("Get(%d): length %d, want %d", tc.n, len(*bp), want)
		}
		if cap(*bp) != tc.wantCap {
			t.Errorf("Get(%d): capacity %d, want %d", tc.n, cap(*bp), tc.wantCap)
		}
		Put(bp)
	}
}

func TestPutReuses(t *testing.T) {
	// sync.Pool gives no guarantee of reuse, but on one goroutine with no
	// collection in between a Put buffer is what the next Get of its class
	// returns; the test retries to ride out a collection.
	for range 10 {
		bp := Get(5000)
		(*bp)[0] = 42
		Put(bp)
		again := Get(6000)
		if again == bp {
			if len(*again) != 6000 || cap(*again) != 8<<10 {
				t.Fatalf("reused buffer: length %d capacity %d, want 6000 and %d", len(*again), cap(*again), 8<<10)
			}
			return
		}
	}
	t.Fatal("a buffer given back was never lent again")
}

func TestPutRefusesForeignBuffers(t *testing.T) {
	Put(nil)
	for _, c := range []int{100, MinSize + 1, 3 * MinSize, 2 * MaxSize} {
		b := make([]byte, c)
		Put(&b)
		for n := MinSize; n <= MaxSize; n *= 2 {
			got := Get(n)
			if unsafe.SliceData(*got) == unsafe.SliceData(b) {
				t.Fatalf("a buffer of capacity %d, not a class, was lent out for %d bytes", c, n)
			}
		}
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		bp := Get(4296)
		Put(bp)
	}
}
