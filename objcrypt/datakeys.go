package objcrypt

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// labelRef names the hash DataKeys are bound by (never a key).
const labelRef = "arca objcrypt v1 data keys binding"

// DataKeys are the keys one object's data key gives for one algorithm: the
// segment cipher and MAC keys and the ETag keys (SPEC.md, "Keys" and "The
// ETag"), which NewReader otherwise derives on every open by unwrapping
// the data key (an HKDF of the project key, AES-GCM) and expanding it.
//
// A caller that opens the same objects often (an object server's hot
// objects) may keep them (OpenDataKeys) and hand them to NewReader
// (ReaderOptions.DataKeys), which then unwraps and derives nothing. They
// are bound to everything they were opened from: the project key (its id
// and material), the object path, the wrapped key and the algorithm.
// NewReader uses them only for an object with the same five, and unwraps
// as usual otherwise, so handing it the wrong DataKeys never opens
// anything the project key would not. Every other check of NewReader (the
// header, the trailer, every segment's MAC) is the same with or without.
//
// Keeping them is keeping secrets: the caller bounds how long (objectserver
// drops them after its key_cache_ttl) and wipes them (Wipe). A DataKeys is
// not safe for concurrent use with Wipe; give each user its own Clone.
//
// OpenDataKeys also builds the ciphers the keys give (the AES key
// schedules, the HMAC pads, the ETag AEAD) once, and every Clone and every
// Reader given them shares those: building them per Reader was an eighth
// of a small GET's allocated bytes. They are never written after, so
// Readers use them at once; Wipe drops a DataKeys' reference to them
// rather than zeroing them under a Reader still using them (Go's AES key
// schedules cannot be zeroed anyway), and the garbage collector takes
// them with the last Reader.
type DataKeys struct {
	ref    [sha256.Size]byte // DataKeysRef of what they were opened from
	alg    Algorithm
	keys   [4 * 32]byte // segment cipher key (keyLen bytes), MAC key, ETag key, ETag MAC key
	wiped  bool
	encLen int
	built  *builtKeys
}

// builtKeys are the ciphers of a DataKeys, shared and read-only.
type builtKeys struct {
	segment *objectKeys // headerHash unset: each Reader's copy takes its header's
	etag    *ETagKeys
}

func (d *DataKeys) enc() []byte     { return d.keys[:d.encLen] }
func (d *DataKeys) mac() []byte     { return d.keys[32:64] }
func (d *DataKeys) etag() []byte    { return d.keys[64:96] }
func (d *DataKeys) etagMAC() []byte { return d.keys[96:128] }

// DataKeysRef is the binding of DataKeys: a SHA-256 of the project key's
// material and id, the object path, the wrapped key and the algorithm,
// each with its length. It identifies the keys (a cache may be keyed by
// it); it is not a secret, and reveals nothing of the material it hashes
// (a 128- or 256-bit random key).
func DataKeysRef(pk ProjectKey, keyID, path string, wrapped []byte, alg Algorithm) [sha256.Size]byte {
	h := sha256.New()
	var b [2]byte
	h.Write([]byte(labelRef))
	field := func(p []byte) {
		binary.BigEndian.PutUint16(b[:], uint16(len(p)))
		h.Write(b[:])
		h.Write(p)
	}
	field(pk.Key)
	field([]byte(pk.ID))
	field([]byte(keyID))
	field([]byte(path))
	field(wrapped)
	h.Write([]byte{byte(alg)})
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// OpenDataKeys unwraps an object's data key as NewReader does (the key id
// first, ErrWrongKey; then the wrapped key, ErrKeyUnwrap) and derives its
// keys for alg. The data key itself is wiped before it returns.
func OpenDataKeys(pk ProjectKey, keyID, path string, wrapped []byte, alg Algorithm) (*DataKeys, error) {
	if !alg.valid() {
		return nil, fmt.Errorf("%w: algorithm %d", ErrUnsupported, alg)
	}
	dataKey, err := unwrapKey(pk, keyID, path, wrapped)
	if err != nil {
		return nil, err
	}
	prk, err := dataPRK(dataKey)
	clear(dataKey)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	d := &DataKeys{ref: DataKeysRef(pk, keyID, path, wrapped, alg), alg: alg, encLen: alg.keyLen()}
	for _, k := range []struct {
		dst   []byte
		label string
	}{
		{d.enc(), labelEnc + alg.String()},
		{d.mac(), labelMAC + alg.String()},
		{d.etag(), labelETagKey},
		{d.etagMAC(), labelETagMAC},
	} {
		b, err := hkdf.Expand(sha256.New, prk, k.label, len(k.dst))
		if err != nil {
			d.Wipe()
			return nil, err
		}
		copy(k.dst, b)
		clear(b)
	}
	if err := d.build(); err != nil {
		d.Wipe()
		return nil, err
	}
	return d, nil
}

// build makes d's ciphers, with copies of the bytes they keep.
func (d *DataKeys) build() error {
	segment, err := keysFrom(d.enc(), bytes.Clone(d.mac()), nil)
	if err != nil {
		return err
	}
	aead, err := newGCM(d.etag())
	if err != nil {
		return err
	}
	d.built = &builtKeys{segment: segment, etag: &ETagKeys{aead: aead, mac: bytes.Clone(d.etagMAC())}}
	return nil
}

// Clone is a copy of d with its own bytes (the ciphers built from them
// are shared).
func (d *DataKeys) Clone() *DataKeys {
	c := *d
	return &c
}

// Wipe zeroes the keys; NewReader no longer uses d afterwards.
func (d *DataKeys) Wipe() {
	*d = DataKeys{wiped: true}
}

// matches reports whether d was opened from exactly these (a constant-time
// compare of the binding; the key id check comes first, as in unwrapKey).
func (d *DataKeys) matches(pk ProjectKey, keyID, path string, wrapped []byte, alg Algorithm) bool {
	if d == nil || d.wiped || d.alg != alg || keyID != pk.ID || pk.check() != nil || checkPath(path) != nil ||
		len(wrapped) != wrappedLen {
		return false
	}
	ref := DataKeysRef(pk, keyID, path, wrapped, alg)
	return subtle.ConstantTimeCompare(ref[:], d.ref[:]) == 1
}

// objectKeys is what NewReader needs from d: the shared ciphers, with the
// object's header hash in a copy of the segment keys of its own.
func (d *DataKeys) objectKeys(formatPart []byte, withETag bool) (*objectKeys, *ETagKeys, error) {
	if d.built == nil {
		return nil, nil, fmt.Errorf("%w: DataKeys not opened by OpenDataKeys", ErrInvalid)
	}
	keys := *d.built.segment
	keys.headerHash = sha256.Sum256(formatPart)
	if !withETag {
		return &keys, nil, nil
	}
	return &keys, d.built.etag, nil
}
