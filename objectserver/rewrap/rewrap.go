package rewrap

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
)

// DefaultChecksumDelay is how long a rewrapped file stays without its
// metadata checksum (see the package documentation).
const DefaultChecksumDelay = 2 * time.Second

// Options configure a job.
type Options struct {
	// Devices is the folder of the node's devices (Swift's devices).
	Devices string
	// MountCheck skips devices that are not mount points.
	MountCheck bool
	// Project limits the job to one project; AllProjects must be set
	// otherwise.
	Project     string
	AllProjects bool
	// ResellerPrefixes map accounts to projects (AUTH_<project>).
	ResellerPrefixes []string
	// Rate limits the objects examined per second; 0 means no limit.
	Rate float64
	// DryRun only counts: nothing on disk changes and no state is saved.
	DryRun bool
	// StateFile, when set, records progress so that a new run resumes.
	StateFile string
	// ChecksumDelay: see DefaultChecksumDelay (0 means the default).
	ChecksumDelay time.Duration
	// Keys resolves active keys and key material (the key service).
	Keys keyclient.Resolver
	// Rand is the randomness for new wraps; nil means crypto/rand.
	Rand io.Reader
	Log  zerolog.Logger
	// Progress, when set, is called after each partition with the
	// partitions done so far and the total.
	Progress func(done, total int, s *Summary)
}

// KeyRef names one project key.
type KeyRef struct {
	Project string
	KeyID   string
}

// IO counts the system calls the job made on object files.
type IO struct {
	DirReads    int64 // hash directory listings
	Opens       int64 // .data files opened
	XattrReads  int64 // getxattr calls (including the probes that end a chunk list)
	XattrWrites int64 // setxattr and removexattr calls
	Locks       int64 // partition locks taken
}

// Summary is what a job did.
type Summary struct {
	DryRun bool
	// Scanned counts current .data files examined.
	Scanned int
	// Rewrapped counts objects moved to the active key (in a dry run:
	// objects that would be).
	Rewrapped int
	// Already counts objects already on their project's active key.
	Already int
	// OtherProject counts objects of other projects (with Options.Project).
	OtherProject int
	// Plain counts objects stored in the clear or outside project accounts.
	Plain int
	// Changed counts objects overwritten, deleted or rewrapped by someone
	// else between the scan and the rewrap (nothing to do for them).
	Changed int
	// Checksums counts metadata checksums restored.
	Checksums int
	// Failed counts objects left as they were, by reason.
	Failed   int
	Reasons  map[string]int
	Examples []string // the first failures, "path: error"
	// Keys counts, per project key, the objects on this node that depend on
	// it after the job (in a dry run: now).
	Keys map[KeyRef]int
	// Active is each project's active key id as the job saw it.
	Active map[string]string
	// ResumedFrom is where a previous run had stopped, if any.
	ResumedFrom string
	Interrupted bool
	IO          IO
	Elapsed     time.Duration
}

const maxExamples = 20

func (s *Summary) fail(path, reason string, err error) {
	s.Failed++
	s.Reasons[reason]++
	if len(s.Examples) < maxExamples {
		s.Examples = append(s.Examples, fmt.Sprintf("%s: %v", path, err))
	}
}

// Objects returns how many objects depend on non-active keys.
func (s *Summary) Objects(onlyInactive bool) int {
	n := 0
	for k, c := range s.Keys {
		if !onlyInactive || s.Active[k.Project] != k.KeyID {
			n += c
		}
	}
	return n
}

// pending is a rewrapped file whose checksum is still to be restored.
type pending struct {
	path, partPath string
	pickle         []byte
	due            time.Time
	seq            int
}

type doneSuffix struct {
	pos position
	seq int
}

type activeKey struct {
	key objcrypt.ProjectKey // Key is nil until material is needed
	err error
}

type job struct {
	o       Options
	s       *Summary
	active  map[string]*activeKey
	old     map[KeyRef]objcrypt.ProjectKey
	oldErr  map[KeyRef]error
	pending []pending
	done    []doneSuffix
	seq     int
	st      *state
	skipTo  *position
	next    time.Time // rate limiter
	saved   time.Time
}

var policyDir = regexp.MustCompile(`^objects(-[0-9]+)?$`)

