package rewrap

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // G501: the archive's MD5, its recorded ETag
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/pickle"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// Erasure-coded archives written before objcrypt's EC layout are one
// objcrypt stream each (objcrypt/SPEC.md, "Erasure coding"): the object
// server reads them, but Swift's Python object-auditor quarantines them
// (their bytes are not liberasurecode fragments). With --upgrade-ec-layout
// the job rewrites each one it finds into the EC layout, in place:
//
//  1. the stream is read and authenticated whole (every segment and the
//     trailer) and converted, under the same data key, into a new file in
//     the device's tmp directory (objcrypt.UpgradeToEC);
//  2. the old archive is checked against its metadata: the MD5 of its
//     plaintext against the ETag Arca recorded (sealed, and its MAC), its
//     length, its fragment headers' index against the metadata's and the
//     file name's;
//  3. the new file is read back from the disk through the EC layout's
//     reader (every fragment MAC, the archive MAC) and its plaintext MD5
//     compared again;
//  4. its metadata is the old one with the stream's fields replaced by the
//     EC layout's (X-Object-Sysmeta-Arca-Layout, -Ec-Fragments, -Ec-Mac),
//     Swift's ETag and Content-Length those of the new bytes, and the data
//     key rewrapped onto the active key (user metadata resealed, a legacy
//     ETag sealed, as any rewrap); every other value (timestamps, the
//     fragment index, Swift's EC sysmeta, user metadata, the sealed EC ETag
//     and middleware sysmeta, which the same data key keeps valid) stays;
//  5. the new file is fsynced and renamed over the old one under the same
//     name (so durability and timestamps stay, and suffix hashes do not
//     change), as Swift writes files; the rename exchanges the two, so a
//     file a PUT's or DELETE's cleanup removed meanwhile stays removed.
//
// Any failure leaves the old archive as it was. The partition lock is held
// throughout, as for any rewrite (the archive is read twice and written
// once under it). An archive whose plaintext is not a fragment archive
// (bytes sent under an EC policy that were not fragments) cannot be in the
// EC layout: it is counted as failed and stays.

// isECArchive reports whether a .data file is an EC fragment archive
// (<ts>#<index>[#d].data: only erasure-coded policies write such names).
func isECArchive(path string) bool {
	return strings.Contains(filepath.Base(path), "#")
}

// oldECLayout reports whether the .data file is an EC archive stored as an
// objcrypt stream (no X-Object-Sysmeta-Arca-Layout).
func oldECLayout(path string, values map[string]string) bool {
	if !isECArchive(path) {
		return false
	}
	_, ok := lookupFold(values, sysmeta.Prefix+sysmeta.Layout)
	return !ok
}

// tmpDir is the device's temp directory of a partition's policy
// (objects -> tmp, objects-N -> tmp-N), on the same file system.
func (j *job) tmpDir(p partition) string {
	return filepath.Join(j.o.Devices, p.device, "tmp"+strings.TrimPrefix(p.policy, "objects"))
}

// createTemp creates the new file of an upgrade in the device's tmp
// directory, as the object server creates a PUT's.
func (j *job) createTemp(p partition) (*os.File, error) {
	dir := j.tmpDir(p)
	tmp, err := os.CreateTemp(dir, "tmp")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o750); err == nil {
			tmp, err = os.CreateTemp(dir, "tmp")
		}
	}
	return tmp, err
}

