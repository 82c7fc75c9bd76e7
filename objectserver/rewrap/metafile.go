package rewrap

import (
	"context"
	"fmt"
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
// object's metadata, hence the object, unreadable (410).

// resealMetas reseals the user metadata of the .meta files in dir that
// are sealed under another key than active. Failures are counted; the
// .data's rewrap does not depend on them.
func (w *worker) resealMetas(ctx context.Context, p partition, dir, project, active string, sr *sufRec) {
	if w.j.o.DryRun {
		return
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.meta"))
	if err != nil {
		return
	}
	for _, path := range names {
		if err := w.resealMeta(ctx, p, path, project, active, sr); err != nil {
			w.s.fail(path, "resealing .meta user metadata", err)
		}
	}
}

func (w *worker) resealMeta(ctx context.Context, p partition, path, project, active string, sr *sufRec) error {
	fh, err := os.Open(path) //nolint:gosec // G304: a file listed in a hash directory
	if err != nil {
		return err
	}
	defer fh.Close()
	raw, err := diskfile.ReadRawMetadata(fh)
	if err != nil {
		return err
	}
	keyID, ok := lookupFold(raw.Values, sysmeta.TransientMetaKeyID)
	if !ok || keyID == active {
		return nil
	}
	oldKey, err := w.j.material(ctx, project, keyID)
	if err != nil {
		return keyError("old key", err)
	}
	defer clear(oldKey.Key)
	newKey, err := w.j.material(ctx, project, active)
	if err != nil {
		return keyError("active key", err)
	}
	defer clear(newKey.Key)
	name := objectPath(filepath.Dir(path), raw.Values)
	if name == "" {
		return fmt.Errorf("no object name for %s", path)
	}
	um, _, err := sysmeta.OpenUserMeta(raw.Values, name, sysmeta.MetaSet, func(string) (*objcrypt.MetaKey, error) {
		return objcrypt.NewMetaKey(oldKey)
	})
	if err != nil {
		return err
	}
	want := maps.Clone(raw.Values)
	maps.Copy(want, um)
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
	calls, err := diskfile.ReplacePickle(fh, raw, np)
	w.s.IO.XattrWrites += int64(calls)
	if err != nil {
		if calls > 1 {
			w.queue(path, p.path, raw.Pickle(), sr)
		}
		return err
	}
	w.queue(path, p.path, np, sr)
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
	f, err := os.Open(filepath.Join(dir, cur)) //nolint:gosec // G304: a file listed in a hash directory
	if err != nil {
		return ""
	}
	defer f.Close()
	raw, err := diskfile.ReadRawMetadata(f)
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
