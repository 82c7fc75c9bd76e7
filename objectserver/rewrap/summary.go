package rewrap

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

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
	// UpgradeReads counts objects written before ETags were encrypted,
	// read whole to check the ETag they record before it is sealed.
	UpgradeReads int64
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
	// MetaKeys counts, per project key, the .meta files of the job's
	// encrypted objects whose user metadata is sealed under it after the
	// job (in a dry run: now). A .meta on a key makes its object depend on
	// that key as much as its .data does.
	MetaKeys map[KeyRef]int
	// MetaPlain counts the .meta files whose user metadata is still in the
	// clear (written by a release before metadata was sealed) after the
	// job (in a dry run: now).
	MetaPlain int
	// MetaResealed and MetaUpgraded count the .meta files moved onto the
	// active key from another key, and sealed from the clear (in a dry
	// run: that would be).
	MetaResealed, MetaUpgraded int
	// ECOldLayout counts the EC fragment archives stored as one objcrypt
	// stream (written before objcrypt's EC layout), which Swift's Python
	// object-auditor quarantines, after the job (in a dry run: now);
	// ECUpgraded those rewritten into the EC layout (in a dry run with
	// UpgradeECLayout: to rewrite).
	ECOldLayout, ECUpgraded int
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

// Metas returns how many .meta files depend on non-active keys, or (with
// onlyInactive false) on any key; plaintext ones are MetaPlain.
func (s *Summary) Metas(onlyInactive bool) int {
	n := 0
	for k, c := range s.MetaKeys {
		if !onlyInactive || s.Active[k.Project] != k.KeyID {
			n += c
		}
	}
	return n
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

func newSummary() *Summary {
	return &Summary{Reasons: map[string]int{}, Keys: map[KeyRef]int{}, MetaKeys: map[KeyRef]int{}, Active: map[string]string{}}
}

// add adds d's counters to s (Examples up to maxExamples; Active is the
// job's own, not added).
func (s *Summary) add(d *Summary) {
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
	for k, n := range d.MetaKeys {
		s.MetaKeys[k] += n
	}
	s.MetaPlain += d.MetaPlain
	s.MetaResealed += d.MetaResealed
	s.MetaUpgraded += d.MetaUpgraded
	s.ECOldLayout += d.ECOldLayout
	s.ECUpgraded += d.ECUpgraded
	s.IO.DirReads += d.IO.DirReads
	s.IO.Opens += d.IO.Opens
	s.IO.XattrReads += d.IO.XattrReads
	s.IO.XattrWrites += d.IO.XattrWrites
	s.IO.Locks += d.IO.Locks
	s.IO.DataReads += d.IO.DataReads
	s.IO.UpgradeReads += d.IO.UpgradeReads
}

// Report writes a summary (and, with keys, the per-key table) to w.
func Report(w io.Writer, s *Summary, keys bool) {
	verb := "rewrapped"
	if s.DryRun {
		verb = "to rewrap"
	}
	if s.ResumedFrom != "" {
		fmt.Fprintf(w, "resumed after %s\n", s.ResumedFrom)
	}
	fmt.Fprintf(w, "scanned %d, %s %d, skipped %d (already on the active key %d, other projects %d, not encrypted %d, changed meanwhile %d), failed %d, checksums restored %d in %s\n",
		s.Scanned, verb, s.Rewrapped, s.Already+s.OtherProject+s.Plain+s.Changed, s.Already, s.OtherProject, s.Plain, s.Changed,
		s.Failed, s.Checksums, s.Elapsed.Round(time.Millisecond))
	if s.MetaResealed+s.MetaUpgraded+s.Metas(false)+s.MetaPlain > 0 {
		metaVerb := "resealed"
		if s.DryRun {
			metaVerb = "to reseal"
		}
		fmt.Fprintf(w, ".meta files: %s %d from older keys, %d from the clear\n", metaVerb, s.MetaResealed, s.MetaUpgraded)
	}
	if s.ECUpgraded > 0 {
		upVerb := "upgraded"
		if s.DryRun {
			upVerb = "to upgrade"
		}
		fmt.Fprintf(w, "EC archives: %s %d to the EC layout\n", upVerb, s.ECUpgraded)
	}
	if s.Elapsed > 0 && s.Scanned > 0 {
		fmt.Fprintf(w, "rate %.0f objects/s; I/O: %d directory reads, %d opens, %d xattr reads, %d xattr writes, %d partition locks\n",
			float64(s.Scanned)/s.Elapsed.Seconds(), s.IO.DirReads, s.IO.Opens, s.IO.XattrReads, s.IO.XattrWrites, s.IO.Locks)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: run again (with the same --state-file) to continue")
	}
	reasons := make([]string, 0, len(s.Reasons))
	for r := range s.Reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "failed: %s: %d\n", r, s.Reasons[r])
	}
	for _, e := range s.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if !keys && !s.DryRun {
		if s.ECOldLayout+s.ECUpgraded > 0 {
			oldEC(w, s)
		}
		return
	}
	keyTable(w, s)
}

// keyTable writes the per-key table: objects and .meta files per key.
func keyTable(w io.Writer, s *Summary) {
	refs := make([]KeyRef, 0, len(s.Keys))
	for k := range s.Keys {
		refs = append(refs, k)
	}
	for k := range s.MetaKeys {
		if _, ok := s.Keys[k]; !ok {
			refs = append(refs, k)
		}
	}
	sort.Slice(refs, func(a, b int) bool {
		if refs[a].Project != refs[b].Project {
			return refs[a].Project < refs[b].Project
		}
		return refs[a].KeyID < refs[b].KeyID
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tKEY ID\tSTATE\tOBJECTS\t.META FILES")
	for _, k := range refs {
		st := "inactive"
		switch a, ok := s.Active[k.Project]; {
		case !ok:
			st = "unknown"
		case a == k.KeyID:
			st = "active"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", k.Project, k.KeyID, st, s.Keys[k], s.MetaKeys[k])
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "objects on inactive keys: %d\n", s.Objects(true))
	// An inactive key a .meta still depends on cannot be destroyed yet, nor
	// should a .meta stay readable on the disks: both are for the rewrap.
	fmt.Fprintf(w, ".meta files on inactive keys: %d, in the clear: %d\n", s.Metas(true), s.MetaPlain)
	oldEC(w, s)
}

// oldEC writes the count of EC archives in the old layout: until it is 0,
// Swift's Python object-auditor would quarantine them.
func oldEC(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "EC archives in the old layout: %d", s.ECOldLayout)
	if s.ECOldLayout > 0 {
		fmt.Fprint(w, " (Swift's Python object-auditor quarantines them: run rewrap --upgrade-ec-layout first)")
	}
	fmt.Fprintln(w)
}
