package objcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// ProjectKey is a project's key as the key service hands it out: raw key
// material (16 or 32 bytes) and the id it is known by. Objects record the
// id, never the material.
type ProjectKey struct {
	ID  string
	Key []byte
}

func (k ProjectKey) check() error {
	if len(k.Key) != 16 && len(k.Key) != 32 {
		return fmt.Errorf("%w: project key must be 16 or 32 bytes, got %d", ErrInvalid, len(k.Key))
	}
	if k.ID == "" || len(k.ID) > MaxKeyIDLen {
		return fmt.Errorf("%w: key id length %d not in [1, %d]", ErrInvalid, len(k.ID), MaxKeyIDLen)
	}
	return nil
}

func checkPath(path string) error {
	if path == "" || len(path) > MaxPathLen {
		return fmt.Errorf("%w: object path length %d not in [1, %d]", ErrInvalid, len(path), MaxPathLen)
	}
	return nil
}

// HKDF labels. Each key has its own label so no two uses share a key.
const (
	labelKEK = "arca objcrypt v1 key-encryption key"
	labelEnc = "arca objcrypt v1 segment cipher key "
	labelMAC = "arca objcrypt v1 segment mac key "
	labelAAD = "arca objcrypt v1 wrapped data key"
)

// wrapAAD binds a wrapped data key to the key id and the object path: the
// wrapped key, or the whole file, opens only where it was written.
func wrapAAD(keyID, path string) []byte {
	b := make([]byte, 0, len(labelAAD)+1+len(keyID)+2+len(path))
	b = append(b, labelAAD...)
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(path)))
	return append(b, path...)
}

// kekAEAD derives the key-encryption key from the project key. Deriving,
// rather than using the project key directly, gives AES-256-GCM a 32-byte
// key for 16-byte project keys too, and keeps the project key out of any
// other use.
func kekAEAD(pk ProjectKey) (cipher.AEAD, error) {
	kek, err := hkdf.Key(sha256.New, pk.Key, nil, labelKEK, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrapKey seals dataKey under pk for path, with a random nonce.
func wrapKey(pk ProjectKey, path string, dataKey []byte, rnd io.Reader) ([]byte, error) {
	aead, err := kekAEAD(pk)
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), wrappedLen)
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	return aead.Seal(out, out, dataKey, wrapAAD(pk.ID, path)), nil
}

// unwrapKey opens a wrapped data key. keyID is the id recorded with it; a
// mismatch with pk.ID is ErrWrongKey, before any cryptography.
func unwrapKey(pk ProjectKey, keyID, path string, wrapped []byte) ([]byte, error) {
	if err := pk.check(); err != nil {
		return nil, err
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if keyID != pk.ID {
		return nil, fmt.Errorf("%w: object key id %q, given %q", ErrWrongKey, keyID, pk.ID)
	}
	if len(wrapped) != wrappedLen {
		return nil, fmt.Errorf("%w: wrapped key is %d bytes", ErrKeyUnwrap, len(wrapped))
	}
	aead, err := kekAEAD(pk)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	dk, err := aead.Open(nil, wrapped[:ns], wrapped[ns:], wrapAAD(keyID, path))
	if err != nil {
		return nil, fmt.Errorf("%w: key %q, path %q", ErrKeyUnwrap, keyID, path)
	}
	return dk, nil
}

// Rewrap re-seals an object's data key under a new project key (key
// rotation) without touching the object data: store the returned key id and
// wrapped key in the object's metadata and pass them to NewReader through
// ReaderOptions. The data key itself does not change, so rewrapping moves
// trust to the new project key; it does not re-encrypt.
func Rewrap(m *Metadata, oldKey, newKey ProjectKey, path string, rnd io.Reader) error {
	if err := newKey.check(); err != nil {
		return err
	}
	dk, err := unwrapKey(oldKey, m.KeyID, path, m.WrappedKey)
	if err != nil {
		return err
	}
	if rnd == nil {
		rnd = defaultRand
	}
	w, err := wrapKey(newKey, path, dk, rnd)
	if err != nil {
		return err
	}
	m.KeyID, m.WrappedKey = newKey.ID, w
	return nil
}

// dataPRK is the HKDF-Extract of a data key (no salt). Every key of an
// object (SPEC.md: encryption, MAC, ETag and ETag MAC keys) is
// HKDF(data key, label) = HKDF-Expand(dataPRK, label): extracting once per
// object rather than once per key gives the same bytes for a quarter of
// the HMACs.
func dataPRK(dataKey []byte) ([]byte, error) {
	return hkdf.Extract(sha256.New, dataKey, nil)
}

// deriveKeysPRK derives the segment cipher key and MAC key from the data
// key's PRK. The algorithm is part of the label so the same data key under
// another algorithm gives unrelated keys.
func deriveKeysPRK(prk []byte, alg Algorithm) (enc, mac []byte, err error) {
	enc, err = hkdf.Expand(sha256.New, prk, labelEnc+alg.String(), alg.keyLen())
	if err != nil {
		return nil, nil, err
	}
	mac, err = hkdf.Expand(sha256.New, prk, labelMAC+alg.String(), 32)
	return enc, mac, err
}
