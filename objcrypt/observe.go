package objcrypt

import (
	"runtime"
	"sync/atomic"
)

// What a Writer hands its Observer, and when: the plaintext and the
// stored bytes, each in stream order, a segment's on another core while
// the Writer seals the next (observeJob) when the process has a core to
// spare, on the Writer's own goroutine otherwise, and small ones always
// inline.

// Observer sees an object's bytes as a Writer produces them: the plaintext
// and the bytes written out, each in stream order (a caller hashes them,
// for example). Observe is called with the next plaintext and the next
// stored bytes, either possibly empty. Calls never overlap, but may come
// from another goroutine than the Writer's caller: while the process has
// a core to spare, a segment's plaintext and the previous segment's
// stored bytes are observed while the Writer encrypts, so that one
// stream is encrypted and hashed in about the time of the slower of the
// two. The slices are valid only during the call.
type Observer interface {
	Observe(plain, stored []byte)
}

// observeJob hands one segment's plaintext (and the previous segment's
// frame) to the observer on the pool while the writer encrypts. At most
// one is in flight per writer, which keeps the observer's calls in stream
// order.
type observeJob struct {
	w      *Writer
	pt, ct []byte
}

func (j *observeJob) run() {
	j.w.obs.Observe(j.pt, j.ct)
	j.w.done <- struct{}{}
}

// inlineObserveMax is the largest segment the writer observes itself
// rather than on the pool.
const inlineObserveMax = 16 << 10

// streaming counts the Writers with an Observer that are past their
// first large segment and not closed yet: the streams being encrypted
// and observed.
var streaming atomic.Int32

// spareCore reports whether a Writer may hand its next segment to the
// pool: while every stream being written could have a second core to
// itself. Handing over costs CPU of its own (on two shared cores the
// server's encrypted 64 MiB PUT cost 4.6 ns/B with every segment handed
// over and 3.0 ns/B observed inline, docs/benchmarks.md): it pays when a
// core would otherwise idle, one stream on an idle machine, and only
// costs when more streams than half the cores are being written, each
// core then busy with a stream of its own.
func spareCore(streams int32, procs int) bool {
	return int(streams)*2 <= procs
}

// wait waits for the observe job in flight, if any.
func (w *Writer) wait() {
	if w.pending {
		<-w.done
		w.pending = false
	}
}

// keepObserved makes sure the stored bytes the observer has yet to see
// survive the encryption of the next group. Sealing one segment at a
// time they are in the other frame buffer. Sealing groups they are in the
// one the next group is encrypted into: the previous group's last frame
// (its others were observed with this group's plaintext) is copied to
// the spare frame buffer; more than that (a short last group) is observed
// here and now.
func (w *Writer) keepObserved() {
	rest := w.prevFrames[w.prevOff:]
	if w.lanes == 1 || len(rest) == 0 {
		return
	}
	if len(rest) > w.frameCap {
		w.obs.Observe(nil, rest)
		w.prevFrames, w.prevOff = nil, 0
		return
	}
	if w.ct[1] == nil {
		w.ct[1] = getBuf(w.frameCap)
	}
	w.prevFrames, w.prevOff = w.ct[1][:copy(w.ct[1], rest)], 0
}

// observe hands a plaintext segment and the next frame of the previous
// group (all the rest of it for the group's last segment) to the observer:
// on the pool while the process has a core to spare, or here: for a short
// (last) segment, where handing it over costs more than it saves (and
// small objects are mostly that), and while the cores are busy with
// other streams. The caller has waited for the job in flight.
func (w *Writer) observe(pt []byte, groupEnd bool) {
	if w.obs == nil {
		return
	}
	stored := w.prevFrames[w.prevOff:]
	if !groupEnd {
		stored = stored[:min(len(stored), w.frameCap)]
	}
	w.prevOff += len(stored)
	if len(pt) <= inlineObserveMax || !w.mayHandOff() {
		w.obs.Observe(pt, stored)
		return
	}
	w.job.pt, w.job.ct = pt, stored
	w.pending = true
	submit(&w.job)
}

// mayHandOff reports whether the segment being observed may go to the
// pool, counting the Writer among the streams from its first large
// segment until Close.
func (w *Writer) mayHandOff() bool {
	if !w.streaming {
		streaming.Add(1)
		w.streaming = true
	}
	return spareCore(streaming.Load(), runtime.GOMAXPROCS(0))
}

// stopStreaming takes a closed Writer out of the count.
func (w *Writer) stopStreaming() {
	if w.streaming {
		streaming.Add(-1)
		w.streaming = false
	}
}
