package objcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// What describes an object is encrypted too (SPEC.md, "Metadata"): its
// ETag under keys derived from the object's data key, written once with
// the data; its user metadata under a key derived from the project key,
// because a fast-POST's metadata can outlive or precede the data it
// applies to under replication and so cannot depend on one data key.

// HKDF labels and AAD labels of the metadata encryption.
const (
	labelETagKey   = "arca objcrypt v1 etag key"
	labelETagMAC   = "arca objcrypt v1 etag mac key"
	labelETagAAD   = "arca objcrypt v1 etag"
	labelMetaKey   = "arca objcrypt v1 metadata key"
	labelMetaValue = "arca objcrypt v1 metadata value"
	labelSysmeta   = "arca objcrypt v1 sysmeta value"
)

// MetaValuePrefix marks an encrypted metadata value; what follows is
// unpadded standard base64 of nonce(12) || ciphertext || tag(16).
const MetaValuePrefix = "arca1:"

const (
	gcmNonceLen = 12
	gcmTagLen   = 16
	md5Len      = 16
	// sealedETagLen is nonce || AES-GCM(16-byte MD5) || tag.
	sealedETagLen = gcmNonceLen + md5Len + gcmTagLen
	// MaxMetaNameLen bounds a metadata name bound into a value's AAD.
	MaxMetaNameLen = 1<<16 - 1
)

// ErrMetadataTampered is a kind of ErrTampered: an encrypted ETag or
// metadata value that does not open under its key, path and name (altered,
// moved to another object or name, or not an encrypted value at all where
// one was recorded). errors.Is(ErrMetadataTampered, ErrTampered) holds.
var ErrMetadataTampered = &kindError{msg: "objcrypt: metadata failed authentication", parent: ErrTampered}

// b64 is strict: a value has one encoding, so a changed trailing bit is not
// the same value (non-strict decoding ignores the last character's unused
// bits, and a tampered encoding would open).
var b64 = base64.RawStdEncoding.Strict()

// ETagKeys are the keys an object's ETag is sealed and MACed with, derived
// from its data key. Get them from the Writer that wrote the object, the
// Reader that opened it (ReaderOptions.ETagKeys), or OpenETagKeys.
type ETagKeys struct {
	aead cipher.AEAD
	mac  []byte
}

func newETagKeys(dataKey []byte) (*ETagKeys, error) {
	prk, err := dataPRK(dataKey)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	return newETagKeysPRK(prk)
}

