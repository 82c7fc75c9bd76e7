package rewrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// A fast-POST's .meta keeps its user metadata sealed under the project
// key that was active at the POST (objcrypt/SPEC.md, "User metadata"), so
// a .meta depends on a key too: the job reseals it onto the active key
// beside the .data's rewrap, or destroying the old key would make the
// object's metadata, hence the object, unreadable (410). A .meta written
// by a release before metadata was sealed holds its user metadata in the
// clear: the job seals it onto the active key (an upgrade), so that what
// a POST of an older release wrote does not stay readable on the disks
// until the object's next POST. status counts both kinds (Summary.Metas).

// metaFile is one .meta file of an object as listed: the key its user
// metadata is sealed under, "" when it is not sealed (an older release's).
type metaFile struct {
	path  string
	keyID string
}

// listMetas reads the key record of every .meta file in dir. A .meta that
// cannot be read is counted as failed here and left out.
func (w *worker) listMetas(dir string) []metaFile {
	names, err := filepath.Glob(filepath.Join(dir, "*.meta"))
	if err != nil {
		return nil
	}
	out := make([]metaFile, 0, len(names))
	for _, path := range names {
		raw, err := readRaw(path)
		if err != nil {
			w.s.fail(path, "unreadable .meta metadata", err)
			continue
		}
		id, _ := lookupFold(raw.Values, sysmeta.TransientMetaKeyID)
		out = append(out, metaFile{path: path, keyID: id})
	}
	return out
}

func readRaw(path string) (*diskfile.RawMetadata, error) {
	fh, err := os.Open(path) //nolint:gosec // G304: a file listed in a hash directory
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return diskfile.ReadRawMetadata(fh)
}

// metaNeeds returns the keys the object's .meta files and its .data's user
// metadata need that were not asked for with no lock held a moment ago:
// under the lock they are asked for first, with the lock released (as the
// .data's own keys are), and the object examined again. A .meta to upgrade
// needs the active key's material (keyNeed{project, active} asks for it).
func (w *worker) metaNeeds(project, active, dataKeyID string, values map[string]string, metas []metaFile, needActive bool) []keyNeed {
	ids := map[string]bool{}
	if needActive {
		ids[active] = true // an archive to upgrade: the active key's material
	}
	if id, ok := lookupFold(values, sysmeta.Prefix+sysmeta.MetaKeyID); ok && id != active && id != dataKeyID {
		ids[id] = true
	}
	if legacyFormat(values) {
		ids[active] = true
	}
	for _, mf := range metas {
		switch mf.keyID {
		case active:
		case "":
			ids[active] = true
		default:
			ids[mf.keyID] = true
		}
	}
	var out []keyNeed
	for id := range ids {
		n := keyNeed{project: project, oldID: id}
		if ok, _ := w.warm(n); !ok {
			out = append(out, n)
		}
	}
	return out
}

// resealMetas brings the .meta files of an object onto the active key:
// resealed from another key, or sealed (upgraded) when in the clear; in a
// dry run only counted. Failures are counted; the .data's rewrap does not
// depend on them.
func (w *worker) resealMetas(ctx context.Context, p partition, metas []metaFile, project, active string, sr *sufRec) {
	for _, mf := range metas {
		if mf.keyID == active {
			w.s.MetaKeys[KeyRef{project, active}]++
			continue
		}
		if w.j.o.DryRun {
			w.countMeta(project, mf.keyID, true)
			continue
		}
		if err := w.resealMeta(ctx, p, mf, project, active, sr); errors.Is(err, fs.ErrNotExist) {
			w.s.Changed++ // a newer POST's cleanup removed it meanwhile
			continue
		} else if err != nil {
			w.s.fail(mf.path, "resealing .meta user metadata", err)
			w.countMeta(project, mf.keyID, false)
			continue
		}
		w.countMeta(project, mf.keyID, true)
		w.s.MetaKeys[KeyRef{project, active}]++
	}
}

// countMeta counts a .meta not on the active key: done (or in a dry run,
// to do) or left as it is, on its key or in the clear.
func (w *worker) countMeta(project, keyID string, done bool) {
	switch {
	case done && keyID == "":
		w.s.MetaUpgraded++
	case done:
		w.s.MetaResealed++
	}
	if !done || w.j.o.DryRun {
		if keyID == "" {
			w.s.MetaPlain++
		} else {
			w.s.MetaKeys[KeyRef{project, keyID}]++
		}
	}
}

// key returns a key's material for use under the partition lock: from the
// key client, whose cache prefetch warmed with no lock held; a failure
// prefetch saw a moment ago is returned without asking again.
func (w *worker) key(ctx context.Context, project, id, which string) (objcrypt.ProjectKey, error) {
	if ok, err := w.warm(keyNeed{project: project, oldID: id}); ok && err != nil {
		return objcrypt.ProjectKey{}, err
	}
	k, err := w.j.material(ctx, project, id)
	if err != nil {
		return k, keyError(which, err)
	}
	return k, nil
}

func (w *worker) resealMeta(ctx context.Context, p partition, mf metaFile, project, active string, sr *sufRec) error {
	fh, err := os.Open(mf.path) //nolint:gosec // G304: a file listed in a hash directory
	if err != nil {
		return err
	}
	defer fh.Close()
	raw, err := diskfile.ReadRawMetadata(fh)
	if err != nil {
		return err
	}
	if id, _ := lookupFold(raw.Values, sysmeta.TransientMetaKeyID); id != mf.keyID {
		return fmt.Errorf("%s changed while listed", mf.path)
	}
	name := objectPath(filepath.Dir(mf.path), raw.Values)
	if name == "" {
		return fmt.Errorf("no object name for %s", mf.path)
	}
	want := maps.Clone(raw.Values)
	if mf.keyID != "" {
		oldKey, err := w.key(ctx, project, mf.keyID, "old key")
		if err != nil {
			return err
		}
		um, _, err := sysmeta.OpenUserMeta(raw.Values, name, sysmeta.MetaSet, func(string) (*objcrypt.MetaKey, error) {
			return objcrypt.NewMetaKey(oldKey)
		})
		clear(oldKey.Key)
		if err != nil {
			return err
		}
		maps.Copy(want, um)
	}
	newKey, err := w.key(ctx, project, active, "active key")
	if err != nil {
		return err
	}
	defer clear(newKey.Key)
	mk, err := objcrypt.NewMetaKey(newKey)
	if err != nil {
		return err
	}
	if err := sysmeta.SealUserMeta(want, mk, name, sysmeta.MetaSet, w.j.o.Rand); err != nil {
		return err
	}
	np, err := pickle.Encode(want)
	if err != nil {
		return err
	}
	if beforeReplace != nil {
		beforeReplace(mf.path)
	}
	calls, err := diskfile.ReplacePickle(fh, raw, np)
	w.s.IO.XattrWrites += int64(calls)
	if err != nil {
		if calls > 1 {
			w.queue(mf.path, p.path, raw.Pickle(), sr)
		}
		return err
	}
	w.queue(mf.path, p.path, np, sr)
	return nil
}

// objectPath is the object's name: a .meta does not record it (the object
// server drops it), so it is taken from the .data beside it.
func objectPath(dir string, values map[string]string) string {
	if n := values["name"]; n != "" {
		return n
	}
	cur, err := diskfile.CurrentData(dir)
	if err != nil || cur == "" {
		return ""
	}
	raw, err := readRaw(filepath.Join(dir, cur))
	if err != nil {
		return ""
	}
	return raw.Values["name"]
}

func lookupFold(m map[string]string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}
