package rewrap

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
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
	// UpgradeECLayout rewrites the EC fragment archives stored as one
	// objcrypt stream (written before objcrypt's EC layout) into the EC
	// layout, in place (ecupgrade.go). Without it they are only counted
	// (Summary.ECOldLayout).
	UpgradeECLayout bool
	// DryRun only counts: nothing on disk changes and no state is saved.
	DryRun bool
	// warmFor replaces the constant warmFor in tests (0: the constant).
	warmFor time.Duration
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

// job is one run: its options, its summary, and the progress its workers
// share under mu.
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

// Run walks the node's devices and rewraps every current object of the
// chosen projects whose data key is wrapped by a key other than the
// project's active key. It returns a summary even with an error; the error
// is for what stopped the walk (not for individual objects: see
// Summary.Failed).
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	s := newSummary()
	s.DryRun = o.DryRun
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
	if !o.DryRun && o.StateFile != "" {
		if err := j.resume(); err != nil {
			return s, err
		}
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
