package sysmeta

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// userMetaPrefix is Swift's user metadata prefix for objects.
const userMetaPrefix = "X-Object-Meta-"

// The sealed user metadata of a metadata set: in a .data (PUT) as sysmeta,
// in a fast-POST's .meta as transient sysmeta (a .meta replaces the
// .data's user metadata and transient sysmeta, while the .data's sysmeta
// would win over it). The set is sealed whole, as one value, rather than
// value by value: per-value nonces and tags grew Swift's 90 small values
// past what ext4 holds in one inode's extended attributes (507), while the
// sealed set is about the size of the plaintext pickle entries it
// replaces, and hides the names too.
const (
	UserMeta          = "Meta"
	TransientUserMeta = TransientPrefix + UserMeta
)

// IsUserMeta reports whether a metadata name is user metadata (the
// prefix, in any case, and something after it), what Swift's encrypter
// encrypts. Transient sysmeta is not among it: Swift's encrypter leaves it
// in the clear, and middleware (not clients) sets it.
func IsUserMeta(name string) bool {
	return len(name) > len(userMetaPrefix) && strings.EqualFold(name[:len(userMetaPrefix)], userMetaPrefix)
}

// SetNames are where a metadata set keeps its sealed user metadata and the
// id of the key it is sealed under.
type SetNames struct{ Meta, KeyID string }

// DataSet and MetaSet are the names in a .data and in a .meta.
var (
	DataSet = SetNames{Meta: Prefix + UserMeta, KeyID: Prefix + MetaKeyID}
	MetaSet = SetNames{Meta: TransientUserMeta, KeyID: TransientMetaKeyID}
)

// encodeUserMeta is the plaintext of a sealed set (objcrypt/SPEC.md):
// for each entry in byte order of its name, u16 len(name) || name ||
// u16 len(value) || value, the name without Swift's prefix, as stored.
func encodeUserMeta(meta map[string]string) ([]byte, error) {
	names := make([]string, 0, len(meta))
	size := 0
	for k, v := range meta {
		if IsUserMeta(k) {
			names = append(names, k)
			size += 4 + len(k) - len(userMetaPrefix) + len(v)
		}
	}
	slices.Sort(names)
	out := make([]byte, 0, size)
	for _, k := range names {
		short, v := k[len(userMetaPrefix):], meta[k]
		if len(short) > 1<<16-1 || len(v) > 1<<16-1 {
			return nil, fmt.Errorf("%w: metadata %s too long", objcrypt.ErrInvalid, k)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(short)))
		out = append(out, short...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
		out = append(out, v...)
	}
	return out, nil
}

// decodeUserMeta reverses encodeUserMeta; an authenticated set that does
// not decode was not written by this package (tampered is the only kind
// of error it can be after authentication).
func decodeUserMeta(b []byte) (map[string]string, error) {
	out := map[string]string{}
	field := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	for len(b) > 0 {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 || k == "" {
			return nil, fmt.Errorf("%w: sealed user metadata does not decode", objcrypt.ErrMetadataTampered)
		}
		out[userMetaPrefix+k] = v
	}
	return out, nil
}

// SealUserMeta moves, in place, the user metadata of meta, one metadata
// set of the object at path, into one value sealed under mk (names.Meta,
// objcrypt's SealMetaValue with that name), and records mk's id
// (names.KeyID). Both are written even without user metadata, so values
// added later on disk do not pass for a set written before encryption.
func SealUserMeta(meta map[string]string, mk *objcrypt.MetaKey, path string, names SetNames, rnd io.Reader) error {
	plain, err := encodeUserMeta(meta)
	if err != nil {
		return err
	}
	sealed, err := mk.SealMetaValue(path, names.Meta, string(plain), rnd)
	if err != nil {
		return fmt.Errorf("sealing user metadata: %w", err)
	}
	for k := range meta {
		if IsUserMeta(k) {
			delete(meta, k)
		}
	}
	meta[names.Meta], meta[names.KeyID] = sealed, mk.ID()
	return nil
}

// MetaKeyFunc returns the metadata key of a project key id.
type MetaKeyFunc func(keyID string) (*objcrypt.MetaKey, error)

// OpenUserMeta opens the sealed user metadata of set, one metadata set of
// the object at path. Without a recorded key id and sealed value (a set
// written before metadata was encrypted) it returns nil, false: the user
// metadata is what is stored. Otherwise it returns the user metadata, true;
// a sealed set that does not open, one beside plaintext user metadata, or
// only half a record, is objcrypt.ErrMetadataTampered: never shown.
func OpenUserMeta(set map[string]string, path string, names SetNames, key MetaKeyFunc) (map[string]string, bool, error) {
	sealed, hasMeta := lookupFold(set, names.Meta)
	keyID, hasID := lookupFold(set, names.KeyID)
	if !hasMeta && !hasID {
		return nil, false, nil
	}
	for k := range set {
		if IsUserMeta(k) {
			return nil, false, fmt.Errorf("%w: user metadata %s beside a sealed set", objcrypt.ErrMetadataTampered, k)
		}
	}
	if !hasMeta || !hasID {
		return nil, false, fmt.Errorf("%w: %s without %s or the reverse", objcrypt.ErrMetadataTampered, names.Meta, names.KeyID)
	}
	mk, err := key(keyID)
	if err != nil {
		return nil, false, err
	}
	plain, err := mk.OpenMetaValue(path, names.Meta, sealed)
	if err != nil {
		return nil, false, err
	}
	out, err := decodeUserMeta([]byte(plain))
	return out, err == nil, err
}

func lookupFold(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}
