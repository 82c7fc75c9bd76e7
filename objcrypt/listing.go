package objcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Listing ETags. A container listing shows each object's ETag; the
// container servers keep it in their databases. So that those databases hold
// no plaintext MD5, the object server seals the ETag (and the MD5-like
// values Swift's middlewares add to it) under a listing key derived from
// the project key, and the front filter opens them for clients. The listing
// key opens listing ETags and nothing else: it is what the filter holds,
// never the project key. SPEC.md, "Listing ETags", is the byte-level
// description.
const (
	labelListingKey = "arca objcrypt v1 listing etag key"
	labelListingAAD = "arca objcrypt v1 listing etag"

	// ListingTokenPrefix starts every sealed listing value.
	ListingTokenPrefix = "arca1."

	// ListingKeyLen is the length of a listing key.
	ListingKeyLen = 32

	// MaxListingValue bounds a sealed value: an ETag with the parameters
	// Swift's middlewares add to it is well under this.
	MaxListingValue = 2048

	// MaxListingField bounds the field name bound into a token.
	MaxListingField = 255

	listingNonceLen = 12
	listingTagLen   = 16
)

// DeriveListingKey derives a project key's listing key.
func DeriveListingKey(pk ProjectKey) ([]byte, error) {
	if err := pk.check(); err != nil {
		return nil, err
	}
	k, err := hkdf.Key(sha256.New, pk.Key, nil, labelListingKey, ListingKeyLen)
	if err != nil {
		return nil, fmt.Errorf("objcrypt: deriving the listing key: %w", err)
	}
	return k, nil
}

// ListingCipher seals and opens listing values under one listing key. It
// is safe for concurrent use.
type ListingCipher struct {
	keyID string
	aead  cipher.AEAD
}

// NewListingCipher returns the cipher of the listing key listKey, derived
// from the project key keyID (DeriveListingKey).
func NewListingCipher(keyID string, listKey []byte) (*ListingCipher, error) {
	if keyID == "" || len(keyID) > MaxKeyIDLen || !tokenSafeID(keyID) {
		return nil, fmt.Errorf("%w: listing key id %q", ErrInvalid, keyID)
	}
	if len(listKey) != ListingKeyLen {
		return nil, fmt.Errorf("%w: listing key must be %d bytes, got %d", ErrInvalid, ListingKeyLen, len(listKey))
	}
	b, err := aes.NewCipher(listKey)
	if err != nil {
		return nil, fmt.Errorf("objcrypt: listing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("objcrypt: listing cipher: %w", err)
	}
	return &ListingCipher{keyID: keyID, aead: aead}, nil
}

// KeyID is the id of the project key the listing key comes from.
func (c *ListingCipher) KeyID() string { return c.keyID }

// tokenSafeID: key ids travel in clear inside tokens, between '.'
// separators, in Swift header parameters: letters, digits, '-' and '_'
// only (what the key service's ids are).
func tokenSafeID(id string) bool {
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// listingAAD binds a sealed value to its key id, the object's path and the
// field it was sealed for, so it opens only there.
func listingAAD(keyID, path, field string) []byte {
	b := make([]byte, 0, len(labelListingAAD)+1+len(keyID)+2+len(path)+1+len(field))
	b = append(b, labelListingAAD...)
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(path)))
	b = append(b, path...)
	b = append(b, byte(len(field)))
	return append(b, field...)
}

func checkListingArgs(path, field string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if field == "" || len(field) > MaxListingField {
		return fmt.Errorf("%w: listing field length %d not in [1, %d]", ErrInvalid, len(field), MaxListingField)
	}
	return nil
}

// Seal seals value, the field field of the object at path, with a random
// nonce from rnd (crypto/rand when nil). The token is ASCII without ';',
// ',', '"', '=' or spaces, so it can stand for a value in Swift's header
// parameters: ListingTokenPrefix, the key id, '.', and the base64url (no
// padding) of nonce || ciphertext || tag.
func (c *ListingCipher) Seal(path, field, value string, rnd io.Reader) (string, error) {
	if err := checkListingArgs(path, field); err != nil {
		return "", err
	}
	if value == "" || len(value) > MaxListingValue {
		return "", fmt.Errorf("%w: listing value length %d not in [1, %d]", ErrInvalid, len(value), MaxListingValue)
	}
	if rnd == nil {
		rnd = defaultRand
	}
	raw := make([]byte, listingNonceLen, listingNonceLen+len(value)+listingTagLen)
	if _, err := io.ReadFull(rnd, raw); err != nil {
		return "", fmt.Errorf("objcrypt: reading randomness: %w", err)
	}
	raw = c.aead.Seal(raw, raw, []byte(value), listingAAD(c.keyID, path, field))
	var b strings.Builder
	b.Grow(len(ListingTokenPrefix) + len(c.keyID) + 1 + base64.RawURLEncoding.EncodedLen(len(raw)))
	b.WriteString(ListingTokenPrefix)
	b.WriteString(c.keyID)
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(raw))
	return b.String(), nil
}

// Open opens a token Seal made for the field field of the object at path.
// A token of another key id is ErrWrongKey; one that is not a token,
// ErrInvalid; one that does not open (altered, another object or field,
// another key's material), ErrTampered.
func (c *ListingCipher) Open(token, path, field string) (string, error) {
	if err := checkListingArgs(path, field); err != nil {
		return "", err
	}
	keyID, body, err := splitListingToken(token)
	if err != nil {
		return "", err
	}
	if keyID != c.keyID {
		return "", fmt.Errorf("%w: listing value of key %q, given %q", ErrWrongKey, keyID, c.keyID)
	}
	raw, err := decodeBase64String(base64.RawURLEncoding, body)
	if err != nil || len(raw) < listingNonceLen+listingTagLen+1 {
		return "", fmt.Errorf("%w: listing value is not a sealed value", ErrInvalid)
	}
	pt, err := c.aead.Open(nil, raw[:listingNonceLen], raw[listingNonceLen:], listingAAD(keyID, path, field))
	if err != nil {
		return "", fmt.Errorf("%w: listing value of %q does not open", ErrTampered, path)
	}
	return string(pt), nil
}

// ListingTokenKeyID returns the key id a sealed listing value names, and
// whether value looks like one at all (values written before listings
// were sealed, or by a plain Swift, do not).
func ListingTokenKeyID(value string) (string, bool) {
	id, _, err := splitListingToken(value)
	return id, err == nil
}

// IsListingToken reports whether value starts like a sealed listing value.
func IsListingToken(value string) bool { return strings.HasPrefix(value, ListingTokenPrefix) }

// maxTokenLen is the longest token Seal makes.
var maxTokenLen = len(ListingTokenPrefix) + MaxKeyIDLen + 1 +
	base64.RawURLEncoding.EncodedLen(listingNonceLen+MaxListingValue+listingTagLen)

func splitListingToken(token string) (keyID, body string, err error) {
	rest, ok := strings.CutPrefix(token, ListingTokenPrefix)
	if !ok || len(token) > maxTokenLen {
		return "", "", fmt.Errorf("%w: not a sealed listing value", ErrInvalid)
	}
	keyID, body, ok = strings.Cut(rest, ".")
	if !ok || keyID == "" || len(keyID) > MaxKeyIDLen || !tokenSafeID(keyID) || body == "" {
		return "", "", fmt.Errorf("%w: not a sealed listing value", ErrInvalid)
	}
	return keyID, body, nil
}
