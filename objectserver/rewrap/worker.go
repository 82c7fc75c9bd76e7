package rewrap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Test seams, nil in production. beforeReplace is called with the
// partition lock held just before a file's metadata is replaced (steps 1
// and 2), beforeChecksum just before its checksum is restored (step 3):
// the instants at which a concurrent PUT, POST or DELETE of the same object
// would do the most harm, so tests land one there.
var beforeReplace, beforeChecksum func(path string)

// maxPerLock bounds the objects rewritten under one partition lock before
// it is released and taken again, so that suffix hashing and other jobs
// wait for at most a few milliseconds.
const maxPerLock = 64

// sufRec is the progress of one suffix: walked once all its objects were
// examined, done once in addition none of its checksums is outstanding.
type sufRec struct {
	pos         position
	walked      bool
	outstanding int
}

// partRec is the progress of one partition.
type partRec struct {
	p        partition
	suffixes []*sufRec // walked suffixes not yet passed by the frontier
	walked   bool      // every suffix listed and walked (or skipped)
	skipped  bool      // completed by a previous run
}

func (pr *partRec) complete() bool {
	if !pr.walked {
		return false
	}
	for _, sr := range pr.suffixes {
		if !sr.walked || sr.outstanding > 0 {
			return false
		}
	}
	return true
}

func (pr *partRec) key() string { return pr.p.device + "/" + pr.p.policy + "/" + pr.p.part }

// frontier is the ordered progress of the walk: everything up to last is
// done; partitions after it may be complete out of order.
type frontier struct {
	parts []*partRec
	next  int // the first partition not passed
	last  *position
	done  int // partitions walked, for Progress
}

// advance moves the frontier over the done suffixes and complete
// partitions; the caller holds j.mu.
func (f *frontier) advance() {
	for f.next < len(f.parts) {
		pr := f.parts[f.next]
		for len(pr.suffixes) > 0 && pr.suffixes[0].walked && pr.suffixes[0].outstanding == 0 {
			pos := pr.suffixes[0].pos
			f.last = &pos
			pr.suffixes = pr.suffixes[1:]
		}
		if !pr.walked || len(pr.suffixes) > 0 {
			return
		}
		pos := position{Device: pr.p.device, Policy: pr.p.policy, Partition: pr.p.part, Suffix: partEnd}
		f.last = &pos
		f.next++
	}
}

// completedAfter lists the complete partitions after the frontier.
func (f *frontier) completedAfter() []string {
	var out []string
	for i := f.next + 1; i < len(f.parts); i++ {
		if f.parts[i].complete() {
			out = append(out, f.parts[i].key())
		}
	}
	return out
}

// worker walks whole partitions; its counters are merged into the job's
// summary after each suffix.
type worker struct {
	j       *job
	s       *Summary
	pending []pending
	warmed  map[keyNeed]warmth // when prefetch last asked for these keys
}

func newSummary() *Summary {
	return &Summary{Reasons: map[string]int{}, Keys: map[KeyRef]int{}, Active: map[string]string{}}
}

// merge adds the worker's counters to the job's summary and resets them;
// the caller holds j.mu.
func (w *worker) merge() {
	d, s := w.s, w.j.s
	s.Scanned += d.Scanned
	s.Rewrapped += d.Rewrapped
	s.Already += d.Already
	s.OtherProject += d.OtherProject
	s.Plain += d.Plain
	s.Changed += d.Changed
	s.Checksums += d.Checksums
	s.Failed += d.Failed
	for r, n := range d.Reasons {
		s.Reasons[r] += n
	}
	for _, e := range d.Examples {
		if len(s.Examples) < maxExamples {
			s.Examples = append(s.Examples, e)
		}
	}
	for k, n := range d.Keys {
		s.Keys[k] += n
	}
	s.IO.DirReads += d.IO.DirReads
	s.IO.Opens += d.IO.Opens
	s.IO.XattrReads += d.IO.XattrReads
	s.IO.XattrWrites += d.IO.XattrWrites
	s.IO.Locks += d.IO.Locks
	w.s = newSummary()
}

