package rewrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// position names one suffix directory in the walk's order: devices, policy
// directories and suffixes by name, partitions by number.
type position struct {
	Device    string `json:"device"`
	Policy    string `json:"policy"`
	Partition string `json:"partition"`
	Suffix    string `json:"suffix"`
}

func comparePart(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return compareStr(a, b)
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// partEnd is the suffix of the position that stands for a whole
// partition: it sorts after every suffix name.
const partEnd = "~"

func (p position) String() string {
	if p.Suffix == partEnd {
		return fmt.Sprintf("%s/%s/%s", p.Device, p.Policy, p.Partition)
	}
	return fmt.Sprintf("%s/%s/%s/%s", p.Device, p.Policy, p.Partition, p.Suffix)
}

// compare orders positions as the walk visits them.
func (p position) compare(q position) int {
	if c := compareStr(p.Device, q.Device); c != 0 {
		return c
	}
	if c := compareStr(p.Policy, q.Policy); c != 0 {
		return c
	}
	if c := comparePart(p.Partition, q.Partition); c != 0 {
		return c
	}
	return compareStr(p.Suffix, q.Suffix)
}

// state is the resumable progress of a job, kept in Options.StateFile.
type state struct {
	Version int    `json:"version"`
	Scope   string `json:"scope"` // "project:<id>" or "all-projects"
	Devices string `json:"devices"`
	// Done is the last suffix whose objects are all rewrapped and whose
	// checksums are restored; nil before the first.
	Done *position `json:"done,omitempty"`
	// Completed lists the partitions ("device/policy/partition") after Done
	// whose suffixes are all done as well (workers finish partitions out of
	// order); a resumed run skips them too.
	Completed []string  `json:"completed,omitempty"`
	Complete  bool      `json:"complete"`
	Updated   time.Time `json:"updated"`
}

const stateVersion = 1

// loadState reads the state file; a missing file is a fresh start.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator's state file
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rewrap: reading state file: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("rewrap: state file %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("rewrap: state file %s has version %d", path, st.Version)
	}
	return &st, nil
}

// resume loads the state file: a run over the same scope left unfinished
// is continued after what it completed, anything else starts over (a state
// file of another scope is refused).
func (j *job) resume() error {
	o, s := j.o, j.s
	scope := "all-projects"
	if o.Project != "" {
		scope = "project:" + o.Project
	}
	st, err := loadState(o.StateFile)
	if err != nil {
		return err
	}
	switch {
	case st == nil || st.Complete:
		st = &state{}
	case st.Scope != scope || st.Devices != o.Devices:
		return fmt.Errorf("rewrap: state file %s belongs to a run over %s of %s; remove it or use another", o.StateFile, st.Scope, st.Devices)
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
	return nil
}

// saveState writes the state file atomically (temp file, fsync, rename).
func saveState(path string, st *state) error {
	st.Version = stateVersion
	st.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("rewrap: writing state file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("rewrap: writing state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("rewrap: writing state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rewrap: writing state file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rewrap: writing state file: %w", err)
	}
	return nil
}
