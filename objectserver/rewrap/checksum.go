package rewrap

import (
	"errors"
	"io/fs"
	"os"
	"sort"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

// beforeChecksum is a test seam, nil in production: it is called with the
// partition lock held just before a file's checksum is restored (step 3),
// the instant at which a concurrent PUT, POST or DELETE of the same object
// would do the most harm, so tests land one there.
var beforeChecksum func(path string)

// pending is a rewrapped file whose checksum is still to be restored.
type pending struct {
	path, partPath string
	pickle         []byte
	due            time.Time
	suf            *sufRec // the suffix it belongs to (nil: not tracked)
}

// queue schedules the checksum of a rewritten pickle.
func (w *worker) queue(path, partPath string, p []byte, sr *sufRec) {
	if sr != nil {
		w.j.mu.Lock()
		sr.outstanding++
		w.j.mu.Unlock()
	}
	w.pending = append(w.pending, pending{path: path, partPath: partPath, pickle: p, due: time.Now().Add(w.j.o.ChecksumDelay), suf: sr})
}

// flushLeft restores the checksums the workers left, waiting for them.
func (j *job) flushLeft() {
	j.mu.Lock()
	w := &worker{j: j, s: newSummary(), pending: j.pending}
	j.pending = nil
	j.mu.Unlock()
	sort.SliceStable(w.pending, func(a, b int) bool { return w.pending[a].due.Before(w.pending[b].due) })
	w.flush(true)
	j.mu.Lock()
	w.merge()
	if j.fr != nil {
		j.fr.advance()
	}
	j.mu.Unlock()
}

// flush restores the checksums that are due; with wait, all of them,
// sleeping until the last is due. Consecutive files of one partition share
// one partition lock. The caller holds no partition lock.
func (w *worker) flush(wait bool) {
	for len(w.pending) > 0 {
		if d := time.Until(w.pending[0].due); d > 0 {
			if !wait {
				return
			}
			time.Sleep(d)
		}
		part := w.pending[0].partPath
		n := 1
		now := time.Now()
		for n < len(w.pending) && n < 256 && w.pending[n].partPath == part && !w.pending[n].due.After(now) {
			n++
		}
		batch := w.pending[:n]
		w.pending = w.pending[n:]
		w.s.IO.Locks++
		unlock, err := diskfile.LockPartition(part)
		if err != nil {
			for _, pe := range batch {
				w.s.fail(pe.path, "restoring checksum", err)
			}
		} else {
			for _, pe := range batch {
				w.checksum(pe)
			}
			unlock()
		}
		w.j.mu.Lock()
		for _, pe := range batch {
			if pe.suf != nil {
				pe.suf.outstanding--
			}
		}
		w.j.mu.Unlock()
	}
}

// checksum restores one file's checksum; the caller holds the lock.
func (w *worker) checksum(pe pending) {
	if beforeChecksum != nil {
		beforeChecksum(pe.path)
	}
	w.s.IO.Opens++
	f, err := os.Open(pe.path) //nolint:gosec // G304: a file this job rewrapped
	if errors.Is(err, fs.ErrNotExist) {
		return // overwritten or deleted meanwhile
	}
	if err != nil {
		w.s.fail(pe.path, "restoring checksum", err)
		return
	}
	defer f.Close()
	reads, writes, err := diskfile.SetChecksum(f, pe.pickle)
	w.s.IO.XattrReads += int64(reads)
	w.s.IO.XattrWrites += int64(writes)
	switch {
	case errors.Is(err, diskfile.ErrMetadataChanged):
	case err != nil:
		w.s.fail(pe.path, "restoring checksum", err)
	default:
		w.s.Checksums++
	}
}
