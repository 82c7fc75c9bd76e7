package objcrypt

import (
	"bytes"
	"errors"
	"io"
	"runtime"
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

func TestSpareCore(t *testing.T) {
	for _, tc := range []struct {
		streams int32
		procs   int
		want    bool
	}{
		{1, 2, true},    // one stream on two cores: encrypt on one, hash on the other
		{2, 2, false},   // two streams on two cores: each core has one already
		{1, 1, false},   // one core: nothing to hand over to
		{4, 8, true},    //
		{5, 8, false},   //
		{1, 64, true},   //
		{33, 64, false}, //
	} {
		if got := spareCore(tc.streams, tc.procs); got != tc.want {
			t.Errorf("spareCore(%d streams, %d procs) = %v, want %v", tc.streams, tc.procs, got, tc.want)
		}
	}
}

// goroutineObserver notes, for each Observe call, whether it ran on the
// goroutine that created it (the Writer's caller's), and hashes nothing.
type goroutineObserver struct {
	owner          string
	inline, handed int
}

func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(buf, []byte(" ["))
	return string(id)
}

func newGoroutineObserver() *goroutineObserver { return &goroutineObserver{owner: goroutineID()} }

func (o *goroutineObserver) Observe(p, s []byte) {
	if len(p) <= inlineObserveMax {
		return // short segments are observed inline anyway
	}
	if goroutineID() == o.owner {
		o.inline++
	} else {
		o.handed++
	}
}

// TestWriterHandsOffOnlyWithSpareCore: on two cores, the first stream
// being encrypted hands its segments to the pool (the other core hashes
// while it encrypts); a second one at the same time observes its own, the
// cores being busy with a stream each; when the first is closed, the next
// stream hands off again, and one abandoned mid-stream (a failed upload)
// leaves the count as it found it.
func TestWriterHandsOffOnlyWithSpareCore(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	if n := handingOff.Load(); n != 0 {
		t.Fatalf("%d Writers counted before the test", n)
	}
	segment := make([]byte, 64<<10)
	start := func() (*Writer, *goroutineObserver) {
		t.Helper()
		obs := newGoroutineObserver()
		w, err := NewWriter(io.Discard, testKey, testPath, &WriterOptions{Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := w.Write(segment); err != nil {
				t.Fatal(err)
			}
		}
		return w, obs
	}
	first, firstObs := start()
	second, secondObs := start()
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if firstObs.inline != 0 || firstObs.handed == 0 {
		t.Errorf("the first stream alone: %d segments observed inline, %d handed over; want all handed over", firstObs.inline, firstObs.handed)
	}
	if secondObs.handed != 0 || secondObs.inline == 0 {
		t.Errorf("a second stream beside it: %d segments handed over, %d observed inline; want all inline", secondObs.handed, secondObs.inline)
	}
	if n := handingOff.Load(); n != 0 {
		t.Fatalf("%d Writers still counted after Close", n)
	}

	aborted, abortedObs := start()
	aborted.Abort()
	if abortedObs.handed == 0 {
		t.Errorf("a stream alone again: no segment handed over")
	}
	if n := handingOff.Load(); n != 0 {
		t.Fatalf("%d Writers still counted after Abort", n)
	}
	if _, err := aborted.Write(segment); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Abort: %v, want ErrClosed", err)
	}
	if err := aborted.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close after Abort: %v, want ErrClosed", err)
	}
}
