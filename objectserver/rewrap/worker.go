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

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
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
			w := &worker{j: j, s: newSummary()}
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

// keyNeed names keys an object needs that are not cached: they are fetched
// with no partition lock held and the object is examined again.
type keyNeed struct {
	project, oldID string // oldID "": only the active key id
}

// fetched holds keys fetched for one object (errors included, also those
// the caches do not keep).
type fetched struct {
	need   keyNeed
	active *activeKey
	old    objcrypt.ProjectKey
	oldErr error
}

func (j *job) fetch(ctx context.Context, n keyNeed) *fetched {
	f := &fetched{need: n, active: j.activeKey(ctx, n.project, n.oldID != "")}
	if n.oldID != "" {
		f.old, f.oldErr = j.oldKey(ctx, n.project, n.oldID)
	}
	return f
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
		var f *fetched
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
			need := w.object(ctx, p, hdir, sr, f, unlock != nil)
			if need == nil {
				break
			}
			if try >= 3 {
				w.s.Changed++ // its key kept changing under us
				break
			}
			release() // never across a key service call
			f = j.fetch(ctx, *need)
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

// cachedActive returns the project's active key from the cache (with its
// material when asked), or f's when it was fetched for this project.
func (j *job) cachedActive(project string, material bool, f *fetched) (*activeKey, bool) {
	if f != nil && f.need.project == project && (!material || f.need.oldID != "") {
		return f.active, true
	}
	j.keyMu.Lock()
	defer j.keyMu.Unlock()
	ak, ok := j.active[project]
	if !ok || (material && ak.err == nil && ak.key.Key == nil) {
		return nil, false
	}
	return ak, true
}

func (j *job) cachedOld(project, id string, f *fetched) (objcrypt.ProjectKey, error, bool) {
	if f != nil && f.need.project == project && f.need.oldID == id {
		return f.old, f.oldErr, true
	}
	j.keyMu.Lock()
	defer j.keyMu.Unlock()
	ref := KeyRef{project, id}
	if k, ok := j.old[ref]; ok {
		return k, nil, true
	}
	if err, ok := j.oldErr[ref]; ok {
		return objcrypt.ProjectKey{}, err, true
	}
	return objcrypt.ProjectKey{}, nil, false
}

// object examines one hash directory and rewraps its current .data file
// when it is on a non-active key. Outside a dry run the caller holds the
// partition lock (locked) from before the listing to after the rewrite, so
// the file is the current .data and its metadata what was read throughout
// for every other holder of the lock. It returns the keys to fetch when
// they are not cached; nothing has changed then.
func (w *worker) object(ctx context.Context, p partition, dir string, sr *sufRec, f *fetched, locked bool) *keyNeed {
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
	m, err := objcrypt.ParseMetadata(raw.Values)
	if err != nil {
		w.s.Scanned++
		w.s.fail(path, "invalid crypto metadata", err)
		return nil
	}
	ak, ok := j.cachedActive(project, false, f)
	if !ok {
		if locked {
			return &keyNeed{project: project}
		}
		ak = j.activeKey(ctx, project, false)
	}
	if ak.err == nil && m.KeyID != ak.key.ID && !j.o.DryRun {
		// the keys of the rewrap, fetched before anything is counted
		akm, ok1 := j.cachedActive(project, true, f)
		_, _, ok2 := j.cachedOld(project, m.KeyID, f)
		if (!ok1 || !ok2) && locked {
			return &keyNeed{project: project, oldID: m.KeyID}
		}
		if ok1 {
			ak = akm
		}
	}
	w.s.Scanned++
	switch {
	case ak.err != nil:
		w.s.Keys[KeyRef{project, m.KeyID}]++
		w.s.fail(path, "active key: "+keyReason(ak.err), ak.err)
		return nil
	case m.KeyID == ak.key.ID:
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
	keyID, err := w.rewrap(p, path, fh, raw, m, project, ak, f, sr)
	w.s.Keys[KeyRef{project, keyID}]++
	if err != nil {
		w.s.fail(path, reasonOf(err), err)
	}
	return nil
}

// rewrap moves one file, read as raw under the partition lock, to the
// project's active key and returns the key the object depends on
// afterwards.
func (w *worker) rewrap(p partition, path string, fh *os.File, raw *diskfile.RawMetadata, m *objcrypt.Metadata, project string, ak *activeKey, f *fetched, sr *sufRec) (string, error) {
	keyID := m.KeyID
	if ak.err != nil || ak.key.Key == nil {
		err := ak.err
		if err == nil {
			err = errors.New("no key material")
		}
		return keyID, &reasonError{"active key: " + keyReason(err), err}
	}
	oldKey, err, _ := w.j.cachedOld(project, keyID, f)
	if err != nil {
		return keyID, &reasonError{"old key: " + keyReason(err), err}
	}
	oldWrapped := base64.StdEncoding.EncodeToString(m.WrappedKey)
	if err := objcrypt.Rewrap(m, oldKey, ak.key, raw.Values["name"], w.j.o.Rand); err != nil {
		return keyID, &reasonError{"unwrapping with the old key", err}
	}
	newPickle, err := substitute(raw, keyID, oldWrapped, m.KeyID, base64.StdEncoding.EncodeToString(m.WrappedKey))
	if err != nil {
		return keyID, &reasonError{"re-encoding metadata", err}
	}
	if beforeReplace != nil {
		beforeReplace(path)
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

// activeKey returns the project's active key, resolved once per run (a
// rotation during the run is picked up by the next run); with material
// it also fetches the key bytes. It may call the key service: never with
// a partition lock held. Cached entries are never modified, only replaced.
func (j *job) activeKey(ctx context.Context, project string, material bool) *activeKey {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	j.keyMu.Lock()
	ak, ok := j.active[project]
	j.keyMu.Unlock()
	if !ok {
		k, err := j.o.Keys.ActiveKey(ctx, project)
		ak = &activeKey{key: objcrypt.ProjectKey{ID: k.ID}, err: err}
		j.keyMu.Lock()
		j.active[project] = ak
		j.keyMu.Unlock()
		if err == nil {
			j.mu.Lock()
			j.s.Active[project] = k.ID
			j.mu.Unlock()
		}
	}
	if material && ak.err == nil && ak.key.Key == nil {
		raw, err := j.o.Keys.KeyMaterial(ctx, project, ak.key.ID)
		if err != nil {
			return &activeKey{err: err}
		}
		ak = &activeKey{key: objcrypt.ProjectKey{ID: ak.key.ID, Key: append([]byte(nil), raw...)}}
		j.keyMu.Lock()
		j.active[project] = ak
		j.keyMu.Unlock()
	}
	return ak
}

func (j *job) oldKey(ctx context.Context, project, id string) (objcrypt.ProjectKey, error) {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if k, err, ok := j.cachedOld(project, id, nil); ok {
		return k, err
	}
	raw, err := j.o.Keys.KeyMaterial(ctx, project, id)
	ref := KeyRef{project, id}
	j.keyMu.Lock()
	defer j.keyMu.Unlock()
	if err != nil {
		if !errors.Is(err, keyclient.ErrUnavailable) {
			j.oldErr[ref] = err
		}
		return objcrypt.ProjectKey{}, err
	}
	k := objcrypt.ProjectKey{ID: id, Key: append([]byte(nil), raw...)}
	j.old[ref] = k
	return k, nil
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
