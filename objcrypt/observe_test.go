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

// TestWriterHandsOffOnlyWithSpareCore: on two cores, a stream being
// encrypted alone hands its segments to the pool (the other core hashes
// while it encrypts); while a second one is written, both observe their
// own, each core busy with a stream; when the second is closed, the first
// hands off again; and a stream abandoned mid-way (a failed upload) leaves
// the count as it found it.
func TestWriterHandsOffOnlyWithSpareCore(t *testing.T) {
	// Writers another test left open count too: two cores for this test's
	// streams, and two more for each of those.
	before := streaming.Load()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2 + 2*int(before)))
	segment := make([]byte, 64<<10)
	open := func() (*Writer, *goroutineObserver) {
		t.Helper()
		obs := newGoroutineObserver()
		w, err := NewWriter(io.Discard, testKey, testPath, &WriterOptions{Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		return w, obs
	}
	// write writes ten segments to w and reports how its observer saw them.
	write := func(w *Writer, obs *goroutineObserver) (inline, handed int) {
		t.Helper()
		obs.inline, obs.handed = 0, 0
		for range 10 {
			if _, err := w.Write(segment); err != nil {
				t.Fatal(err)
			}
		}
		w.wait() // the segment in flight, if any, is counted in this phase
		return obs.inline, obs.handed
	}
	expect := func(what string, inline, handed int, wantHanded bool) {
		t.Helper()
		if (handed > 0 && inline == 0) != wantHanded || (inline > 0 && handed == 0) == wantHanded {
			t.Errorf("%s: %d segments observed inline, %d handed over; want all handed over: %v", what, inline, handed, wantHanded)
		}
	}
	first, firstObs := open()
	i, h := write(first, firstObs)
	expect("one stream alone", i, h, true)
	second, secondObs := open()
	i, h = write(second, secondObs)
	expect("a second stream beside it", i, h, false)
	i, h = write(first, firstObs)
	expect("the first stream, beside the second", i, h, false)
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	i, h = write(first, firstObs)
	expect("the first stream, alone again", i, h, true)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n := streaming.Load(); n != before {
		t.Fatalf("%d Writers counted after Close, %d before", n, before)
	}

	aborted, abortedObs := open()
	i, h = write(aborted, abortedObs)
	expect("a stream alone, to be abandoned", i, h, true)
	aborted.Abort()
	if n := streaming.Load(); n != before {
		t.Fatalf("%d Writers counted after Abort, %d before", n, before)
	}
	if _, err := aborted.Write(segment); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Abort: %v, want ErrClosed", err)
	}
	if err := aborted.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close after Abort: %v, want ErrClosed", err)
	}
}
