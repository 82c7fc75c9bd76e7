package objectserver

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// What describes an encrypted object is encrypted too (objcrypt/SPEC.md,
// "Metadata"). Its ETag is sealed under keys from its data key, in the
// .data only, and conditional requests compare by MAC. Its user metadata
// is sealed as one value per metadata set under the project key's metadata
// key, bound to the path, in the .data (PUT) and in the .meta (fast-POST)
// alike, with the key id recorded beside it (sysmeta.SealUserMeta). The
// MD5s SLO and symlink keep in their own sysmeta are sealed under the ETag
// key (sealedSysmeta). GET, HEAD and POST open them all in
// their key phase (openCrypt), so the ETag and metadata they answer or
// send on are authentic; a value that does not open is treated as
// metadata edited on disk: the object is quarantined and answered 404,
// never shown, and the proxy asks another node.

// metaSet is the metadata set an object's user metadata comes from (the
// .meta's when there is one: Swift takes user metadata from it alone) and
// the names its sealed user metadata has there.
func metaSet(obj *diskfile.Object) (map[string]string, sysmeta.SetNames) {
	if obj.MetaMetadata != nil {
		return obj.MetaMetadata, sysmeta.MetaSet
	}
	return obj.DataMetadata, sysmeta.DataSet
}

// openMetadata opens an encrypted object's sealed ETag and user metadata
// into v, with the reader's ETag keys and key, the project key the data
// was opened with (reused when the metadata set is under the same key).
func (s *Server) openMetadata(req *request, v *plainView, cr cryptReader, key objcrypt.ProjectKey) error {
	path := v.obj.Metadata["name"]
	if v.sealedEtag != "" {
		ek := cr.ETagKeys()
		e, err := ek.OpenETag(v.sealedEtag, path)
		if err != nil {
			return err
		}
		v.etag, v.etagKeys = e, ek
	}
	ecEtag, err := openECEtag(v.obj, cr, path)
	if err != nil {
		return err
	}
	set, names := metaSet(v.obj)
	um, _, err := sysmeta.OpenUserMeta(set, path, names, func(id string) (*objcrypt.MetaKey, error) {
		if id == key.ID {
			return s.metaKeys.get(key)
		}
		k, err := s.readKey(req.ctx, req.account, id)
		if err != nil {
			return nil, keyFailed(err)
		}
		defer clear(k.Key)
		return s.metaKeys.get(k)
	})
	if err != nil {
		return err
	}
	if v.etagKeys != nil {
		opened, err := openSysmeta(v.obj.DataMetadata, v.etagKeys, path)
		if err != nil {
			return err
		}
		if len(opened) > 0 && um == nil {
			um = map[string]string{}
		}
		maps.Copy(um, opened)
	}
	v.userMeta = um
	if ecEtag != "" {
		if v.userMeta == nil {
			v.userMeta = map[string]string{}
		}
		v.userMeta[ecEtagHeader] = ecEtag
	}
	return nil
}

// sealedSysmeta are the sysmeta of Swift's middleware whose values hold
// MD5s (SLO's ETag, the container-update override with a manifest's MD5
// and slo_etag, a static symlink's target ETag, s3api's multipart ETag,
// the MD5 of its parts' MD5s, a fingerprint of a one-part upload's
// content): sealed at rest under the object's ETag key (objcrypt/SPEC.md,
// "Middleware sysmeta"), opened for the proxy on GET, HEAD and POST,
// which see them as Swift sends them.
var sealedSysmeta = map[string]bool{
	"x-object-sysmeta-container-update-override-etag": true,
	"x-object-sysmeta-slo-etag":                       true,
	"x-object-sysmeta-symlink-target-etag":            true,
	"x-object-sysmeta-s3api-etag":                     true,
}

// sealSysmeta seals, in place, the sealedSysmeta values of a new object's
// metadata.
func sealSysmeta(meta map[string]string, ek *objcrypt.ETagKeys, path string) error {
	for k, v := range meta {
		if v == "" || !sealedSysmeta[strings.ToLower(k)] {
			continue
		}
		sealed, err := ek.SealSysmeta(path, k, v, nil)
		if err != nil {
			return keyFailed(err)
		}
		meta[k] = sealed
	}
	return nil
}

