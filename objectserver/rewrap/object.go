package rewrap

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// dataFile is an object's current .data file, open, with its metadata as
// read once under the partition lock.
type dataFile struct {
	path string
	fh   *os.File
	raw  *diskfile.RawMetadata
}

// archive is one fragment archive (or a replicated policy's current .data)
// of a hash directory, open, with what the job needs to know of it.
type archive struct {
	df        *dataFile
	m         *objcrypt.Metadata
	oldEC     bool
	upgradeEC bool
	active    string // the project's active key id when err is nil
	err       error  // the keys' failure prefetch saw a moment ago
}

// metaAction is what an archive's examination asks of the hash
// directory's .meta files, done once per directory.
type metaAction int

const (
	metaNone   metaAction = iota
	metaLeft              // count them as they are (the keys failed)
	metaReseal            // bring them onto the active key
)

// object examines one hash directory and rewraps each of its live .data
// files that is on a non-active key: a replicated policy's current .data,
// or every fragment archive of an erasure-coded policy's (a handoff may
// hold several fragment indexes, a newer non-durable archive may sit
// beside the durable one; each has its own wrapped data key). Outside a
// dry run the caller holds the partition lock (locked) from before the
// listing to after the rewrite, so the files are the live .data files and
// their metadata what was read throughout for every other holder of the
// lock. It returns the keys to ask the key client for with no lock held
// when they were not asked for a moment ago, or when the active key
// changed before a rewrite was committed; the keys of every archive and
// .meta file are gathered before anything is counted or changed, and an
// archive counted before a rotation (w.done) is not examined again when
// the caller examines the directory again. The .meta files are resealed
// once per directory, after its archives.
func (w *worker) object(ctx context.Context, p partition, dir string, sr *sufRec, locked bool) []keyNeed {
	dfs := w.openLive(dir)
	defer func() {
		for _, df := range dfs {
			df.fh.Close()
		}
	}()
	var arcs []*archive
	project := ""
	for _, df := range dfs {
		pr, m := w.cryptoMetadata(df)
		if m == nil {
			w.done[df.path] = true // counted
			continue
		}
		project = pr
		oldEC := oldECLayout(df.path, df.raw.Values)
		arcs = append(arcs, &archive{df: df, m: m, oldEC: oldEC, upgradeEC: oldEC && w.j.o.UpgradeECLayout})
	}
	if len(arcs) == 0 {
		return nil
	}
	needs := map[keyNeed]bool{}
	for _, a := range arcs {
		active, need, err := w.keysFor(ctx, project, a.m.KeyID, locked)
		if need != nil {
			needs[*need] = true
			continue
		}
		a.active, a.err = active, err
	}
	if len(needs) > 0 {
		return needList(needs)
	}
	metas := w.listMetas(dir)
	if locked {
		// every key the .data files' metadata and the .meta files need,
		// asked for with no lock held before anything is counted or changed
		for _, a := range arcs {
			if a.err != nil {
				continue
			}
			for _, n := range w.metaNeeds(project, a.active, a.m.KeyID, a.df.raw.Values, metas, a.upgradeEC) {
				needs[n] = true
			}
		}
		if len(needs) > 0 {
			return needList(needs)
		}
	}
	action, active := metaNone, ""
	for _, a := range arcs {
		act, need := w.archive(ctx, p, a, project, sr, locked)
		if need != nil {
			return []keyNeed{*need} // the archives before it stay counted (w.done)
		}
		w.done[a.df.path] = true
		switch {
		case act == metaReseal:
			action, active = metaReseal, a.active
		case act == metaLeft && action == metaNone:
			action = metaLeft
		}
	}
	switch action {
	case metaReseal:
		w.resealMetas(ctx, p, metas, project, active, sr)
	case metaLeft:
		w.countMetasLeft(project, metas)
	}
	return nil
}

