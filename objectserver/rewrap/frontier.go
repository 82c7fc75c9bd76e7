package rewrap

import (
	"time"
)

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
	return saveState(j.o.StateFile, j.st) // its errors say "rewrap: writing state file"
}
