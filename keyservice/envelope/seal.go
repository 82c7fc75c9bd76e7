package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of every key this package handles: master keys and
// project KEKs are AES-256 keys.
const KeySize = 32

// sealVersion prefixes every sealed value so the format can evolve.
const sealVersion byte = 1

const nonceSize = 12

// ErrOpen is returned when a sealed value does not authenticate: wrong key,
// wrong associated data, or tampering. The three are indistinguishable on
// purpose.
var ErrOpen = errors.New("envelope: sealed value does not authenticate")

// Seal encrypts plaintext with key (32 bytes) and binds it to aad. The result
// is version(1) || nonce(12) || ciphertext || tag(16).
func Seal(rand io.Reader, key, plaintext, aad []byte) ([]byte, error) {
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	return c.Seal(rand, plaintext, aad)
}

// Open authenticates and decrypts a value made by Seal with the same key and
// aad.
func Open(key, sealed, aad []byte) ([]byte, error) {
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	return c.Open(sealed, aad)
}

// Cipher is a key made ready for Seal and Open: its AES key schedule and
// GCM tables are computed once, where Seal and Open compute them on every
// call (a few microseconds and four allocations; arca-api seals or opens
// with a cached project KEK on every payload request). It holds no state
// that sealing or opening changes, so it is safe for concurrent use; the
// nonce is drawn afresh for every Seal, as Seal does.
type Cipher struct {
	aead cipher.AEAD
}

// NewCipher prepares key (32 bytes) for sealing and opening.
func NewCipher(key []byte) (*Cipher, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Cipher{aead: aead}, nil
}

// Seal is Seal with the cipher's key.
func (c *Cipher) Seal(rand io.Reader, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+c.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("envelope: reading nonce: %w", err)
	}
	return c.aead.Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

// Open is Open with the cipher's key.
func (c *Cipher) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+c.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	plain, err := c.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("envelope: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return aead, nil
}

// Associated data for each kind of sealed value. The prefixes keep kinds
// apart; the NUL separators keep "ab"+"c" apart from "a"+"bc".

// KEKAAD binds a project KEK to its project and sealing master key.
func KEKAAD(projectID, masterKeyID string) []byte {
	return []byte("arca/kek/v1\x00" + projectID + "\x00" + masterKeyID)
}

// SecretAAD binds a secret payload to its project and secret id.
func SecretAAD(projectID, secretID string) []byte {
	return []byte("arca/secret/v1\x00" + projectID + "\x00" + secretID)
}

// ProjectKeyAAD binds a project data key to its project and key id.
func ProjectKeyAAD(projectID, keyID string) []byte {
	return []byte("arca/project-key/v1\x00" + projectID + "\x00" + keyID)
}

// SealVersion and NonceSize describe Seal's format for a MasterKeys that
// performs the same AES-256-GCM inside an HSM (package hsm): its sealed KEKs
// are SealVersion || nonce(NonceSize) || ciphertext || tag(16).
const (
	SealVersion = sealVersion
	NonceSize   = nonceSize
)
