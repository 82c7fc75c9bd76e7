package rewrap

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

// maxPerLock bounds the objects rewritten under one partition lock before
// it is released and taken again, so that suffix hashing and other jobs
// wait for at most a few milliseconds.
const maxPerLock = 64

// maxHashTries bounds how often one object is examined again after its
// keys were asked for with no lock held and found changed under the lock
// (a rotation meanwhile); past it, the object is left as it is and
// counted as failed ("keys kept changing"), so that the run says so and
// status still counts it on its key.
const maxHashTries = 3

// maxColdRetakes bounds the examinations not counted against maxHashTries:
// those that found the keys cold because taking the partition lock again
// took longer than warmFor (another worker holding it, a loaded machine).
// Such an examination learns nothing about the keys, so counting it as a
// rotation would leave objects on old keys for want of CPU.
const maxColdRetakes = 16

// partLock is a partition lock a worker holds across the objects of a
// suffix (at most maxPerLock of them), never across a wait or a key
// service call.
type partLock struct {
	path   string
	unlock func()
	held   int // objects examined under it
}

// take locks the partition unless it is held already.
func (l *partLock) take(s *Summary) error {
	if l.unlock != nil {
		return nil
	}
	s.IO.Locks++
	unlock, err := diskfile.LockPartition(l.path)
	if err != nil {
		return err
	}
	l.unlock, l.held = unlock, 0
	return nil
}

func (l *partLock) release() {
	if l.unlock != nil {
		l.unlock()
		l.unlock = nil
	}
}

// suffix examines every object of one suffix directory, within the rate
// limit. It returns only what stops the walk (the context's error).
func (w *worker) suffix(ctx context.Context, p partition, suf string, sr *sufRec) error {
	if len(suf) != 3 {
		return nil
	}
	dir := filepath.Join(p.path, suf)
	hashes, err := readDir(dir)
	if err != nil {
		w.s.fail(dir, "listing suffix", err)
		return nil
	}
	lk := &partLock{path: p.path}
	defer lk.release()
	for _, h := range hashes {
		if err := w.pace(ctx, lk); err != nil {
			return err
		}
		w.hash(ctx, p, filepath.Join(dir, h), sr, lk)
		if lk.held++; lk.held >= maxPerLock {
			lk.release()
		}
	}
	return nil
}

// pace waits for the next slot of the rate limit, with the partition lock
// released, and restores the checksums that came due meanwhile.
func (w *worker) pace(ctx context.Context, lk *partLock) error {
	d := w.j.reserve()
	if d <= 0 {
		return ctx.Err()
	}
	lk.release()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	w.flush(false)
	return nil
}

// hash examines one object under the partition lock (outside a dry run),
// asking for the keys it needs with the lock released and examining it
// again, at most maxHashTries times.
func (w *worker) hash(ctx context.Context, p partition, hdir string, sr *sufRec, lk *partLock) {
	clear(w.done)
	var asked time.Time // when the keys were last asked for, with no lock held
	tries, cold := 0, 0
	for {
		if !w.j.o.DryRun {
			if err := lk.take(w.s); err != nil {
				w.s.fail(hdir, "partition lock", err)
				return
			}
		}
		late := !asked.IsZero() && time.Since(asked) >= w.j.warmFor()
		needs := w.object(ctx, p, hdir, sr, lk.unlock != nil)
		if len(needs) == 0 {
			return
		}
		switch {
		case late && cold < maxColdRetakes:
			cold++ // the keys went cold while the lock was retaken
		case tries >= maxHashTries:
			w.s.fail(hdir, "keys kept changing", errKeysKeptChanging)
			return
		default:
			tries++
		}
		lk.release()       // never across a key service call
		asked = time.Now() // the keys' warmth counts from the first answer
		for _, n := range needs {
			w.prefetch(ctx, n)
		}
	}
}

// errKeysKeptChanging: an object examined maxHashTries times found its
// keys changed each time under the lock; it is left on its key.
var errKeysKeptChanging = errors.New("the project's keys changed each time the object was examined; it is left on its key: run the job again")

// reserve takes the next slot of the rate limit (no burst beyond a second)
// and returns how long to wait for it.
func (j *job) reserve() time.Duration {
	if j.o.Rate <= 0 {
		return 0
	}
	j.rateMu.Lock()
	defer j.rateMu.Unlock()
	now := time.Now()
	if j.next.Before(now.Add(-time.Second)) {
		j.next = now
	}
	d := j.next.Sub(now)
	j.next = j.next.Add(time.Duration(float64(time.Second) / j.o.Rate))
	return d
}