// upgradeEC rewrites an old-layout archive into the EC layout, its data
// key onto the active key; it returns the key the object depends on
// afterwards.
func (w *worker) upgradeEC(ctx context.Context, p partition, df *dataFile, m *objcrypt.Metadata, project, active string) (string, error) {
	j := w.j
	name := df.raw.Values["name"]
	oldKey, err := w.key(ctx, project, m.KeyID, "old key")
	if err != nil {
		return m.KeyID, err
	}
	defer clear(oldKey.Key)
	newKey, err := w.key(ctx, project, active, "active key")
	if err != nil {
		return m.KeyID, err
	}
	defer clear(newKey.Key)
	st, err := df.fh.Stat()
	if err != nil {
		return m.KeyID, &reasonError{"reading data", err}
	}
	tmp, err := j.createTemp(p)
	if err != nil {
		return m.KeyID, &reasonError{"writing the upgraded archive", err}
	}
	replaced := false
	defer func() {
		if !replaced {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	w.s.IO.DataReads++
	up, err := objcrypt.UpgradeToEC(bw, df.fh, st.Size(), oldKey, name, m)
	if errors.Is(err, objcrypt.ErrInvalid) {
		return m.KeyID, &reasonError{"old-layout EC archive is not a fragment archive (stays a stream)", err}
	}
	if err != nil {
		return m.KeyID, &reasonError{"old-layout EC archive does not verify", err}
	}
	if err := bw.Flush(); err != nil {
		return m.KeyID, &reasonError{"writing the upgraded archive", err}
	}
	if err := checkOldArchive(df, up); err != nil {
		return m.KeyID, &reasonError{"old-layout EC archive does not verify", err}
	}
	if err := checkNewArchive(tmp, oldKey, name, up); err != nil {
		return m.KeyID, &reasonError{"upgraded archive does not verify", err}
	}
	nm := *m
	if err := objcrypt.Rewrap(&nm, oldKey, newKey, name, j.o.Rand); err != nil {
		return m.KeyID, &reasonError{"unwrapping with the old key", err}
	}
	newPickle, err := ecPickle(df.raw.Values, up, &nm, newKey, func(id string) (objcrypt.ProjectKey, error) {
		return w.key(ctx, project, id, "metadata key")
	}, j)
	if err != nil {
		return m.KeyID, &reasonError{"re-encoding metadata", err}
	}
	if beforeReplace != nil {
		beforeReplace(df.path)
	}
	// as a rewrap: committed only onto the key active now
	now, err := j.activeKey(ctx, project)
	if err != nil {
		return m.KeyID, keyError("active key", err)
	}
	if now != active {
		return m.KeyID, &reasonError{"active key rotated during the rewrap", fmt.Errorf("%w: %s, now %s", errRotated, active, now)}
	}
	replaced = true // ReplaceData closes and removes tmp
	w.s.IO.XattrWrites++
	if err := diskfile.ReplaceData(tmp, df.fh, df.path, newPickle, false); err != nil {
		if errors.Is(err, diskfile.ErrMetadataChanged) {
			return m.KeyID, errChanged
		}
		return m.KeyID, &reasonError{"replacing the archive", err}
	}
	return nm.KeyID, nil
}

// errChanged: the file was removed or replaced while the job rewrote it.
var errChanged = errors.New("the archive changed meanwhile")

// checkOldArchive checks what the upgrade read against what the metadata
// recorded of the archive: its MD5 (the sealed ETag and its MAC, or a
// legacy object's plaintext ETag), its length, its fragment index.
func checkOldArchive(df *dataFile, up *objcrypt.ECUpgrade) error {
	values, name := df.raw.Values, df.raw.Values["name"]
	if legacy, ok := lookupFold(values, sysmeta.Prefix+sysmeta.PlaintextEtag); ok {
		if !strings.EqualFold(legacy, up.PlainMD5) {
			return fmt.Errorf("%w: archive MD5 %s, recorded %s", objcrypt.ErrTampered, up.PlainMD5, legacy)
		}
	} else {
		sealed, _ := lookupFold(values, sysmeta.Prefix+sysmeta.Etag)
		mac, _ := lookupFold(values, sysmeta.Prefix+sysmeta.EtagMac)
		etag, err := up.ETagKeys.OpenETag(sealed, name)
		if err != nil {
			return fmt.Errorf("sealed ETag: %w", err)
		}
		if etag != up.PlainMD5 || !up.ETagKeys.MatchETagMAC(mac, etag) {
			return fmt.Errorf("%w: archive MD5 %s, sealed ETag %s", objcrypt.ErrTampered, up.PlainMD5, etag)
		}
	}
	if pl, ok := lookupFold(values, sysmeta.Prefix+sysmeta.PlaintextLength); ok && pl != strconv.FormatInt(up.EC.Length, 10) {
		return fmt.Errorf("%w: archive of %d bytes, recorded %s", objcrypt.ErrTampered, up.EC.Length, pl)
	}
	if up.FragIndex >= 0 {
		fi, _ := lookupFold(values, "X-Object-Sysmeta-Ec-Frag-Index")
		parts := strings.Split(filepath.Base(df.path), "#")
		if fi != strconv.Itoa(up.FragIndex) || len(parts) < 2 || strings.TrimSuffix(parts[1], ".data") != fi {
			return fmt.Errorf("%w: fragment headers carry index %d, the metadata %q, the file %s", objcrypt.ErrTampered, up.FragIndex, fi, filepath.Base(df.path))
		}
	}
	return nil
}

// checkNewArchive reads the new file back from the disk through the EC
// layout's reader and compares its plaintext MD5.
func checkNewArchive(f *os.File, key objcrypt.ProjectKey, name string, up *objcrypt.ECUpgrade) error {
	if err := f.Sync(); err != nil {
		return err
	}
	er, err := objcrypt.NewECReader(f, up.EC.Length, key, name, up.EC)
	if err != nil {
		return err
	}
	if err := er.Range(0, up.EC.Length); err != nil {
		return err
	}
	sum := md5.New() //nolint:gosec // G401: the archive's MD5
	if _, err := er.WriteTo(sum); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != up.PlainMD5 || er.FragIndex() != up.FragIndex {
		return fmt.Errorf("%w: read back MD5 %s index %d, wrote %s index %d", objcrypt.ErrTampered, got, er.FragIndex(), up.PlainMD5, up.FragIndex)
	}
	return nil
}

// ecPickle is the upgraded archive's metadata: the old values with the
// stream's record replaced by the EC layout's, Swift's ETag and
// Content-Length of the new bytes, and the data key on newKey (m already
// rewrapped) with the user metadata and a legacy ETag brought onto it as
// a rewrap does.
func ecPickle(old map[string]string, up *objcrypt.ECUpgrade, m *objcrypt.Metadata, newKey objcrypt.ProjectKey, metaKey func(string) (objcrypt.ProjectKey, error), j *job) ([]byte, error) {
	values := maps.Clone(old)
	for _, f := range []string{sysmeta.Version, sysmeta.Algorithm, sysmeta.SegmentSize, sysmeta.Decorators} {
		if k, ok := sysmetaKey(values, f); ok {
			delete(values, k)
		}
	}
	setFold(values, sysmeta.Prefix+sysmeta.Layout, objcrypt.ECLayout)
	setFold(values, sysmeta.Prefix+sysmeta.EcFragments, strconv.FormatInt(up.EC.Fragments, 10))
	setFold(values, sysmeta.Prefix+sysmeta.EcMac, base64.StdEncoding.EncodeToString(up.EC.MAC))
	setFold(values, sysmeta.Prefix+sysmeta.PlaintextLength, strconv.FormatInt(up.EC.Length, 10))
	setFold(values, "ETag", up.StoredMD5)
	setFold(values, "Content-Length", strconv.FormatInt(up.EC.Length, 10))
	if legacyFormat(values) {
		return upgrade(values, m, newKey, values["name"], j.o.Rand)
	}
	if id, ok := lookupFold(values, sysmeta.Prefix+sysmeta.MetaKeyID); ok && id != newKey.ID {
		mk, err := metaKey(id)
		if err != nil {
			return nil, err
		}
		defer clear(mk.Key)
		return resealPickle(values, m, mk, newKey, j.o.Rand)
	}
	setFold(values, sysmeta.Prefix+sysmeta.KeyID, m.KeyID)
	setFold(values, sysmeta.Prefix+sysmeta.WrappedKey, base64.StdEncoding.EncodeToString(m.WrappedKey))
	out, err := pickle.Encode(values)
	if err != nil {
		return nil, err
	}
	if _, err := sysmeta.Parse(values); err != nil {
		return nil, fmt.Errorf("the upgraded record does not parse: %w", err)
	}
	return out, nil
}

// setFold sets key in values, replacing a stored key of another case.
func setFold(values map[string]string, key, v string) {
	for k := range values {
		if strings.EqualFold(k, key) {
			values[k] = v
			return
		}
	}
	values[key] = v
}