// newETagKeysPRK derives the ETag keys from the object's dataPRK.
func newETagKeysPRK(prk []byte) (*ETagKeys, error) {
	ek, err := hkdf.Expand(sha256.New, prk, labelETagKey, 32)
	if err != nil {
		return nil, err
	}
	mk, err := hkdf.Expand(sha256.New, prk, labelETagMAC, 32)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(ek)
	clear(ek)
	if err != nil {
		return nil, err
	}
	return &ETagKeys{aead: aead, mac: mk}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// OpenETagKeys unwraps the data key of the object m describes (with the
// project key and its path, as NewReader does) and derives its ETag keys
// without opening the data: for a caller that has the metadata only (the
// rewrap job, a PUT's If-None-Match against the object it replaces).
func OpenETagKeys(m *Metadata, pk ProjectKey, path string) (*ETagKeys, error) {
	dk, err := unwrapKey(pk, m.KeyID, path, m.WrappedKey)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	return newETagKeys(dk)
}

func etagAAD(path string) []byte {
	return append([]byte(labelETagAAD), path...)
}

// EncryptETag seals an object's ETag, a lower-case hex MD5, for path. The
// result is unpadded standard base64 of nonce(12) || ciphertext(16) ||
// tag(16): 59 characters.
func (k *ETagKeys) EncryptETag(etag, path string, rnd io.Reader) (string, error) {
	raw, err := hex.DecodeString(etag)
	if err != nil || len(raw) != md5Len || strings.ToLower(etag) != etag {
		return "", fmt.Errorf("%w: ETag is not a lower-case hex MD5", ErrInvalid)
	}
	if err := checkPath(path); err != nil {
		return "", err
	}
	if rnd == nil {
		rnd = defaultRand
	}
	out := make([]byte, gcmNonceLen, sealedETagLen)
	if _, err := io.ReadFull(rnd, out); err != nil {
		return "", fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	out = k.aead.Seal(out, out, raw, etagAAD(path))
	return b64.EncodeToString(out), nil
}

// OpenETag opens a sealed ETag for path and returns it as lower-case hex;
// anything that does not open (altered, another object's, malformed) is
// ErrMetadataTampered.
func (k *ETagKeys) OpenETag(sealed, path string) (string, error) {
	var buf [sealedETagLen + 2]byte
	if b64.DecodedLen(len(sealed)) != sealedETagLen {
		return "", fmt.Errorf("%w: sealed ETag is %d characters", ErrMetadataTampered, len(sealed))
	}
	n, err := decodeBase64(b64, buf[:], sealed)
	if err != nil || n != sealedETagLen {
		return "", fmt.Errorf("%w: sealed ETag is not base64", ErrMetadataTampered)
	}
	var pt [md5Len]byte
	if _, err := k.aead.Open(pt[:0], buf[:gcmNonceLen], buf[gcmNonceLen:n], etagAAD(path)); err != nil {
		return "", fmt.Errorf("%w: ETag of %q", ErrMetadataTampered, path)
	}
	return hex.EncodeToString(pt[:]), nil
}

// SealSysmeta seals the value of a middleware's sysmeta that holds an MD5
// (SLO's ETag, the container-update override ETag) under the object's ETag
// key, bound to the path and the name (SPEC.md, "Middleware sysmeta"): as
// SealMetaValue's form, with the label "arca objcrypt v1 sysmeta value"
// and an empty key id. Under the data key, it goes with the object through
// a rewrap unchanged.
func (k *ETagKeys) SealSysmeta(path, name, value string, rnd io.Reader) (string, error) {
	aad, err := labelledAAD(labelSysmeta, "", path, name)
	if err != nil {
		return "", err
	}
	return sealValue(k.aead, aad, value, rnd)
}

// OpenSysmeta opens what SealSysmeta sealed for the same path and name.
func (k *ETagKeys) OpenSysmeta(path, name, sealed string) (string, error) {
	aad, err := labelledAAD(labelSysmeta, "", path, name)
	if err != nil {
		return "", err
	}
	return openValue(k.aead, aad, path, name, sealed)
}

// ETagMAC is the MAC conditional requests compare with: unpadded standard
// base64 of HMAC-SHA256(etag MAC key, etag), 43 characters. The object
// server stores it for the ETag and computes it for each ETag a client
// sends, exactly as sent: equal MACs mean equal strings, as Swift compares.
func (k *ETagKeys) ETagMAC(etag string) string {
	var sum [sha256.Size]byte
	return b64.EncodeToString(k.macSum(sum[:0], etag))
}

func (k *ETagKeys) macSum(dst []byte, etag string) []byte {
	m := hmac.New(sha256.New, k.mac)
	_, _ = io.WriteString(m, etag)
	return m.Sum(dst)
}

// MatchETagMAC reports, in constant time in the stored MAC, whether etag
// is the ETag stored as mac (ETagMAC's form). A malformed stored MAC
// matches nothing.
func (k *ETagKeys) MatchETagMAC(mac, etag string) bool {
	var stored [sha256.Size + 2]byte
	if b64.DecodedLen(len(mac)) != sha256.Size {
		return false // and Decode below cannot overrun stored
	}
	n, err := decodeBase64(b64, stored[:], mac)
	if err != nil || n != sha256.Size {
		return false
	}
	var sum [sha256.Size]byte
	return subtle.ConstantTimeCompare(stored[:n], k.macSum(sum[:0], etag)) == 1
}

// MetaKey seals and opens user metadata values under a project key.
type MetaKey struct {
	id   string
	aead cipher.AEAD
}

// NewMetaKey derives the metadata key of a project key.
func NewMetaKey(pk ProjectKey) (*MetaKey, error) {
	k, err := DeriveMetaKey(pk)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return MetaKeyFrom(pk.ID, k)
}

// DeriveMetaKey returns the bytes of a project key's metadata key (HKDF,
// SPEC.md "User metadata"), for a caller that keeps them to skip the
// derivation on the next request (and wipes them when it drops them).
func DeriveMetaKey(pk ProjectKey) ([]byte, error) {
	if err := pk.check(); err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, pk.Key, nil, labelMetaKey, 32)
}

// MetaKeyFrom is the metadata key of project key id from the bytes
// DeriveMetaKey returned for it; k is not kept.
func MetaKeyFrom(id string, k []byte) (*MetaKey, error) {
	if len(k) != 32 {
		return nil, fmt.Errorf("%w: metadata key of %d bytes", ErrInvalid, len(k))
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	return &MetaKey{id: id, aead: aead}, nil
}

// ID is the id of the project key the metadata key comes from: the id to
// record with the values it seals.
func (k *MetaKey) ID() string { return k.id }

// metaAAD binds a value to the key id, the object path and the metadata
// name (lower-cased: header names are case-insensitive).
func metaAAD(keyID, path, name string) ([]byte, error) {
	return labelledAAD(labelMetaValue, keyID, path, name)
}

// labelledAAD is label || u8 len(keyID) || keyID || u16 len(path) || path
// || u16 len(name) || lower-case(name).
func labelledAAD(label, keyID, path, name string) ([]byte, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if name == "" || len(name) > MaxMetaNameLen {
		return nil, fmt.Errorf("%w: metadata name length %d", ErrInvalid, len(name))
	}
	b := make([]byte, 0, len(label)+1+len(keyID)+4+len(path)+len(name))
	b = append(b, label...)
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(path)))
	b = append(b, path...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b, nil
}

// SealMetaValue encrypts the value of metadata name of the object at path:
// MetaValuePrefix then unpadded standard base64 of nonce(12) ||
// ciphertext || tag(16).
func (k *MetaKey) SealMetaValue(path, name, value string, rnd io.Reader) (string, error) {
	aad, err := metaAAD(k.id, path, name)
	if err != nil {
		return "", err
	}
	return sealValue(k.aead, aad, value, rnd)
}

// sealValue is MetaValuePrefix || b64(nonce(12) || AEAD-Seal(value, aad)).
func sealValue(aead cipher.AEAD, aad []byte, value string, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = defaultRand
	}
	raw := make([]byte, gcmNonceLen, gcmNonceLen+len(value)+gcmTagLen)
	if _, err := io.ReadFull(rnd, raw); err != nil {
		return "", fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	raw = aead.Seal(raw, raw, []byte(value), aad)
	out := make([]byte, len(MetaValuePrefix)+b64.EncodedLen(len(raw)))
	copy(out, MetaValuePrefix)
	b64.Encode(out[len(MetaValuePrefix):], raw)
	return string(out), nil
}

// OpenMetaValue opens a value SealMetaValue wrote for the same path and
// name under this key. A value without MetaValuePrefix, malformed, altered,
// or sealed for another object, name or key is ErrMetadataTampered.
func (k *MetaKey) OpenMetaValue(path, name, sealed string) (string, error) {
	aad, err := metaAAD(k.id, path, name)
	if err != nil {
		return "", err
	}
	return openValue(k.aead, aad, path, name, sealed)
}

// openValue reverses sealValue; anything that does not open is
// ErrMetadataTampered.
func openValue(aead cipher.AEAD, aad []byte, path, name, sealed string) (string, error) {
	enc, ok := strings.CutPrefix(sealed, MetaValuePrefix)
	if !ok {
		return "", fmt.Errorf("%w: metadata %s is not an encrypted value", ErrMetadataTampered, name)
	}
	raw, err := decodeBase64String(b64, enc)
	if err != nil || len(raw) < gcmNonceLen+gcmTagLen {
		return "", fmt.Errorf("%w: metadata %s is malformed", ErrMetadataTampered, name)
	}
	pt, err := aead.Open(raw[gcmNonceLen:gcmNonceLen], raw[:gcmNonceLen], raw[gcmNonceLen:], aad)
	if err != nil {
		return "", fmt.Errorf("%w: metadata %s of %q", ErrMetadataTampered, name, path)
	}
	return string(pt), nil
}

// SealedMetaLen is the length of SealMetaValue's result for a value of n
// bytes: for sizing against a file system's extended-attribute budget.
func SealedMetaLen(n int) int {
	return len(MetaValuePrefix) + b64.EncodedLen(gcmNonceLen+n+gcmTagLen)
}
