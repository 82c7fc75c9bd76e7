package rewrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
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
	// Keys resolves active keys and key material (the key service). It is
	// asked for each object and the job keeps nothing of its answers, so
	// its cache (keyclient.Client's active_key_cache_ttl and key_cache_ttl)
	// bounds how long a rotation or a destroy goes unseen.
	Keys keyclient.Resolver
	// Workers is how many partitions are processed at once; 0 means
	// GOMAXPROCS.
	Workers int
	// Rand is the randomness for new wraps; nil means crypto/rand (it must
	// be safe for concurrent use with more than one worker).
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
	// DataReads counts reads of a data file's first bytes: only objects of
	// project accounts without crypto metadata, to tell a plaintext object
	// from ciphertext whose metadata was stripped.
	DataReads int64
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
	// An object of a project account whose data is an objcrypt stream but
	// whose crypto metadata is missing is not plain: it is a failure
	// ("objcrypt data without crypto metadata"), which the object server
	// refuses and quarantines on its next read.
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
	// Active is each project's active key id as the job last saw it.
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
	suf            *sufRec // the suffix it belongs to (nil: not tracked)
}

type job struct {
	o Options
	s *Summary
	// pending is what the workers left to restore when they stopped.
	pending []pending
	st      *state
	skipTo  *position
	skip    map[string]bool // partitions a previous run completed

	mu     sync.Mutex // s, fr, pending, st, saved, Progress
	rateMu sync.Mutex
	next   time.Time // rate limiter
	saved  time.Time
	fr     *frontier
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
	j := &job{o: o, s: s}
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
		default:
			if st.Done != nil {
				j.skipTo = st.Done
				s.ResumedFrom = st.Done.String()
			}
			if len(st.Completed) > 0 {
				j.skip = map[string]bool{}
				for _, p := range st.Completed {
					j.skip[p] = true
				}
				if s.ResumedFrom == "" {
					s.ResumedFrom = "(no complete prefix)"
				}
				s.ResumedFrom += fmt.Sprintf(" and %d later partitions", len(st.Completed))
			}
		}
		st.Scope, st.Devices, st.Complete = scope, o.Devices, false
		j.st = st
	}
	err := j.walk(ctx)
	// Restore every checksum, also when interrupted: waiting out the delay
	// is short and leaves no file without one.
	j.flushLeft()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.Interrupted = true
	}
	if j.st != nil {
		j.mu.Lock()
		j.st.Complete = err == nil
		serr := j.save(true)
		j.mu.Unlock()
		if serr != nil && err == nil {
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

// sysmeta finds the stored key of a crypto metadata field.
func sysmetaKey(values map[string]string, field string) (string, bool) {
	want := sysmeta.Prefix + field
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

// errStripped: an objcrypt stream whose .data file has no crypto metadata.
var errStripped = errors.New("the data is an objcrypt stream but the metadata has no X-Object-Sysmeta-Arca-* keys (stripped?); the object server refuses and quarantines it")

// objcryptWithoutMetadata reports whether f, a file without crypto
// metadata, starts with objcrypt's magic (objcrypt/SPEC.md).
func objcryptWithoutMetadata(f *os.File) (bool, error) {
	var b [4]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return n == len(b) && string(b[:]) == "ARCA", nil
}

func hasCrypto(values map[string]string) bool {
	p := strings.ToLower(sysmeta.Prefix)
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
