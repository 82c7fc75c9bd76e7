package diskfile

import (
	"crypto/md5" //nolint:gosec // G501: Swift's suffix hashes are MD5 by protocol
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/pickle"
)

// Erasure-coded policies keep fragment archives: <ts>#<frag_index>.data
// until the proxy's commit confirmation, then <ts>#<frag_index>#d.data
// (durable). Swift 2.30's ECDiskFileManager decides which files count; the
// rules here are its _process_ondisk_files and _verify_ondisk_files,
// legacy <ts>.durable files included.

// FragPref is one entry of X-Backend-Fragment-Preferences: at Timestamp,
// any fragment index but those in Exclude may be chosen.
type FragPref struct {
	Timestamp Timestamp
	Exclude   []int
}

// ParseFragPrefs parses X-Backend-Fragment-Preferences (a JSON list of
// {"timestamp": ..., "exclude": [...]}). Swift's safe_json_loads ignores a
// value that is not JSON (nil: no preferences); one that is JSON but not
// of that form is an error, as Swift's DiskFileError (the GET fails).
func ParseFragPrefs(v string, nfrags int) ([]FragPref, error) {
	if v == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, nil // not JSON: Swift's safe_json_loads gives None
	}
	var raw any
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, fmt.Errorf("diskfile: frag_prefs: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("diskfile: bad frag_prefs: %.100q", v)
	}
	out := make([]FragPref, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("diskfile: bad frag_prefs entry: %.100q", v)
		}
		ts, err := parseJSONTimestamp(m["timestamp"])
		if err != nil {
			return nil, err
		}
		ex, ok := m["exclude"].([]any)
		if !ok {
			return nil, fmt.Errorf("diskfile: frag_prefs entry without exclude list: %.100q", v)
		}
		p := FragPref{Timestamp: ts, Exclude: make([]int, 0, len(ex))}
		for _, e := range ex {
			fi, err := validFragIndex(fmt.Sprint(e), 0)
			if err != nil {
				return nil, err
			}
			p.Exclude = append(p.Exclude, fi)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseJSONTimestamp(v any) (Timestamp, error) {
	switch t := v.(type) {
	case string:
		return ParseTimestamp(t)
	case float64:
		return ParseTimestamp(strconv.FormatFloat(t, 'f', 5, 64))
	}
	return Timestamp{}, fmt.Errorf("diskfile: bad timestamp in frag_prefs: %v", v)
}

// validFragIndex is Swift's validate_fragment_index: a whole number below
// nfrags (when nfrags > 0).
func validFragIndex(s string, nfrags int) (int, error) {
	fi, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("diskfile: bad fragment index %.20q", s)
	}
	if fi < 0 || (nfrags > 0 && fi >= nfrags) {
		return 0, fmt.Errorf("diskfile: fragment index %d out of range", fi)
	}
	return fi, nil
}

// ValidFragIndex checks a fragment index for a policy of nfrags fragments.
func ValidFragIndex(s string, nfrags int) (int, error) { return validFragIndex(s, nfrags) }

// ECFileName is the name of a fragment archive.
func ECFileName(ts Timestamp, fragIndex int, durable bool) string {
	n := ts.Internal() + "#" + strconv.Itoa(fragIndex)
	if durable {
		n += "#d"
	}
	return n + ".data"
}

// ecQuery is what an EC open asks for: a fragment index (the SSYNC
// receiver's) or preferences (the proxy's GET and HEAD).
type ecQuery struct {
	nfrags    int
	fragIndex *int
	prefs     []FragPref
	hasPrefs  bool
}

// parseECFile parses an EC policy's file name.
func parseECFile(name string, nfrags int) (fileInfo, bool) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	fi := fileInfo{name: name, ext: ext, frag: -1}
	var err error
	switch ext {
	case ".data":
		parts := strings.Split(base, "#")
		if len(parts) < 2 || len(parts) > 3 {
			return fi, false
		}
		if fi.ts, err = ParseTimestamp(parts[0]); err != nil {
			return fi, false
		}
		if fi.frag, err = validFragIndex(parts[1], nfrags); err != nil {
			return fi, false
		}
		fi.durable = len(parts) == 3 && parts[2] == "d"
		if len(parts) == 3 && !fi.durable {
			return fi, false
		}
		return fi, true
	case ".durable", ".ts":
		fi.ts, err = ParseTimestamp(base)
	case ".meta":
		fi.ts, fi.ctype, err = parseMetaName(base)
	default:
		return fi, false
	}
	return fi, err == nil
}

