package objcrypt

import (
	"crypto/rand"
	"testing"
)

// TestLineBreaksDoNotOpen: Go's base64 decoder skips '\r' and '\n' even
// in strict mode, so a sealed value with a line break inserted would
// decode to the same bytes and open. Every sealed form refuses it.
func TestLineBreaksDoNotOpen(t *testing.T) {
	const path = "/AUTH_p/c/o"
	pk := ProjectKey{ID: "key-1", Key: make([]byte, 32)}
	brk := func(s string) string { return s[:len(s)/2] + "\n" + s[len(s)/2:] }

	ek, err := newETagKeys(make([]byte, dataKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	const etag = "d41d8cd98f00b204e9800998ecf8427e"
	sealed, err := ek.EncryptETag(etag, path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ek.OpenETag(brk(sealed), path); err == nil {
		t.Error("a sealed ETag with a line break opened")
	}
	if ek.MatchETagMAC(brk(ek.ETagMAC(etag)), etag) {
		t.Error("an ETag MAC with a line break matched")
	}

	mk, err := NewMetaKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	const name = "X-Object-Sysmeta-Arca-Meta"
	mv, err := mk.SealMetaValue(path, name, "value", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk.OpenMetaValue(path, name, brk(mv)); err == nil {
		t.Error("a sealed metadata value with a line break opened")
	}

	lk, err := DeriveListingKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := NewListingCipher(pk.ID, lk)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := lc.Seal(path, "etag", etag, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Open(brk(tok), path, "etag"); err == nil {
		t.Error("a listing token with a line break opened")
	}
	// and the unbroken forms open: the breaks, not the values, are refused
	if v, err := lc.Open(tok, path, "etag"); err != nil || v != etag {
		t.Errorf("listing token: %q, %v", v, err)
	}
	if v, err := mk.OpenMetaValue(path, name, mv); err != nil || v != "value" {
		t.Errorf("metadata value: %q, %v", v, err)
	}
}
