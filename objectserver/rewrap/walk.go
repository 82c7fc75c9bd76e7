package rewrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"opendev.org/x/arca/objectserver/diskfile"
)

// worker walks whole partitions, one at a time; its counters are merged
// into the job's summary after each suffix.
type worker struct {
	j       *job
	s       *Summary
	pending []pending
	warmed  map[keyNeed]warmth // when prefetch last asked for these keys
	// done: the .data files of the hash directory being examined already
	// counted, not examined again when it is examined again (hash)
	done map[string]bool
}

func (j *job) newWorker() *worker {
	return &worker{j: j, s: newSummary(), warmed: map[keyNeed]warmth{}, done: map[string]bool{}}
}

// merge adds the worker's counters to the job's summary and resets them;
// the caller holds j.mu.
func (w *worker) merge() {
	w.j.s.add(w.s)
	w.s = newSummary()
}

// walk lists the partitions and has the workers process them in the
// walk's order. The first error that stops a worker (an interruption, a
// state file that cannot be written) stops the others at their next
// object; the checksums they leave are the caller's (flushLeft).
func (j *job) walk(ctx context.Context) error {
	parts, err := j.partitions()
	if err != nil {
		return err
	}
	j.plan(parts)
	n := j.o.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	n = max(1, min(n, len(parts)))
	// A partition runs on whichever worker is free: a worker keeps its
	// pending checksums and warmed keys from one partition to the next,
	// and the limit guarantees one is free for every goroutine started.
	free := make(chan *worker, n)
	for range n {
		free <- j.newWorker()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, pr := range j.fr.parts {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			w := <-free
			defer func() { free <- w }()
			return w.partition(gctx, pr)
		})
	}
	err = g.Wait()
	close(free)
	j.mu.Lock()
	for w := range free {
		w.merge()
		j.pending = append(j.pending, w.pending...)
	}
	j.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// plan starts the frontier over parts, marking those a previous run
// completed.
func (j *job) plan(parts []partition) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fr = &frontier{}
	for _, p := range parts {
		pr := &partRec{p: p}
		end := position{Device: p.device, Policy: p.policy, Partition: p.part, Suffix: partEnd}
		if (j.skipTo != nil && end.compare(*j.skipTo) <= 0) || j.skip[pr.key()] {
			pr.skipped = true
		}
		j.fr.parts = append(j.fr.parts, pr)
	}
}

// partition walks the suffixes of one partition that a previous run did
// not finish, recording each as done once walked.
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
		if err := w.suffixDone(sr); err != nil {
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

// suffixDone restores the checksums now due, merges the counters and
// records the suffix as walked in the state file.
func (w *worker) suffixDone(sr *sufRec) error {
	j := w.j
	w.flush(false)
	j.mu.Lock()
	defer j.mu.Unlock()
	sr.walked = true
	w.merge()
	j.fr.advance()
	return j.save(false)
}

// progress calls Options.Progress; the caller holds j.mu.
func (j *job) progress() {
	if j.o.Progress != nil {
		j.o.Progress(j.fr.done, len(j.fr.parts), j.s)
	}
}

// devices lists the node's devices, leaving out those that are not
// mounted (with mount_check).
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

// partition is one partition directory, <device>/<policy>/<part>.
type partition struct {
	device, policy, part, path string
}

// policyDir matches the object directories of storage policies.
var policyDir = regexp.MustCompile(`^objects(-[0-9]+)?$`)

// partitions lists the partitions of every device and policy in the
// walk's order.
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