func needList(set map[keyNeed]bool) []keyNeed {
	out := make([]keyNeed, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	return out
}

// archive counts one archive and rewraps it (or upgrades its layout) when
// it is on a non-active key; it returns what the directory's .meta files
// need, or the keys to ask for when the active key changed before the
// commit (nothing counted then).
func (w *worker) archive(ctx context.Context, p partition, a *archive, project string, sr *sufRec, locked bool) (metaAction, *keyNeed) {
	df, m, active := a.df, a.m, a.active
	w.s.Scanned++
	onActive := m.KeyID == active && !legacyFormat(df.raw.Values) && !metaElsewhere(df.raw.Values, active)
	switch {
	case a.err != nil:
		w.s.Keys[KeyRef{project, m.KeyID}]++
		w.s.fail(df.path, reasonOf(a.err), a.err)
		w.countOldEC(a.oldEC, false)
		return metaLeft, nil
	case onActive && !a.upgradeEC:
		w.s.Already++
		w.s.Keys[KeyRef{project, m.KeyID}]++
		w.countOldEC(a.oldEC, false)
		if df.raw.Checksum == nil && !w.j.o.DryRun {
			// a run stopped between the two steps: restore it after the delay
			w.queue(df.path, p.path, df.raw.Pickle(), sr)
		}
		return metaReseal, nil
	case w.j.o.DryRun:
		if onActive {
			w.s.Already++
		} else {
			w.s.Rewrapped++
		}
		w.s.Keys[KeyRef{project, m.KeyID}]++
		w.countOldEC(a.oldEC, a.upgradeEC)
		return metaReseal, nil
	case a.upgradeEC:
		if need := w.commitUpgrade(ctx, p, df, m, project, active, onActive, locked); need != nil {
			return metaNone, need
		}
		return metaReseal, nil
	}
	if need := w.commit(ctx, p, df, m, project, active, sr, locked); need != nil {
		return metaNone, need
	}
	w.countOldEC(a.oldEC, false)
	return metaReseal, nil
}

// countOldEC counts an old-layout EC archive: upgraded (in a dry run: to
// upgrade), or left in the old layout (in a dry run: every one).
func (w *worker) countOldEC(oldEC, upgraded bool) {
	if !oldEC {
		return
	}
	if upgraded {
		w.s.ECUpgraded++
	}
	if !upgraded || w.j.o.DryRun {
		w.s.ECOldLayout++
	}
}

// commitUpgrade rewrites an old-layout EC archive into the EC layout on
// the active key and counts it; under the lock, a rotation before the
// commit has it examined again.
func (w *worker) commitUpgrade(ctx context.Context, p partition, df *dataFile, m *objcrypt.Metadata, project, active string, onActive, locked bool) *keyNeed {
	oldID := m.KeyID
	keyID, err := w.upgradeEC(ctx, p, df, m, project, active)
	switch {
	case errors.Is(err, errRotated) && locked:
		w.s.Scanned--
		return &keyNeed{project: project, oldID: oldID}
	case errors.Is(err, errChanged):
		w.s.Changed++
		return nil
	}
	w.s.Keys[KeyRef{project, keyID}]++
	if err != nil {
		w.s.fail(df.path, reasonOf(err), err)
		w.countOldEC(true, false)
		return nil
	}
	if onActive {
		w.s.Already++
	} else {
		w.s.Rewrapped++
	}
	w.countOldEC(true, true)
	return nil
}

// countMetasLeft counts the .meta files of an object the job could not
// examine (its keys failed) as they are.
func (w *worker) countMetasLeft(project string, metas []metaFile) {
	for _, mf := range metas {
		w.countMeta(project, mf.keyID, false)
	}
}

// openLive opens the live .data files of a hash directory
// (diskfile.LiveData) not counted yet in this examination of it (w.done)
// and reads their metadata; those there is none to examine of (changed
// meanwhile or failed) are counted as such and left out.
func (w *worker) openLive(dir string) []*dataFile {
	w.s.IO.DirReads++
	names, err := diskfile.LiveData(dir)
	if err != nil {
		w.s.fail(dir, "listing object", err)
		return nil
	}
	var out []*dataFile
	for _, name := range names {
		path := filepath.Join(dir, name)
		if w.done[path] {
			continue
		}
		if df := w.openData(path); df != nil {
			out = append(out, df)
		} else {
			w.done[path] = true // counted
		}
	}
	return out
}

// openData opens one .data file and reads its metadata; nil when there is
// none to examine (gone meanwhile or failed, counted as such).
func (w *worker) openData(path string) *dataFile {
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
	raw, err := diskfile.ReadRawMetadata(fh)
	if raw != nil {
		w.s.IO.XattrReads += int64(len(raw.Chunks) + 2)
	}
	if err != nil {
		fh.Close()
		w.s.Scanned++
		w.s.fail(path, "unreadable metadata", err)
		return nil
	}
	return &dataFile{path: path, fh: fh, raw: raw}
}

// cryptoMetadata returns the object's project and crypto metadata; a nil
// metadata when the object is not the job's (another project, not
// encrypted) or its metadata is invalid, counted as such.
func (w *worker) cryptoMetadata(df *dataFile) (string, *objcrypt.Metadata) {
	project := w.j.project(df.raw.Values["name"])
	if w.j.o.Project != "" && project != w.j.o.Project {
		w.s.Scanned++
		w.s.OtherProject++
		return "", nil
	}
	if project == "" || !hasCrypto(df.raw.Values) {
		w.s.Scanned++
		if project != "" {
			// Counted as plain, ciphertext whose metadata was stripped
			// would hide from status the key it depends on (its header
			// still names it). The job only reports it: moving files
			// aside is the object server's (and Swift's auditor's) part.
			w.s.IO.DataReads++
			if stripped, err := objcryptWithoutMetadata(df.fh); err != nil {
				w.s.fail(df.path, "reading data", err)
				return "", nil
			} else if stripped {
				w.s.fail(df.path, "objcrypt data without crypto metadata", errStripped)
				return "", nil
			}
		}
		w.s.Plain++
		return "", nil
	}
	m, err := sysmeta.Parse(df.raw.Values)
	if err != nil {
		w.s.Scanned++
		w.s.fail(df.path, "invalid crypto metadata", err)
		return "", nil
	}
	return project, &m.Metadata
}

// keysFor returns the project's active key id for an object on keyID, or
// (under the lock) the keys to ask for first with no lock held: the active
// id and, for a rewrap, the material of both keys, asked for before
// anything is counted. A key failure prefetch saw a moment ago is returned
// without asking again.
func (w *worker) keysFor(ctx context.Context, project, keyID string, locked bool) (string, *keyNeed, error) {
	ok, err := w.warm(keyNeed{project: project})
	if locked && !ok {
		return "", &keyNeed{project: project}, nil
	}
	if err != nil {
		return "", nil, err
	}
	active, err := w.j.activeKey(ctx, project)
	if err != nil {
		return "", nil, keyError("active key", err)
	}
	if keyID != active && locked {
		n := keyNeed{project: project, oldID: keyID}
		if ok, err = w.warm(n); !ok {
			return "", &n, nil
		}
	}
	return active, nil, err
}

// commit rewraps the object onto the active key and counts it; under the
// lock, a rotation before the commit has it examined again.
func (w *worker) commit(ctx context.Context, p partition, df *dataFile, m *objcrypt.Metadata, project, active string, sr *sufRec, locked bool) *keyNeed {
	oldID := m.KeyID // rewrap moves m onto the new key
	keyID, err := w.rewrap(ctx, p, df, m, project, active, sr)
	if errors.Is(err, errRotated) && locked {
		// Examined again, after asking with no lock held, onto the key
		// that is active now.
		w.s.Scanned--
		return &keyNeed{project: project, oldID: oldID}
	}
	w.s.Keys[KeyRef{project, keyID}]++
	if err != nil {
		w.s.fail(df.path, reasonOf(err), err)
	}
	return nil
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

// legacyFormat reports whether an object was written before its ETag and
// user metadata were encrypted (its plaintext ETag in sysmeta): the job
// upgrades it, on the active key too.
func legacyFormat(values map[string]string) bool {
	_, ok := sysmetaKey(values, sysmeta.PlaintextEtag)
	return ok
}

// metaElsewhere reports whether a .data's user metadata is sealed under
// another key than active: the object still depends on that key.
func metaElsewhere(values map[string]string, active string) bool {
	id, ok := lookupFold(values, sysmeta.Prefix+sysmeta.MetaKeyID)
	return ok && id != active
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

// project returns the project of an object's account (AUTH_<project>),
// "" outside project accounts.
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