// Run walks the node's devices and rewraps every current object of the
// chosen projects whose data key is wrapped by a key other than the
// project's active key. It returns a summary even with an error; the error
// is for what stopped the walk (not for individual objects: see
// Summary.Failed).
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	s := &Summary{DryRun: o.DryRun, Reasons: map[string]int{}, Keys: map[KeyRef]int{}, Active: map[string]string{}}
	if o.Project == "" && !o.AllProjects {
		return s, errors.New("rewrap: choose a project or all projects")
	}
	if o.Keys == nil {
		return s, errors.New("rewrap: no key resolver")
	}
	if o.ChecksumDelay <= 0 {
		o.ChecksumDelay = DefaultChecksumDelay
	}
	if len(o.ResellerPrefixes) == 0 {
		o.ResellerPrefixes = []string{"AUTH_"}
	}
	j := &job{o: o, s: s, active: map[string]*activeKey{}, old: map[KeyRef]objcrypt.ProjectKey{}, oldErr: map[KeyRef]error{}}
	scope := "all-projects"
	if o.Project != "" {
		scope = "project:" + o.Project
	}
	if !o.DryRun && o.StateFile != "" {
		st, err := loadState(o.StateFile)
		if err != nil {
			return s, err
		}
		switch {
		case st == nil || st.Complete:
			st = &state{}
		case st.Scope != scope || st.Devices != o.Devices:
			return s, fmt.Errorf("rewrap: state file %s belongs to a run over %s of %s; remove it or use another", o.StateFile, st.Scope, st.Devices)
		case st.Done != nil:
			j.skipTo = st.Done
			s.ResumedFrom = fmt.Sprintf("%s/%s/%s/%s", st.Done.Device, st.Done.Policy, st.Done.Partition, st.Done.Suffix)
		}
		st.Scope, st.Devices, st.Complete = scope, o.Devices, false
		j.st = st
	}
	err := j.walk(ctx)
	// Restore every checksum, also when interrupted: waiting out the delay
	// is short and leaves no file without one.
	j.flush(true)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.Interrupted = true
	}
	if j.st != nil {
		j.st.Complete = err == nil
		if serr := j.save(true); serr != nil && err == nil {
			err = serr
		}
	}
	s.Elapsed = time.Since(start)
	return s, err
}

