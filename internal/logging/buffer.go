package logging

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultFlushInterval is how long a daemon's info and debug lines may
// wait in memory before they are written ([DEFAULT] log_flush_interval).
// A tenth of a second is still live to a person watching the log; at
// thousands of requests a second it turns a write system call per
// request (its access line) into about ten a second.
const DefaultFlushInterval = 100 * time.Millisecond

// bufferLimit is the most a buffer holds: a line that fills it is written
// at once, with everything before it, by the goroutine that logged it.
// Memory stays bounded however fast lines come, and a burst costs one
// write per 64 KiB.
const bufferLimit = 64 << 10

// lineBuffer holds a daemon's log lines below warning level for up to a
// flush interval and writes them to out in one call. Warnings, errors and
// lines of no level go out at once, after everything logged before them:
// the lines a failing process writes last are never held back, and the
// order of lines is kept. Close writes what is left.
//
// What a crash that bypasses Close loses is the last interval's info
// lines (access lines). arca-api's audit lines do not wait (Buffered.AtOnce):
// until its batch reaches the database, such a line is the only trace of a
// key read outside the process.
type lineBuffer struct {
	out   io.Writer
	every time.Duration

	mu      sync.Mutex // guards pending and closed
	pending []byte
	closed  bool

	// writeMu is held while a batch is taken and written, so that batches
	// reach out in the order they were taken.
	writeMu sync.Mutex
	spare   []byte // the last batch's memory, reused; guarded by writeMu

	kick chan struct{} // a first line went into an empty buffer
	stop chan struct{}
	done chan struct{}
}

func newLineBuffer(out io.Writer, every time.Duration) *lineBuffer {
	b := &lineBuffer{
		out: out, every: every,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.run()
	return b
}

// Write writes p at once: a line without a level may matter.
func (b *lineBuffer) Write(p []byte) (int, error) { return b.write(p, true) }

// WriteLevel buffers a line below warning level; anything else is written
// at once, with the lines before it.
func (b *lineBuffer) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	return b.write(p, level >= zerolog.WarnLevel)
}

// write buffers p, and writes everything buffered when now is set or the
// buffer is full.
func (b *lineBuffer) write(p []byte, now bool) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		return b.out.Write(p)
	}
	first := len(b.pending) == 0
	b.pending = append(b.pending, p...) // zerolog reuses p once we return
	full := len(b.pending) >= bufferLimit
	b.mu.Unlock()
	if now || full {
		if err := b.flush(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if first {
		select {
		case b.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
	return len(p), nil
}

// atOnce writes each line at once, after everything its buffer holds.
type atOnce struct{ b *lineBuffer }

func (w atOnce) Write(p []byte) (int, error) { return w.b.write(p, true) }

func (w atOnce) WriteLevel(_ zerolog.Level, p []byte) (int, error) { return w.b.write(p, true) }

// flush writes everything buffered so far.
func (b *lineBuffer) flush() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = b.spare[:0]
	b.mu.Unlock()
	var err error
	if len(batch) > 0 {
		_, err = b.out.Write(batch)
	}
	b.spare = batch[:0]
	if cap(b.spare) > 2*bufferLimit { // one very long line: do not keep its memory
		b.spare = nil
	}
	return err
}

// run writes the buffer an interval after its first line, until Close.
// A failed write loses that batch, as the same failure would have lost
// its lines one by one; there is nowhere else to report it.
func (b *lineBuffer) run() {
	defer close(b.done)
	timer := time.NewTimer(b.every)
	timer.Stop()
	for {
		select {
		case <-b.kick:
		case <-b.stop:
			return
		}
		timer.Reset(b.every)
		select {
		case <-timer.C:
		case <-b.stop:
			timer.Stop()
			return
		}
		_ = b.flush()
	}
}

// Close writes what is buffered; later lines are written at once. It is
// safe to call more than once.
func (b *lineBuffer) Close() {
	b.writeMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.writeMu.Unlock()
		return
	}
	b.closed = true
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) > 0 {
		_, _ = b.out.Write(batch)
	}
	b.writeMu.Unlock()
	close(b.stop)
	<-b.done
}