// gatherEC decides, as Swift's ECDiskFileManager, which files of an EC
// hash directory count and which are obsolete or reclaimable.
func gatherEC(names []string, q ecQuery) state {
	var st state
	exts := map[string][]fileInfo{}
	for _, n := range names {
		fi, ok := parseECFile(n, q.nfrags)
		if !ok {
			st.files++
			continue
		}
		exts[fi.ext] = append(exts[fi.ext], fi)
	}
	for _, l := range exts {
		newestFirst(l)
	}
	if tss := exts[".ts"]; len(tss) > 0 {
		for ext := range exts {
			if ext != ".ts" {
				exts[ext] = st.keepNewer(exts[ext], tss[0].ts)
			}
		}
		st.drop(tss[1:])
		exts[".ts"] = tss[:1]
	}
	if len(exts[".meta"]) > 1 {
		exts[".meta"] = st.keepMetas(exts[".meta"])
	}
	st.processEC(exts, q)
	if st.data != nil {
		if metas := exts[".meta"]; len(metas) > 0 {
			st.meta = &metas[0]
			last := metas[len(metas)-1]
			if last.ctype != nil && last.ctype.After(st.data.ts) {
				st.ctype = &last
			}
		}
	} else if tss := exts[".ts"]; len(tss) > 0 {
		st.ts = &tss[0]
	}
	for _, l := range exts {
		st.files += len(l)
	}
	return st
}

// processEC is Swift's _process_ondisk_files for EC: frag sets by
// timestamp, newest first, down to the newest durable one; the chosen
// fragment; what is obsolete.
func (st *state) processEC(exts map[string][]fileInfo, q ecQuery) {
	durable, durableSet := st.fragSetsEC(exts)
	chosenSet := q.chooseSet(st.fragSets, durableSet)
	st.chooseEC(exts, q, chosenSet, durableSet)
	if durableSet != nil {
		t := durableSet[0].ts
		st.durableTS = &t
	}
	st.obsoleteEC(exts, durable, durableSet, chosenSet)
}

// fragSetsEC groups the .data files into frag sets by timestamp, newest
// first, down to the newest durable one (a durable file or a legacy
// .durable marks its whole set), and returns that durable file and set.
func (st *state) fragSetsEC(exts map[string][]fileInfo) (*fileInfo, []fileInfo) {
	var durable *fileInfo
	if d := exts[".durable"]; len(d) > 0 {
		durable = &d[0]
	}
	all := exts[".data"]
	var durableSet []fileInfo
	for len(all) > 0 {
		ts := all[0].ts
		n := 0
		for n < len(all) && all[n].ts.Compare(ts) == 0 {
			n++
		}
		set := all[:n:n]
		all = all[n:]
		slices.SortFunc(set, func(a, b fileInfo) int { return a.frag - b.frag })
		st.fragSets = append(st.fragSets, set)
		for i := range set {
			if set[i].durable {
				if durable == nil || durable.ts.Compare(ts) < 0 {
					durable = &set[i]
				}
				break
			}
		}
		if durable != nil && durable.ts.Compare(ts) == 0 {
			durableSet = set
			for i := range set {
				set[i].durable = true
			}
			break
		}
	}
	return durable, durableSet
}