func (j *job) devices() ([]string, error) {
	names, err := readDir(j.o.Devices)
	if err != nil {
		return nil, fmt.Errorf("rewrap: devices %s: %w", j.o.Devices, err)
	}
	m := &diskfile.Manager{Devices: j.o.Devices, MountCheck: j.o.MountCheck}
	var out []string
	for _, n := range names {
		if _, err := m.DevicePath(n); err != nil {
			j.o.Log.Warn().Str("device", n).Err(err).Msg("skipping device")
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

type partition struct {
	device, policy, part, path string
}

func (j *job) partitions() ([]partition, error) {
	devs, err := j.devices()
	if err != nil {
		return nil, err
	}
	var out []partition
	for _, d := range devs {
		dp := filepath.Join(j.o.Devices, d)
		entries, err := readDir(dp)
		if err != nil {
			return nil, fmt.Errorf("rewrap: device %s: %w", d, err)
		}
		for _, pol := range entries {
			if !policyDir.MatchString(pol) {
				continue
			}
			parts, err := readDir(filepath.Join(dp, pol))
			if err != nil {
				return nil, fmt.Errorf("rewrap: %s/%s: %w", d, pol, err)
			}
			sort.Slice(parts, func(a, b int) bool { return comparePart(parts[a], parts[b]) < 0 })
			for _, p := range parts {
				if strings.HasPrefix(p, ".") {
					continue
				}
				out = append(out, partition{device: d, policy: pol, part: p, path: filepath.Join(dp, pol, p)})
			}
		}
	}
	return out, nil
}

// readDir lists a directory's names, sorted; a missing one is empty.
func readDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func (j *job) walk(ctx context.Context) error {
	parts, err := j.partitions()
	if err != nil {
		return err
	}
	for i, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if j.skipTo != nil && (position{Device: p.device, Policy: p.policy, Partition: p.part, Suffix: "fff"}).compare(*j.skipTo) <= 0 {
			j.progress(i+1, len(parts))
			continue
		}
		suffixes, err := readDir(p.path)
		if err != nil {
			j.s.fail(p.path, "listing partition", err)
			continue
		}
		for _, suf := range suffixes {
			pos := position{Device: p.device, Policy: p.policy, Partition: p.part, Suffix: suf}
			if j.skipTo != nil && pos.compare(*j.skipTo) <= 0 {
				continue
			}
			if err := j.suffix(ctx, p, suf); err != nil {
				return err
			}
			j.seq++
			j.done = append(j.done, doneSuffix{pos: pos, seq: j.seq})
			j.flush(false)
			if err := j.save(false); err != nil {
				return err
			}
		}
		j.progress(i+1, len(parts))
	}
	return nil
}

func (j *job) progress(done, total int) {
	if j.o.Progress != nil {
		j.o.Progress(done, total, j.s)
	}
}

func (j *job) suffix(ctx context.Context, p partition, suf string) error {
	if len(suf) != 3 {
		return nil
	}
	dir := filepath.Join(p.path, suf)
	hashes, err := readDir(dir)
	if err != nil {
		j.s.fail(dir, "listing suffix", err)
		return nil
	}
	for _, h := range hashes {
		if err := j.limit(ctx); err != nil {
			return err
		}
		j.object(ctx, p, filepath.Join(dir, h))
	}
	return nil
}

// limit sleeps to keep to Options.Rate, allowing no burst beyond a second.
func (j *job) limit(ctx context.Context) error {
	if j.o.Rate <= 0 {
		return ctx.Err()
	}
	now := time.Now()
	if j.next.Before(now.Add(-time.Second)) {
		j.next = now
	}
	if d := j.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		j.flush(false)
	}
	j.next = j.next.Add(time.Duration(float64(time.Second) / j.o.Rate))
	return ctx.Err()
}

// sysmeta finds the stored key of a crypto metadata field.
func sysmetaKey(values map[string]string, field string) (string, bool) {
	want := objcrypt.SysmetaPrefix + field
	if _, ok := values[want]; ok {
		return want, true
	}
	for k := range values {
		if textproto.CanonicalMIMEHeaderKey(k) == want {
			return k, true
		}
	}
	return "", false
}

func hasCrypto(values map[string]string) bool {
	p := strings.ToLower(objcrypt.SysmetaPrefix)
	for k := range values {
		if strings.HasPrefix(strings.ToLower(k), p) {
			return true
		}
	}
	return false
}

func (j *job) project(name string) string {
	acct, _, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok {
		return ""
	}
	for _, p := range j.o.ResellerPrefixes {
		if rest, ok := strings.CutPrefix(acct, p); ok && rest != "" {
			return rest
		}
	}
	return ""
}

// object examines one hash directory and rewraps its current .data file
// when it is on a non-active key.
func (j *job) object(ctx context.Context, p partition, dir string) {
	j.s.IO.DirReads++
	name, err := diskfile.CurrentData(dir)
	if err != nil {
		j.s.fail(dir, "listing object", err)
		return
	}
	if name == "" {
		return // deleted (tombstone) or nothing left: nothing to rewrap
	}
	path := filepath.Join(dir, name)
	j.s.IO.Opens++
	f, err := os.Open(path) //nolint:gosec // G304: a file listed in a hash directory
	if errors.Is(err, fs.ErrNotExist) {
		j.s.Changed++
		return
	}
	if err != nil {
		j.s.fail(path, "opening data file", err)
		return
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
	if raw != nil {
		j.s.IO.XattrReads += int64(len(raw.Chunks) + 2)
	}
	j.s.Scanned++
	if err != nil {
		j.s.fail(path, "unreadable metadata", err)
		return
	}
	objName := raw.Values["name"]
	project := j.project(objName)
	switch {
	case j.o.Project != "" && project != j.o.Project:
		j.s.OtherProject++
		return
	case project == "" || !hasCrypto(raw.Values):
		j.s.Plain++
		return
	}
	m, err := objcrypt.ParseMetadata(raw.Values)
	if err != nil {
		j.s.fail(path, "invalid crypto metadata", err)
		return
	}
	ak := j.activeKey(ctx, project, false)
	if ak.err != nil {
		j.s.Keys[KeyRef{project, m.KeyID}]++
		j.s.fail(path, "active key: "+keyReason(ak.err), ak.err)
		return
	}
	if m.KeyID == ak.key.ID {
		j.s.Already++
		j.s.Keys[KeyRef{project, m.KeyID}]++
		if raw.Checksum == nil && !j.o.DryRun {
			// a run stopped between the two steps: restore it after the delay
			j.queue(path, p.path, raw.Pickle())
		}
		return
	}
	if j.o.DryRun {
		j.s.Rewrapped++
		j.s.Keys[KeyRef{project, m.KeyID}]++
		return
	}
	keyID, err := j.rewrap(ctx, p, dir, name, f, project, m.KeyID)
	switch {
	case errors.Is(err, errChanged):
		j.s.Changed++
	case err != nil:
		j.s.Keys[KeyRef{project, keyID}]++
		j.s.fail(path, reasonOf(err), err)
	default:
		j.s.Keys[KeyRef{project, keyID}]++
	}
}

var errChanged = errors.New("rewrap: object changed meanwhile")

type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

func reasonOf(err error) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return "error"
}

func keyReason(err error) string {
	switch {
	case errors.Is(err, keyclient.ErrDestroyed):
		return "key destroyed"
	case errors.Is(err, keyclient.ErrNotFound):
		return "key not of the project"
	case errors.Is(err, keyclient.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "key service unavailable"
	case errors.Is(err, keyclient.ErrDenied):
		return "key service denied access"
	}
	return "key service error"
}

// activeKey returns the project's active key, resolved once per run (a
// rotation during the run is picked up by the next run); with material
// it also fetches the key bytes.
func (j *job) activeKey(ctx context.Context, project string, material bool) *activeKey {
	ak, ok := j.active[project]
	if !ok {
		ak = &activeKey{}
		k, err := j.o.Keys.ActiveKey(ctx, project)
		ak.key.ID, ak.err = k.ID, err
		j.active[project] = ak
		if err == nil {
			j.s.Active[project] = k.ID
		}
	}
	if material && ak.err == nil && ak.key.Key == nil {
		raw, err := j.o.Keys.KeyMaterial(ctx, project, ak.key.ID)
		if err != nil {
			return &activeKey{err: err}
		}
		ak.key.Key = append([]byte(nil), raw...)
	}
	return ak
}

func (j *job) oldKey(ctx context.Context, project, id string) (objcrypt.ProjectKey, error) {
	ref := KeyRef{project, id}
	if k, ok := j.old[ref]; ok {
		return k, nil
	}
	if err, ok := j.oldErr[ref]; ok {
		return objcrypt.ProjectKey{}, err
	}
	raw, err := j.o.Keys.KeyMaterial(ctx, project, id)
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

// rewrap moves one file to the project's active key and returns the key
// the object depends on afterwards.
func (j *job) rewrap(ctx context.Context, p partition, dir, name string, f *os.File, project, keyID string) (string, error) {
	ak := j.activeKey(ctx, project, true)
	if ak.err != nil {
		return keyID, &reasonError{"active key: " + keyReason(ak.err), ak.err}
	}
	oldKey, err := j.oldKey(ctx, project, keyID)
	if err != nil {
		return keyID, &reasonError{"old key: " + keyReason(err), err}
	}
	j.s.IO.Locks++
	unlock, err := diskfile.LockPartition(p.path)
	if err != nil {
		return keyID, &reasonError{"partition lock", err}
	}
	defer unlock()
	// Under the lock: still the current version? (A newer PUT or a DELETE
	// makes it obsolete; rewrapping it would be wasted, never harmful: the
	// job only changes xattrs through this open file, so it can never bring
	// back a file that was removed.)
	j.s.IO.DirReads++
	cur, err := diskfile.CurrentData(dir)
	if err != nil {
		return keyID, &reasonError{"listing object", err}
	}
	if cur != name {
		return keyID, errChanged
	}
	raw, err := diskfile.ReadRawMetadata(f)
	if raw != nil {
		j.s.IO.XattrReads += int64(len(raw.Chunks) + 2)
	}
	if err != nil {
		return keyID, &reasonError{"unreadable metadata", err}
	}
	m, err := objcrypt.ParseMetadata(raw.Values)
	if err != nil {
		return keyID, &reasonError{"invalid crypto metadata", err}
	}
	if m.KeyID != keyID {
		return m.KeyID, errChanged // another job got there first
	}
	oldWrapped := base64.StdEncoding.EncodeToString(m.WrappedKey)
	if err := objcrypt.Rewrap(m, oldKey, ak.key, raw.Values["name"], j.o.Rand); err != nil {
		return keyID, &reasonError{"unwrapping with the old key", err}
	}
	newPickle, err := substitute(raw, keyID, oldWrapped, m.KeyID, base64.StdEncoding.EncodeToString(m.WrappedKey))
	if err != nil {
		return keyID, &reasonError{"re-encoding metadata", err}
	}
	calls, err := diskfile.ReplacePickle(f, raw, newPickle)
	j.s.IO.XattrWrites += int64(calls)
	if err != nil {
		if calls > 1 {
			// the chunk write failed after the checksum went: the old pickle
			// is there unchecked, restore its checksum
			j.queue(filepath.Join(dir, name), p.path, raw.Pickle())
		}
		return keyID, &reasonError{"writing metadata", err}
	}
	j.s.Rewrapped++
	j.queue(filepath.Join(dir, name), p.path, newPickle)
	return m.KeyID, nil
}

// substitute returns the stored pickle with the key id and wrapped key
// replaced. When the new values have the old lengths it edits the bytes in
// place, which keeps every other byte (and so the xattr chunk boundaries)
// as they were; it checks the result decodes to exactly the old metadata
// with the two values changed, and re-encodes the whole pickle otherwise.
func substitute(raw *diskfile.RawMetadata, oldID, oldWrapped, newID, newWrapped string) ([]byte, error) {
	idKey, ok1 := sysmetaKey(raw.Values, "Key-Id")
	wrKey, ok2 := sysmetaKey(raw.Values, "Wrapped-Key")
	if !ok1 || !ok2 {
		return nil, errors.New("crypto metadata without key id or wrapped key")
	}
	want := maps.Clone(raw.Values)
	want[idKey], want[wrKey] = newID, newWrapped
	old := raw.Pickle()
	if len(oldID) == len(newID) && len(oldWrapped) == len(newWrapped) &&
		bytes.Count(old, []byte(oldID)) == 1 && bytes.Count(old, []byte(oldWrapped)) == 1 {
		out := bytes.Replace(old, []byte(oldID), []byte(newID), 1)
		out = bytes.Replace(out, []byte(oldWrapped), []byte(newWrapped), 1)
		if got, err := pickle.StringMap(out); err == nil && maps.Equal(got, want) {
			return out, nil
		}
	}
	return pickle.Encode(want)
}

// queue schedules the checksum of a rewritten pickle.
func (j *job) queue(path, partPath string, p []byte) {
	j.pending = append(j.pending, pending{path: path, partPath: partPath, pickle: p, due: time.Now().Add(j.o.ChecksumDelay), seq: j.seq + 1})
}

// flush restores the checksums that are due; with wait, all of them,
// sleeping until the last is due. Consecutive files of one partition share
// one partition lock.
func (j *job) flush(wait bool) {
	for len(j.pending) > 0 {
		if d := time.Until(j.pending[0].due); d > 0 {
			if !wait {
				return
			}
			time.Sleep(d)
		}
		part := j.pending[0].partPath
		n := 1
		now := time.Now()
		for n < len(j.pending) && n < 256 && j.pending[n].partPath == part && !j.pending[n].due.After(now) {
			n++
		}
		batch := j.pending[:n]
		j.pending = j.pending[n:]
		j.s.IO.Locks++
		unlock, err := diskfile.LockPartition(part)
		if err != nil {
			for _, pe := range batch {
				j.s.fail(pe.path, "restoring checksum", err)
			}
			continue
		}
		for _, pe := range batch {
			j.checksum(pe)
		}
		unlock()
	}
}

// checksum restores one file's checksum; the caller holds the lock.
func (j *job) checksum(pe pending) {
	j.s.IO.Opens++
	f, err := os.Open(pe.path) //nolint:gosec // G304: a file this job rewrapped
	if errors.Is(err, fs.ErrNotExist) {
		return // overwritten or deleted meanwhile
	}
	if err != nil {
		j.s.fail(pe.path, "restoring checksum", err)
		return
	}
	defer f.Close()
	reads, writes, err := diskfile.SetChecksum(f, pe.pickle)
	j.s.IO.XattrReads += int64(reads)
	j.s.IO.XattrWrites += int64(writes)
	switch {
	case errors.Is(err, diskfile.ErrMetadataChanged):
	case err != nil:
		j.s.fail(pe.path, "restoring checksum", err)
	default:
		j.s.Checksums++
	}
}

// save records progress: the last suffix whose rewraps are done and whose
// checksums are all restored. Without force it writes at most once a
// second.
func (j *job) save(force bool) error {
	if j.st == nil {
		return nil
	}
	if !force && time.Since(j.saved) < time.Second {
		return nil
	}
	lowest := j.seq + 1
	if len(j.pending) > 0 {
		lowest = j.pending[0].seq
	}
	i := 0
	for i < len(j.done) && j.done[i].seq < lowest {
		pos := j.done[i].pos
		j.st.Done = &pos
		i++
	}
	j.done = slices.Delete(j.done, 0, i)
	j.saved = time.Now()
	return saveState(j.o.StateFile, j.st)
}
