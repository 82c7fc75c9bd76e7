package objcrypt

import "opendev.org/x/arca/internal/bufpool"

// The Reader's read window: the segments it decrypts at a time, on up to
// its parallelism's goroutines, and the buffers they are decrypted into.

// slot is one segment of the read window and the state to open it.
type slot struct {
	st      *segState
	pt      []byte  // decrypted body
	ptBuf   *[]byte // holds pt when lent by bufpool (Close gives it back)
	scratch [][]byte
	frame   []byte
	idx     int64
	want    int
	body    int
	out     []byte
	err     error
}

type readHelper struct{ r *Reader }

func (h *readHelper) run() {
	h.r.work()
	h.r.wg.Done()
}

// setupWindow sizes the window for the Reader's parallelism and object
// (small objects get small buffers) and borrows its plaintext buffers.
func (r *Reader) setupWindow() {
	segSize := r.layout.SegmentSize
	win := min(max(windowSlotsPerCore*r.par, 2), maxWindowSegs)
	for win > 1 && int64(win)*segSize > maxWindowBytes {
		win--
	}
	win = int(min(int64(win), r.nseg))
	// No segment is larger than the object: small objects get small buffers.
	ptCap := roundUp16(min(segSize, r.plainLen))
	bodyCap := roundUp16(r.layout.maxBody(min(segSize, r.plainLen)))
	r.window = make([]slot, win)
	if r.stored == nil {
		r.ctBuf = make([]byte, int64(win)*frameLen(bodyCap))
	}
	for i := range r.window {
		s := &r.window[i]
		if i == 0 && r.trailerSt != nil {
			s.st, r.trailerSt = r.trailerSt, nil
		} else {
			s.st = newSegState(r.keys)
		}
		if r.layout.Decorated {
			s.pt = make([]byte, bodyCap)
			s.scratch = make([][]byte, len(r.decorators))
			for j := range s.scratch {
				s.scratch[j] = make([]byte, 0, ptCap)
			}
		} else {
			// Lent, not allocated: a small object's GET allocated its size
			// in plaintext buffer, a fifth of its bytes (Close).
			s.ptBuf = bufpool.Get(int(ptCap))
			s.pt = *s.ptBuf
		}
	}
}

// fill opens the segments [seg, ...) covering the rest of the range, up
// to the window size, on up to par goroutines: consecutive segments of the
// same stored length two at a time (their MACs computed together), any
// other one alone. Each goroutine reads the frames of the segments it
// opens (io.ReaderAt allows parallel reads), so that the copy out of the
// file is shared as well rather than made alone before the others start.
func (r *Reader) fill(seg int64) error {
	if r.window == nil {
		r.setupWindow()
	}
	lastSeg := (r.end - 1) / r.layout.SegmentSize
	n := int(min(int64(len(r.window)), lastSeg-seg+1))
	from, to := r.frameStart(seg), r.frameStart(seg+int64(n))
	r.first, r.filled = seg, 0
	r.fillFrom = from
	var buf []byte
	if r.stored != nil {
		// In memory already: nothing to read or copy.
		buf, r.readEach = r.stored[from:to], false
	} else {
		buf = r.ctBuf[:to-from]
		// A window no larger than a pair of default segments is read
		// here in one call, as small objects are (a second read would
		// cost more than the copy it shares).
		r.readEach = len(buf) > unitReadMin && r.par > 1
		if !r.readEach {
			if err := readFull(r.ra, buf, from); err != nil {
				return err
			}
		}
	}
	for i := range n {
		s := &r.window[i]
		s.idx = seg + int64(i)
		_, want := r.layout.SegmentOffset(r.plainLen, s.idx)
		s.want = int(want)
		s.body = s.want
		if r.layout.Decorated {
			s.body = int(r.bodyLen[s.idx])
		}
		fs := r.frameStart(s.idx) - from
		s.frame = buf[fs : fs+frameLen(int64(s.body))]
		s.out, s.err = nil, nil
	}
	r.filled = n
	r.nunits = 0
	for i := 0; i < n; {
		r.units[r.nunits] = i
		r.nunits++
		if i+1 < n && r.window[i].st.pairable(r.window[i].body, r.window[i+1].body) {
			i += 2
		} else {
			i++
		}
	}
	r.units[r.nunits] = n
	r.next.Store(0)
	helpers := min(r.par, r.nunits) - 1
	if helpers > 0 {
		r.wg.Add(helpers)
		for range helpers {
			submit(&r.helper)
		}
	}
	r.work()
	r.wg.Wait()
	return nil
}

func (r *Reader) frameStart(i int64) int64 {
	if r.layout.Decorated {
		return r.frameOff[i]
	}
	if i >= r.nseg {
		return r.size - trailerLen // the last segment may be short
	}
	off, _ := r.layout.SegmentOffset(r.plainLen, i)
	return off
}

// work opens the window's units until none is left; the caller and the
// helpers run it together, taking units in turn, so a slow core never
// holds the others up. Each segment's plaintext is decrypted only once
// its own MAC verified (segState.open, openPair).
func (r *Reader) work() {
	for {
		u := int(r.next.Add(1) - 1)
		if u >= r.nunits {
			return
		}
		i := r.units[u]
		s := &r.window[i]
		if err := r.readUnit(i, r.units[u+1]); err != nil {
			for j := i; j < r.units[u+1]; j++ {
				r.window[j].out, r.window[j].err = nil, err
			}
			continue
		}
		if r.units[u+1]-i == 2 {
			t := &r.window[i+1]
			s.out, t.out, s.err, t.err = s.st.openPair(s.pt, t.pt, s.frame, t.frame, s.body, s.idx, t.idx == r.nseg-1)
			r.undecorate(s)
			r.undecorate(t)
			continue
		}
		s.out, s.err = s.st.open(s.pt, s.frame, s.body, s.idx, s.idx == r.nseg-1)
		r.undecorate(s)
	}
}

// readUnit reads the frames of window slots [i, j), which are contiguous
// in the object and in the window's buffer.
func (r *Reader) readUnit(i, j int) error {
	if !r.readEach {
		return nil // fill read the window
	}
	first, last := &r.window[i], &r.window[j-1]
	off := r.frameStart(first.idx)
	start := off - r.fillFrom
	end := r.frameStart(last.idx) - r.fillFrom + int64(len(last.frame))
	return readFull(r.ra, r.ctBuf[start:end], off)
}

// undecorate undoes a decorated object's decorators on an opened slot.
func (r *Reader) undecorate(s *slot) {
	if s.err == nil && r.layout.Decorated {
		s.out, s.err = undecorate(r.decorators, s.scratch, s.out, s.want)
	}
}