// openSysmeta returns the sealedSysmeta values of a .data's metadata,
// opened. A value in the clear (an object written before they were
// sealed) is not among them: it is answered as stored. One that does not
// open is tampered metadata, as a sealed ETag that does not open.
func openSysmeta(meta map[string]string, ek *objcrypt.ETagKeys, path string) (map[string]string, error) {
	var out map[string]string
	for k, v := range meta {
		// the value's prefix first: most names are not lower-cased at all
		// (strings.ToLower of every name was a tenth of a GET's allocations)
		if !strings.HasPrefix(v, objcrypt.MetaValuePrefix) || !sealedSysmeta[strings.ToLower(k)] {
			continue
		}
		plain, err := ek.OpenSysmeta(path, k, v)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = plain
	}
	return out, nil
}

// sealUserMeta seals a metadata set's user metadata under the project
// key's metadata key before it is written (names: in the .data's sysmeta
// or the .meta's transient sysmeta).
func (s *Server) sealUserMeta(meta map[string]string, key objcrypt.ProjectKey, path string, names sysmeta.SetNames) error {
	mk, err := s.metaKeys.get(key)
	if err != nil {
		return keyFailed(err)
	}
	if err := sysmeta.SealUserMeta(meta, mk, path, names, nil); err != nil {
		return keyFailed(err)
	}
	return nil
}

// sealEtag seals a new object's ETag with the Writer's ETag keys.
func sealEtag(b *putBody, ek *objcrypt.ETagKeys, path string) error {
	sealed, err := ek.EncryptETag(b.plainMD5, path, nil)
	if err != nil {
		return keyFailed(err)
	}
	b.crypt.SealedEtag, b.crypt.EtagMAC = sealed, ek.ETagMAC(b.plainMD5)
	return nil
}

// etagMatch decides whether an ETag a client sent is the object's: by MAC
// under the object's ETag keys (constant time in the stored MAC, no
// decryption) when it has a sealed ETag, else by string.
type etagMatch struct {
	etag string
	keys *objcrypt.ETagKeys
	mac  string
}

func (m etagMatch) matches(list string) bool {
	if m.keys == nil {
		return etagMatches(list, m.etag)
	}
	return etagListMatches(list, func(item string) bool { return m.keys.MatchETagMAC(m.mac, item) })
}

// viewMatch is the ETag match of an opened view.
func viewMatch(v *plainView) etagMatch {
	return etagMatch{etag: v.etag, keys: v.etagKeys, mac: v.etagMAC}
}

// etagListMatches applies swob's Match to a list of entity tags: quotes
// come off only in pairs, * matches anything, a weak tag (W/"...") and an
// empty one nothing.
func etagListMatches(list string, eq func(string) bool) bool {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if len(item) >= 2 && item[0] == '"' && item[len(item)-1] == '"' {
			item = item[1 : len(item)-1]
		}
		if item == "*" || (item != "" && eq(item)) {
			return true
		}
	}
	return false
}

// onlyStar reports whether an If-None-Match list matches any existing
// object whatever its ETag (the only form Swift's proxy passes for PUT).
func onlyStar(list string) bool {
	return etagListMatches(list, func(string) bool { return false })
}

// putOriginalMatch decides a PUT's If-None-Match against the object it
// would replace. A list other than * needs that object's ETag keys, so its
// key: a key failure then fails the PUT as it would a GET.
func (s *Server) putOriginalMatch(req *request, obj *diskfile.Object, v *plainView, inm string) (bool, error) {
	if onlyStar(inm) || v.sealedEtag == "" {
		return etagMatches(inm, v.etag), nil
	}
	key, err := s.readKey(req.ctx, req.account, v.crypt.KeyID)
	if err != nil {
		return false, keyFailed(err)
	}
	defer clear(key.Key)
	ek, err := objcrypt.OpenETagKeys(v.crypt, key, obj.Metadata["name"])
	if err != nil {
		// not an object this server would serve: as if it were not there
		if errors.Is(err, objcrypt.ErrKeyUnwrap) || errors.Is(err, objcrypt.ErrWrongKey) {
			return false, nil
		}
		return false, keyFailed(fmt.Errorf("ETag keys of the object replaced: %w", err))
	}
	return etagMatch{keys: ek, mac: v.etagMAC}.matches(inm), nil
}