// chooseEC picks the fragment to open from the chosen set; .meta files
// not newer than a non-durable chosen fragment do not count.
func (st *state) chooseEC(exts map[string][]fileInfo, q ecQuery, chosenSet, durableSet []fileInfo) {
	var chosen *fileInfo
	if len(chosenSet) > 0 {
		want := q.fragIndex
		if q.hasPrefs && want == nil {
			want = q.prefIndex(chosenSet)
		}
		if want != nil {
			for i := range chosenSet {
				if chosenSet[i].frag == *want {
					chosen = &chosenSet[i]
				}
			}
		} else {
			chosen = &chosenSet[len(chosenSet)-1]
		}
	}
	if chosen != nil {
		st.data = chosen
		if !sameSet(chosenSet, durableSet) {
			var keep []fileInfo
			for _, m := range exts[".meta"] {
				if m.ts.After(chosen.ts) {
					keep = append(keep, m)
				}
			}
			exts[".meta"] = keep
		}
	}
}

// obsoleteEC marks what is older than the durable timestamp obsolete and
// what Swift may reclaim (frag sets neither durable nor chosen; .meta
// files without a durable set).
func (st *state) obsoleteEC(exts map[string][]fileInfo, durable *fileInfo, durableSet, chosenSet []fileInfo) {
	if durable != nil {
		for ext, l := range exts {
			var keep []fileInfo
			for _, f := range l {
				if f.ts.Compare(durable.ts) >= 0 {
					keep = append(keep, f)
				} else {
					st.obsolete = append(st.obsolete, f.name)
				}
			}
			exts[ext] = keep
		}
	}
	if len(exts[".durable"]) > 0 && durableSet == nil {
		st.drop(exts[".durable"])
		delete(exts, ".durable")
	}
	for _, set := range st.fragSets {
		if !sameSet(set, durableSet) && !sameSet(set, chosenSet) {
			st.reclaim = append(st.reclaim, set...)
		}
	}
	if durableSet == nil {
		st.reclaim = append(st.reclaim, exts[".meta"]...)
	}
	// .data files already counted once here (exts still lists them) when
	// they stay; the frag sets older than the durable one were dropped.
	exts[".data"] = nil
	for _, set := range st.fragSets {
		exts[".data"] = append(exts[".data"], set...)
	}
}

func sameSet(a, b []fileInfo) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// chooseSet picks the frag set to open: with preferences, the first
// preferred timestamp that has an acceptable fragment, else the newest
// set not ruled out; without, the durable set.
func (q ecQuery) chooseSet(sets [][]fileInfo, durableSet []fileInfo) []fileInfo {
	if !q.hasPrefs {
		return durableSet
	}
	candidates := slices.Clone(sets)
	for _, p := range q.prefs {
		i := slices.IndexFunc(candidates, func(s []fileInfo) bool { return s[0].ts.Compare(p.Timestamp) == 0 })
		if i < 0 {
			continue
		}
		for _, f := range candidates[i] {
			if !slices.Contains(p.Exclude, f.frag) {
				return candidates[i]
			}
		}
		candidates = slices.Delete(candidates, i, i+1)
	}
	if len(candidates) == 0 {
		return nil
	}
	return candidates[0] // sets are newest first
}

// prefIndex is the fragment Swift picks from the preferred set: the
// highest acceptable index under that timestamp's preference (any index
// when the set's timestamp is not cited).
func (q ecQuery) prefIndex(set []fileInfo) *int {
	for _, p := range q.prefs {
		if p.Timestamp.Compare(set[0].ts) != 0 {
			continue
		}
		for i := len(set) - 1; i >= 0; i-- {
			if !slices.Contains(p.Exclude, set[i].frag) {
				fi := set[i].frag
				return &fi
			}
		}
		return nil
	}
	fi := set[len(set)-1].frag
	return &fi
}

// ECOptions select the fragment an EC open chooses.
type ECOptions struct {
	// FragIndex, when set, is the only fragment index accepted.
	FragIndex *int
	// Prefs are X-Backend-Fragment-Preferences; HasPrefs says they were
	// given (even empty), which lets a non-durable fragment be chosen.
	Prefs    []FragPref
	HasPrefs bool
}

// errNotEC: an EC call on a replication policy's object.
var errNotEC = errors.New("diskfile: not an erasure-coded policy")

