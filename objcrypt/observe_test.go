package objcrypt

import (
	"io"
	"testing"
)

// callObserver records the lengths of every Observe call.
type callObserver struct{ calls [][2]int }

func (o *callObserver) Observe(p, s []byte) { o.calls = append(o.calls, [2]int{len(p), len(s)}) }

// TestObserveLastSegmentWithItsFrames: the last segment (one the Writer
// observes inline) reaches the observer in one call with its own stored
// frames, so a one-segment object's two streams can be hashed together;
// a larger last segment is observed as before (apart from its frames).
func TestObserveLastSegmentWithItsFrames(t *testing.T) {
	for _, tc := range []struct {
		size, seg int
		together  bool
	}{
		{4096, 64 << 10, true},
		{1, 64 << 10, true},
		{3*4096 + 5, 4096, true},
		{inlineObserveMax + 1, 64 << 10, false},
	} {
		obs := &callObserver{}
		w, err := NewWriter(io.Discard, testKey, testPath, &WriterOptions{Observer: obs, SegmentSize: tc.seg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, tc.size)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		last := tc.size % tc.seg
		if last == 0 {
			last = tc.seg
		}
		found := false
		for _, c := range obs.calls {
			found = found || (c[0] == last && c[1] > last)
		}
		if found != tc.together {
			t.Errorf("%d bytes in segments of %d: last segment observed with its frames %v, want %v (calls %v)",
				tc.size, tc.seg, found, tc.together, obs.calls)
		}
	}
}