func (j *job) walk(ctx context.Context) error {
	parts, err := j.partitions()
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.fr = &frontier{}
	for _, p := range parts {
		pr := &partRec{p: p}
		if (j.skipTo != nil && (position{Device: p.device, Policy: p.policy, Partition: p.part, Suffix: partEnd}).compare(*j.skipTo) <= 0) ||
			j.skip[pr.key()] {
			pr.skipped = true
		}
		j.fr.parts = append(j.fr.parts, pr)
	}
	j.mu.Unlock()
	n := j.o.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	n = max(1, min(n, len(parts)))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idx := make(chan int)
	go func() {
		defer close(idx)
		for i := range parts {
			select {
			case idx <- i:
			case <-wctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var first error
	for range n {
		wg.Go(func() {
			w := &worker{j: j, s: newSummary(), warmed: map[keyNeed]warmth{}}
			for i := range idx {
				if err := w.partition(wctx, j.fr.parts[i]); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					break
				}
			}
			j.mu.Lock()
			w.merge()
			j.pending = append(j.pending, w.pending...)
			j.mu.Unlock()
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (w *worker) partition(ctx context.Context, pr *partRec) error {
	j := w.j
	if pr.skipped {
		j.mu.Lock()
		pr.walked = true
		j.fr.done++
		j.fr.advance()
		j.progress()
		j.mu.Unlock()
		return ctx.Err()
	}
	p := pr.p
	suffixes, err := readDir(p.path)
	if err != nil {
		w.s.fail(p.path, "listing partition", err)
	}
	for _, suf := range suffixes {
		pos := position{Device: p.device, Policy: p.policy, Partition: p.part, Suffix: suf}
		if j.skipTo != nil && pos.compare(*j.skipTo) <= 0 {
			continue
		}
		sr := &sufRec{pos: pos}
		j.mu.Lock()
		pr.suffixes = append(pr.suffixes, sr)
		j.mu.Unlock()
		if err := w.suffix(ctx, p, suf, sr); err != nil {
			return err // sr stays unwalked: a resumed run does it again
		}
		w.flush(false)
		j.mu.Lock()
		sr.walked = true
		w.merge()
		j.fr.advance()
		err := j.save(false)
		j.mu.Unlock()
		if err != nil {
			return err
		}
	}
	j.mu.Lock()
	pr.walked = true
	w.merge()
	j.fr.done++
	j.fr.advance()
	j.progress()
	j.mu.Unlock()
	return ctx.Err()
}

// progress calls Options.Progress; the caller holds j.mu.
func (j *job) progress() {
	if j.o.Progress != nil {
		j.o.Progress(j.fr.done, len(j.fr.parts), j.s)
	}
}

// keyNeed names keys an object needs that the key client may have to ask
// the key service for: they are asked for with no partition lock held
// (warming the client's cache) and the object is examined again.
type keyNeed struct {
	project, oldID string // oldID "": only the active key id
}

// warmFor is how long after the worker asked the key client for a key,
// with no lock held, it asks again under a partition lock: the client
// then answers from its cache unless the entry expired in between (rare:
// then one key service request is made under the lock). The job keeps no
// key of its own, so what it uses is never older than the client's
// active_key_cache_ttl and key_cache_ttl.
const warmFor = time.Second

// warmth is when prefetch last asked for some keys, and its failure: a
// failure is reported for warmFor without asking again under the lock
// (the client need not remember failures).
type warmth struct {
	at  time.Time
	err error // a *reasonError
}

// warm reports whether the keys of n were asked for less than warmFor ago,
// and the failure then.
func (w *worker) warm(n keyNeed) (bool, error) {
	e, ok := w.warmed[n]
	if !ok || time.Since(e.at) >= warmFor {
		return false, nil
	}
	return true, e.err
}

// prefetch asks the key client for the keys of n with no lock held, so
// that asking again under the lock is a cache hit. The answers are
// dropped: they are asked for again where they are used.
func (w *worker) prefetch(ctx context.Context, n keyNeed) {
	j := w.j
	if len(w.warmed) > 4096 {
		clear(w.warmed)
	}
	k, err := j.o.Keys.ActiveKey(ctx, n.project)
	var aerr error
	if err != nil {
		aerr = &reasonError{"active key: " + keyReason(err), err}
	}
	w.warmed[keyNeed{project: n.project}] = warmth{time.Now(), aerr}
	if n.oldID == "" {
		return
	}
	if aerr == nil {
		if _, err := j.o.Keys.KeyMaterial(ctx, n.project, k.ID); err != nil {
			aerr = &reasonError{"active key: " + keyReason(err), err}
		} else if _, err := j.o.Keys.KeyMaterial(ctx, n.project, n.oldID); err != nil {
			aerr = &reasonError{"old key: " + keyReason(err), err}
		}
	}
	w.warmed[n] = warmth{time.Now(), aerr}
}

func (w *worker) suffix(ctx context.Context, p partition, suf string, sr *sufRec) error {
	if len(suf) != 3 {
		return nil
	}
	j := w.j
	dir := filepath.Join(p.path, suf)
	hashes, err := readDir(dir)
	if err != nil {
		w.s.fail(dir, "listing suffix", err)
		return nil
	}
	var unlock func()
	release := func() {
		if unlock != nil {
			unlock()
			unlock = nil
		}
	}
	defer release()
	held := 0
	for i := 0; i < len(hashes); i++ {
		if d := j.reserve(); d > 0 {
			release()
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			w.flush(false)
		} else if err := ctx.Err(); err != nil {
			return err
		}
		hdir := filepath.Join(dir, hashes[i])
		for try := 0; ; try++ {
			if !j.o.DryRun && unlock == nil {
				w.s.IO.Locks++
				var err error
				if unlock, err = diskfile.LockPartition(p.path); err != nil {
					unlock = nil
					w.s.fail(hdir, "partition lock", err)
					break
				}
				held = 0
			}
			need := w.object(ctx, p, hdir, sr, unlock != nil)
			if need == nil {
				break
			}
			if try >= 3 {
				w.s.Changed++ // its key kept changing under us
				break
			}
			release() // never across a key service call
			w.prefetch(ctx, *need)
		}
		if held++; held >= maxPerLock {
			release()
		}
	}
	return nil
}

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

// object examines one hash directory and rewraps its current .data file
// when it is on a non-active key. Outside a dry run the caller holds the
// partition lock (locked) from before the listing to after the rewrite, so
// the file is the current .data and its metadata what was read throughout
// for every other holder of the lock. It returns the keys to ask the key
// client for with no lock held when they were not asked for a moment ago,
// or when the active key changed before the rewrite was committed; nothing
// has changed on disk then.
func (w *worker) object(ctx context.Context, p partition, dir string, sr *sufRec, locked bool) *keyNeed {
	j := w.j
	w.s.IO.DirReads++
	name, err := diskfile.CurrentData(dir)
	if err != nil {
		w.s.fail(dir, "listing object", err)
		return nil
	}
	if name == "" {
		return nil // deleted (tombstone) or nothing left: nothing to rewrap
	}
	path := filepath.Join(dir, name)
	w.s.IO.Opens++
	fh, err := os.Open(path) //nolint:gosec // G304: a file listed in a hash directory
	if errors.Is(err, fs.ErrNotExist) {
		w.s.Changed++
		return nil
	}
	if err != nil {
		w.s.fail(path, "opening data file", err)
		return nil
	}
	defer fh.Close()
	raw, err := diskfile.ReadRawMetadata(fh)
	if raw != nil {
		w.s.IO.XattrReads += int64(len(raw.Chunks) + 2)
	}
	if err != nil {
		w.s.Scanned++
		w.s.fail(path, "unreadable metadata", err)
		return nil
	}
	objName := raw.Values["name"]
	project := j.project(objName)
	if j.o.Project != "" && project != j.o.Project {
		w.s.Scanned++
		w.s.OtherProject++
		return nil
	}
	if project == "" || !hasCrypto(raw.Values) {
		w.s.Scanned++
		if project != "" {
			// Counted as plain, ciphertext whose metadata was stripped
			// would hide from status the key it depends on (its header
			// still names it). The job only reports it: moving files
			// aside is the object server's (and Swift's auditor's) part.
			w.s.IO.DataReads++
			if stripped, err := objcryptWithoutMetadata(fh); err != nil {
				w.s.fail(path, "reading data", err)
				return nil
			} else if stripped {
				w.s.fail(path, "objcrypt data without crypto metadata", errStripped)
				return nil
			}
		}
		w.s.Plain++
		return nil
	}
	m, err := sysmeta.Parse(raw.Values)
	if err != nil {
		w.s.Scanned++
		w.s.fail(path, "invalid crypto metadata", err)
		return nil
	}
	var active string
	var ok bool
	if ok, err = w.warm(keyNeed{project: project}); locked && !ok {
		return &keyNeed{project: project}
	}
	if err == nil {
		if active, err = j.activeKey(ctx, project); err != nil {
			err = &reasonError{"active key: " + keyReason(err), err}
		}
	}
	if err == nil && m.KeyID != active && locked {
		// the material of the rewrap, asked for before anything is counted
		n := keyNeed{project: project, oldID: m.KeyID}
		if ok, err = w.warm(n); !ok {
			return &n
		}
	}
	w.s.Scanned++
	switch {
	case err != nil:
		w.s.Keys[KeyRef{project, m.KeyID}]++
		w.s.fail(path, reasonOf(err), err)
		return nil
	case m.KeyID == active:
		w.s.Already++
		w.s.Keys[KeyRef{project, m.KeyID}]++
		if raw.Checksum == nil && !j.o.DryRun {
			// a run stopped between the two steps: restore it after the delay
			w.queue(path, p.path, raw.Pickle(), sr)
		}
		return nil
	case j.o.DryRun:
		w.s.Rewrapped++
		w.s.Keys[KeyRef{project, m.KeyID}]++
		return nil
	}
	keyID, err := w.rewrap(ctx, p, path, fh, raw, &m.Metadata, project, active, sr)
	if errors.Is(err, errRotated) && locked {
		// Examined again, after asking with no lock held, onto the key
		// that is active now.
		w.s.Scanned--
		return &keyNeed{project: project, oldID: m.KeyID}
	}
	w.s.Keys[KeyRef{project, keyID}]++
	if err != nil {
		w.s.fail(path, reasonOf(err), err)
	}
	return nil
}

// errRotated: the project's active key changed between the choice of the
// key a file is rewrapped onto and the commit of the rewrite.
var errRotated = errors.New("the project's active key changed before the rewrite was committed")

// rewrap moves one file, read as raw under the partition lock, onto the
// project's active key (active) and returns the key the object depends on
// afterwards. Key material is asked for here, from the key client, and
// wiped when the file is done: the job keeps none, so a destroyed key
// stops opening objects once the client's key_cache_ttl has passed.
func (w *worker) rewrap(ctx context.Context, p partition, path string, fh *os.File, raw *diskfile.RawMetadata, m *objcrypt.Metadata, project, active string, sr *sufRec) (string, error) {
	j := w.j
	keyID := m.KeyID
	newKey, err := j.material(ctx, project, active)
	if err != nil {
		return keyID, &reasonError{"active key: " + keyReason(err), err}
	}
	defer clear(newKey.Key)
	oldKey, err := j.material(ctx, project, keyID)
	if err != nil {
		return keyID, &reasonError{"old key: " + keyReason(err), err}
	}
	defer clear(oldKey.Key)
	oldWrapped := base64.StdEncoding.EncodeToString(m.WrappedKey)
	if err := objcrypt.Rewrap(m, oldKey, newKey, raw.Values["name"], j.o.Rand); err != nil {
		return keyID, &reasonError{"unwrapping with the old key", err}
	}
	newPickle, err := substitute(raw, keyID, oldWrapped, m.KeyID, base64.StdEncoding.EncodeToString(m.WrappedKey))
	if err != nil {
		return keyID, &reasonError{"re-encoding metadata", err}
	}
	if beforeReplace != nil {
		beforeReplace(path)
	}
	// As the object server confirms a PUT's key before committing it: the
	// new wrap must be under the key that is active now as the key client
	// knows it (at most active_key_cache_ttl old). arca-api refuses to
	// destroy a key deactivated less than that long ago, so a file is never
	// committed onto a key that may already be gone. Cached active ids only
	// move forward: another id means the key was deactivated.
	now, err := j.activeKey(ctx, project)
	if err != nil {
		return keyID, &reasonError{"active key: " + keyReason(err), err}
	}
	if now != active {
		return keyID, &reasonError{"active key rotated during the rewrap", fmt.Errorf("%w: %s, now %s", errRotated, active, now)}
	}
	calls, err := diskfile.ReplacePickle(fh, raw, newPickle)
	w.s.IO.XattrWrites += int64(calls)
	if err != nil {
		if calls > 1 {
			// the chunk write failed after the checksum went: the old pickle
			// is there unchecked, restore its checksum
			w.queue(path, p.path, raw.Pickle(), sr)
		}
		return keyID, &reasonError{"writing metadata", err}
	}
	w.s.Rewrapped++
	w.queue(path, p.path, newPickle, sr)
	return m.KeyID, nil
}

// activeKey returns the project's active key id from the key client, each
// time: the job keeps none, so a rotation during a run is seen within the
// client's active_key_cache_ttl. It records the id for the summary.
func (j *job) activeKey(ctx context.Context, project string) (string, error) {
	k, err := j.o.Keys.ActiveKey(ctx, project)
	if err != nil {
		return "", err
	}
	j.mu.Lock()
	j.s.Active[project] = k.ID
	j.mu.Unlock()
	return k.ID, nil
}

// material returns a copy of a key's bytes, from the key client; the
// caller wipes it when done.
func (j *job) material(ctx context.Context, project, id string) (objcrypt.ProjectKey, error) {
	raw, err := j.o.Keys.KeyMaterial(ctx, project, id)
	if err != nil {
		return objcrypt.ProjectKey{}, fmt.Errorf("key %s of project %s: %w", id, project, err)
	}
	return objcrypt.ProjectKey{ID: id, Key: append([]byte(nil), raw...)}, nil
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

// save records progress: the frontier (everything up to it rewrapped and
// its checksums restored) and the complete partitions after it. Without
// force it writes at most once a second. The caller holds j.mu.
func (j *job) save(force bool) error {
	if j.st == nil || j.fr == nil {
		return nil
	}
	if !force && time.Since(j.saved) < time.Second {
		return nil
	}
	j.fr.advance()
	if j.fr.last != nil {
		pos := *j.fr.last
		j.st.Done = &pos
	}
	j.st.Completed = j.fr.completedAfter()
	if j.st.Complete {
		j.st.Completed = nil
	}
	j.saved = time.Now()
	if err := saveState(j.o.StateFile, j.st); err != nil {
		return fmt.Errorf("rewrap: %w", err)
	}
	return nil
}