// MakeDurable renames the fragment archive written at ts with fragIndex
// to its durable name, as Swift's ECDiskFileWriter.commit, then cleans up
// and invalidates the suffix. A file already gone is fine when something
// newer (a tombstone, a durable fragment at or after ts) replaced it.
func (d *DiskFile) MakeDurable(ts Timestamp, fragIndex int) error {
	if d.nfrags() == 0 {
		return errNotEC
	}
	dir := d.Dir()
	err := rename(filepath.Join(dir, ECFileName(ts, fragIndex, false)), filepath.Join(dir, ECFileName(ts, fragIndex, true)))
	if err != nil {
		names, lerr := listDir(dir)
		if lerr == nil {
			st := gatherEC(names, ecQuery{nfrags: d.nfrags(), fragIndex: &fragIndex})
			if (st.ts != nil && st.ts.ts.After(ts)) || (st.durableTS != nil && st.durableTS.Compare(ts) >= 0) {
				return nil
			}
		}
		return fsErr("making fragment archive durable", err)
	}
	if !d.m.NoFsync {
		syncDir(dir)
	}
	if _, err := d.m.cleanupPolicy(dir, d.policy); err != nil {
		return err
	}
	return d.m.invalidate(d.partPath(), d.Hash[len(d.Hash)-3:])
}

// hashSuffixEC is Swift's ECDiskFileManager._hash_suffix: after cleaning
// up each object of the suffix, one md5 per fragment index over the
// timestamps of that index's archives, and one (None) over the .meta,
// .ts, durable and content-type timestamps, with Swift's suffixes.
func (m *Manager) hashSuffixEC(dir string, policy int) (any, bool, error) {
	names, err := readDirNames(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, false, nil
		}
		return nil, false, err
	}
	sort.Strings(names)
	sums := map[int]hash.Hash{}
	add := func(fi int, s string) {
		h, ok := sums[fi]
		if !ok {
			h = md5.New() //nolint:gosec // G401: Swift's suffix hash
			sums[fi] = h
		}
		h.Write([]byte(s))
	}
	for _, hsh := range names {
		st, err := m.cleanupPolicy(filepath.Join(dir, hsh), policy)
		if err != nil {
			return nil, false, err
		}
		if st.files == 0 {
			continue
		}
		if st.meta != nil {
			add(-1, st.meta.ts.Internal()+".meta")
		}
		if st.ts != nil {
			add(-1, st.ts.ts.Internal()+".ts")
		}
		for _, set := range st.fragSets {
			for _, f := range set {
				add(f.frag, f.ts.Internal())
			}
		}
		if st.data != nil && st.durableTS != nil {
			add(-1, st.durableTS.Internal()+".durable")
		}
		if st.ctype != nil {
			add(-1, st.ctype.ctype.Internal()+"_ctype")
		}
	}
	if err := os.Remove(dir); err == nil {
		return nil, false, nil
	}
	out := make(pickle.FragHashes, len(sums))
	for fi, h := range sums {
		out[fi] = hex.EncodeToString(h.Sum(nil))
	}
	return out, true, nil
}

// Has reports whether fragment fi is on disk at ts.
func (f Fragments) Has(ts Timestamp, fi int) bool {
	for _, set := range f {
		if set.Timestamp.Compare(ts) == 0 {
			return slices.Contains(set.Indexes, fi)
		}
	}
	return false
}

// FragmentState is the object's newest durable timestamp (nil when none)
// and its fragments on disk, whatever Open would choose.
func (d *DiskFile) FragmentState() (*Timestamp, Fragments, error) {
	names, err := listDir(d.Dir())
	if err != nil {
		return nil, nil, fmt.Errorf("diskfile: listing %s: %w", d.Dir(), err)
	}
	st := d.m.gatherFor(names, d.policy, &ECOptions{HasPrefs: true})
	var frags Fragments
	for _, set := range st.fragSets {
		fs := FragSet{Timestamp: set[0].ts}
		for _, f := range set {
			fs.Indexes = append(fs.Indexes, f.frag)
		}
		frags = append(frags, fs)
	}
	return st.durableTS, frags, nil
}
