package rewrap

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // G501: the object's ETag, Swift's MD5
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/textproto"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// beforeReplace is a test seam, nil in production: it is called with the
// partition lock held just before a file's metadata is replaced (steps 1
// and 2), the instant at which a concurrent PUT, POST or DELETE of the
// same object would do the most harm, so tests land one there.
var beforeReplace func(path string)

// errRotated: the project's active key changed between the choice of the
// key a file is rewrapped onto and the commit of the rewrite.
var errRotated = errors.New("the project's active key changed before the rewrite was committed")

// rewrap moves one file, read as raw under the partition lock, onto the
// project's active key (active) and returns the key the object depends on
// afterwards. Key material is asked for here, from the key client, and
// wiped when the file is done: the job keeps none, so a destroyed key
// stops opening objects once the client's key_cache_ttl has passed.
func (w *worker) rewrap(ctx context.Context, p partition, df *dataFile, m *objcrypt.Metadata, project, active string, sr *sufRec) (string, error) {
	j := w.j
	path, fh, raw := df.path, df.fh, df.raw
	keyID := m.KeyID
	newKey, err := j.material(ctx, project, active)
	if err != nil {
		return keyID, keyError("active key", err)
	}
	defer clear(newKey.Key)
	oldKey, err := j.material(ctx, project, keyID)
	if err != nil {
		return keyID, keyError("old key", err)
	}
	defer clear(oldKey.Key)
	oldWrapped := base64.StdEncoding.EncodeToString(m.WrappedKey)
	if err := objcrypt.Rewrap(m, oldKey, newKey, raw.Values["name"], j.o.Rand); err != nil {
		return keyID, &reasonError{"unwrapping with the old key", err}
	}
	var newPickle []byte
	if legacyFormat(raw.Values) {
		w.s.IO.UpgradeReads++
		if err := checkLegacyEtag(df, m, newKey); err != nil {
			return keyID, &reasonError{"legacy ETag", err}
		}
		newPickle, err = upgrade(raw.Values, m, newKey, raw.Values["name"], j.o.Rand)
	} else if id, ok := lookupFold(raw.Values, sysmeta.Prefix+sysmeta.MetaKeyID); ok && id != newKey.ID {
		var metaKey objcrypt.ProjectKey
		if metaKey, err = w.key(ctx, project, id, "metadata key"); err != nil {
			return keyID, err
		}
		newPickle, err = resealPickle(raw.Values, m, metaKey, newKey, j.o.Rand)
		clear(metaKey.Key)
	} else {
		newPickle, err = substitute(raw, keyID, oldWrapped, m.KeyID, base64.StdEncoding.EncodeToString(m.WrappedKey))
	}
	if err != nil {
		return keyID, &reasonError{"re-encoding metadata", err}
	}
	if beforeReplace != nil {
		beforeReplace(path)
	}
	// As the object server confirms a PUT's key before committing it: the
	// new wrap must be under the key that is active now as the key client
	// knows it (at most active_key_cache_ttl old). arca-api refuses to
	// destroy a key deactivated less than that long ago, so a file is never
	// committed onto a key that may already be gone. Cached active ids only
	// move forward: another id means the key was deactivated.
	now, err := j.activeKey(ctx, project)
	if err != nil {
		return keyID, keyError("active key", err)
	}
	if now != active {
		return keyID, &reasonError{"active key rotated during the rewrap", fmt.Errorf("%w: %s, now %s", errRotated, active, now)}
	}
	calls, err := diskfile.ReplacePickle(fh, raw, newPickle)
	w.s.IO.XattrWrites += int64(calls)
	if err != nil {
		if calls > 1 {
			// the chunk write failed after the checksum went: the old pickle
			// is there unchecked, restore its checksum
			w.queue(path, p.path, raw.Pickle(), sr)
		}
		return keyID, &reasonError{"writing metadata", err}
	}
	w.s.Rewrapped++
	w.queue(path, p.path, newPickle, sr)
	return m.KeyID, nil
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

// checkLegacyEtag reads an object written before ETags were encrypted
// whole, through objcrypt's reader (every segment authenticated, the
// length by the trailer), m already rewrapped onto key, and compares the
// MD5 of its plaintext with the ETag its metadata records in the clear.
// upgrade seals that ETag: unchecked, an ETag edited on disk would come
// out of the upgrade authenticated, as if the object's writer had sent
// it. (Legacy user metadata has nothing to be checked against: it was
// never authenticated at rest, objcrypt/SPEC.md.)
func checkLegacyEtag(df *dataFile, m *objcrypt.Metadata, key objcrypt.ProjectKey) error {
	recorded, _ := lookupFold(df.raw.Values, sysmeta.Prefix+sysmeta.PlaintextEtag)
	st, err := df.fh.Stat()
	if err != nil {
		return err
	}
	r, err := objcrypt.NewReader(df.fh, st.Size(), key, df.raw.Values["name"],
		&objcrypt.ReaderOptions{KeyID: m.KeyID, WrappedKey: m.WrappedKey, Parallelism: 1})
	if err != nil {
		return err
	}
	defer r.Close()
	sum := md5.New() //nolint:gosec // G401: the object's ETag, Swift's MD5
	if _, err := io.Copy(sum, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, recorded) {
		return fmt.Errorf("%w: plaintext MD5 %s, recorded %s", objcrypt.ErrTampered, got, recorded)
	}
	return nil
}

// upgrade returns the pickle of an object written before ETags and user
// metadata were encrypted, m already rewrapped onto key: the key id and
// wrapped key replaced, the plaintext ETag sealed and MACed under the data
// key (objcrypt/SPEC.md, "The ETag"), the user metadata sealed under key's
// metadata key. Every other value stays as it was. A .meta's user
// metadata in the clear is upgraded beside it (resealMetas).
func upgrade(values map[string]string, m *objcrypt.Metadata, key objcrypt.ProjectKey, path string, rnd io.Reader) ([]byte, error) {
	want := maps.Clone(values)
	for field, v := range map[string]string{"Key-Id": m.KeyID, "Wrapped-Key": base64.StdEncoding.EncodeToString(m.WrappedKey)} {
		k, ok := sysmetaKey(want, field)
		if !ok {
			return nil, errors.New("crypto metadata without key id or wrapped key")
		}
		want[k] = v
	}
	pk, _ := sysmetaKey(want, sysmeta.PlaintextEtag)
	etag := want[pk]
	delete(want, pk)
	ek, err := objcrypt.OpenETagKeys(m, key, path)
	if err != nil {
		return nil, err
	}
	o := sysmeta.Object{}
	if o.SealedEtag, err = ek.EncryptETag(etag, path, rnd); err != nil {
		return nil, fmt.Errorf("sealing the ETag: %w", err)
	}
	o.EtagMAC = ek.ETagMAC(etag)
	want[sysmeta.Prefix+sysmeta.Etag], want[sysmeta.Prefix+sysmeta.EtagMac] = o.SealedEtag, o.EtagMAC
	mk, err := objcrypt.NewMetaKey(key)
	if err != nil {
		return nil, err
	}
	if err := sysmeta.SealUserMeta(want, mk, path, sysmeta.DataSet, rnd); err != nil {
		return nil, err
	}
	return pickle.Encode(want)
}

// resealPickle returns the pickle of a .data file with the key id and
// wrapped key of m (rewrapped onto newKey) and its user metadata, sealed
// under oldKey, resealed under newKey: the user metadata depends on its
// project key as the wrapped data key does.
func resealPickle(values map[string]string, m *objcrypt.Metadata, oldKey, newKey objcrypt.ProjectKey, rnd io.Reader) ([]byte, error) {
	want := maps.Clone(values)
	for field, v := range map[string]string{"Key-Id": m.KeyID, "Wrapped-Key": base64.StdEncoding.EncodeToString(m.WrappedKey)} {
		k, ok := sysmetaKey(want, field)
		if !ok {
			return nil, errors.New("crypto metadata without key id or wrapped key")
		}
		want[k] = v
	}
	path := values["name"]
	um, _, err := sysmeta.OpenUserMeta(values, path, sysmeta.DataSet, func(string) (*objcrypt.MetaKey, error) {
		return objcrypt.NewMetaKey(oldKey)
	})
	if err != nil {
		return nil, err
	}
	maps.Copy(want, um)
	mk, err := objcrypt.NewMetaKey(newKey)
	if err != nil {
		return nil, err
	}
	if err := sysmeta.SealUserMeta(want, mk, path, sysmeta.DataSet, rnd); err != nil {
		return nil, err
	}
	return pickle.Encode(want)
}

// sysmetaKey finds the stored key of a crypto metadata field.
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
