package objcrypt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Known answers for listing ETags, computed independently with Python's
// cryptography package (HKDF-SHA256 and AES-256-GCM) from SPEC.md's
// "Listing ETags": the listing key from the project key, and the token for a
// fixed nonce (the first 12 bytes Seal reads from its randomness).
var listingKATs = []struct {
	name                      string
	projectKey, listKey       string
	keyID, path, field, value string
	nonce                     []byte
	token                     string
}{
	{"32-byte project key, hash of an empty object",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"8e766a0542ba4c668ff76842c36249974b4d0f9a58ad9ab2ec77f4bcfb2ff3d0",
		"3f2a9c1e-4b5d-4e6f-8a7b-9c0d1e2f3a4b", "/AUTH_demo/photos/cat.jpg", "etag", "d41d8cd98f00b204e9800998ecf8427e",
		[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		"arca1.3f2a9c1e-4b5d-4e6f-8a7b-9c0d1e2f3a4b.AAECAwQFBgcICQoLK7SSqhlBEMf647PSgKodPZXQpwoMzL443WR2NvMatLOLeQwGP0LTIj0wMIf5NZUR"},
	{"16-byte project key, UTF-8 path, slo_etag",
		"00112233445566778899aabbccddeeff",
		"ca6ad30e72182752470ee2063dc3050083b0eec8a006522dde635d2ff8840f5c",
		"k1", "/AUTH_p/c/été ; x", "slo_etag", "0123456789abcdef0123456789abcdef",
		[]byte{100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111},
		"arca1.k1.ZGVmZ2hpamtsbW5ve1c3dit3r3tTZ37h07YbYp86EFAwlYnLI--bDIfFoU0ruGoGtRF94lHqE0HzwLvm"},
}

func TestListingKAT(t *testing.T) {
	for _, v := range listingKATs {
		t.Run(v.name, func(t *testing.T) {
			pk, _ := hex.DecodeString(v.projectKey)
			lk, err := DeriveListingKey(ProjectKey{ID: v.keyID, Key: pk})
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(lk) != v.listKey {
				t.Fatalf("listing key %x, want %s", lk, v.listKey)
			}
			c, err := NewListingCipher(v.keyID, lk)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Seal(v.path, v.field, v.value, bytes.NewReader(v.nonce))
			if err != nil {
				t.Fatal(err)
			}
			if tok != v.token {
				t.Fatalf("token\n %s\nwant\n %s", tok, v.token)
			}
			got, err := c.Open(v.token, v.path, v.field)
			if err != nil || got != v.value {
				t.Fatalf("Open = %q, %v; want %q", got, err, v.value)
			}
			if id, ok := ListingTokenKeyID(v.token); !ok || id != v.keyID {
				t.Fatalf("ListingTokenKeyID = %q, %v", id, ok)
			}
		})
	}
}

// The listing key is not the key-encryption key nor the project key: the
// filter, which holds listing keys, can open no wrapped data key.
func TestListingKeyIsItsOwn(t *testing.T) {
	pk := ProjectKey{ID: "k", Key: bytes.Repeat([]byte{7}, 32)}
	lk, err := DeriveListingKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(lk, pk.Key) {
		t.Fatal("listing key is the project key")
	}
	if _, err := unwrapKey(ProjectKey{ID: "k", Key: lk}, "k", "/a/c/o", mustWrap(t, pk)); !errors.Is(err, ErrKeyUnwrap) {
		t.Fatalf("a listing key opened a wrapped data key: %v", err)
	}
	if _, err := DeriveListingKey(ProjectKey{ID: "k", Key: []byte("short")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short project key: %v", err)
	}
}

func mustWrap(t *testing.T, pk ProjectKey) []byte {
	t.Helper()
	w, err := wrapKey(pk, "/a/c/o", bytes.Repeat([]byte{1}, 32), detRand(1))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func testListingCipher(t testing.TB, id string, fill byte) *ListingCipher {
	t.Helper()
	lk, err := DeriveListingKey(ProjectKey{ID: id, Key: bytes.Repeat([]byte{fill}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewListingCipher(id, lk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flipSealedBit flips one bit of a token's sealed bytes and re-encodes
// them, as an attacker editing a container database would: flipping a
// bit of the base64 text instead can make a character outside the
// alphabet or non-zero padding bits (refused as ErrInvalid, not
// ErrTampered), depending on the random nonce.
func flipSealedBit(t *testing.T, tok string) string {
	t.Helper()
	cut := strings.LastIndexByte(tok, '.')
	raw, err := base64.RawURLEncoding.DecodeString(tok[cut+1:])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	return tok[:cut+1] + base64.RawURLEncoding.EncodeToString(raw)
}

// A sealed value opens only for its object, its field, its key id and its
// key material, and only unaltered.
func TestListingTamper(t *testing.T) {
	c := testListingCipher(t, "key-1", 1)
	const path, field, value = "/AUTH_p/c/o", "etag", "0123456789abcdef0123456789abcdef"
	tok, err := c.Seal(path, field, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tok, ";,\"= \t") || !IsListingToken(tok) {
		t.Fatalf("token %q holds a character Swift's parameter parsing splits on", tok)
	}
	other := testListingCipher(t, "key-1", 2) // same id, other material
	renamed := testListingCipher(t, "key-2", 1)
	flip := flipSealedBit(t, tok)
	cases := []struct {
		name      string
		c         *ListingCipher
		tok, p, f string
		want      error
	}{
		{"another object", c, tok, "/AUTH_p/c/o2", field, ErrTampered},
		{"another container", c, tok, "/AUTH_p/d/o", field, ErrTampered},
		{"another field", c, tok, path, "slo_etag", ErrTampered},
		{"other material", other, tok, path, field, ErrTampered},
		{"another key id", renamed, tok, path, field, ErrWrongKey},
		{"key id edited", renamed, strings.Replace(tok, "key-1", "key-2", 1), path, field, ErrTampered},
		{"bit flipped", c, flip, path, field, ErrTampered},
		{"truncated", c, tok[:len(tok)-4], path, field, ErrTampered},
		{"plain MD5", c, value, path, field, ErrInvalid},
		{"padding added", c, tok + "=", path, field, ErrInvalid},
		{"no body", c, "arca1.key-1.", path, field, ErrInvalid},
		{"no key id", c, "arca1..AAAA", path, field, ErrInvalid},
	}
	for _, tc := range cases {
		got, err := tc.c.Open(tc.tok, tc.p, tc.f)
		if !errors.Is(err, tc.want) || got != "" {
			t.Errorf("%s: Open = %q, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if got, err := c.Open(tok, path, field); err != nil || got != value {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	// Two seals of one value differ (random nonces): equal ETags do not
	// show as equal tokens in a container database.
	if tok2, _ := c.Seal(path, field, value, nil); tok2 == tok {
		t.Fatal("two seals gave the same token")
	}
}

func TestListingInvalidArguments(t *testing.T) {
	c := testListingCipher(t, "k", 1)
	for name, f := range map[string]func() error{
		"empty value": func() error { _, err := c.Seal("/a/c/o", "etag", "", nil); return err },
		"long value": func() error {
			_, err := c.Seal("/a/c/o", "etag", strings.Repeat("x", MaxListingValue+1), nil)
			return err
		},
		"empty path":      func() error { _, err := c.Seal("", "etag", "v", nil); return err },
		"empty field":     func() error { _, err := c.Seal("/a/c/o", "", "v", nil); return err },
		"bad key id":      func() error { _, err := NewListingCipher("a.b", make([]byte, 32)); return err },
		"short key":       func() error { _, err := NewListingCipher("k", make([]byte, 16)); return err },
		"open empty path": func() error { _, err := c.Open("arca1.k.AAAA", "", "etag"); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := c.Seal("/a/c/o", "etag", strings.Repeat("x", MaxListingValue), nil); err != nil {
		t.Fatalf("longest value: %v", err)
	}
}

// FuzzListingOpen: whatever the token, Open does not panic, and it yields
// a value only for a token that Seal made for that path and field (the
// seeds), never for a mutation of one.
func FuzzListingOpen(f *testing.F) {
	c := testListingCipher(f, "key-1", 1)
	const path, value = "/AUTH_p/c/o", "d41d8cd98f00b204e9800998ecf8427e"
	sealed := map[string]bool{}
	for i, field := range []string{"etag", "slo_etag"} {
		tok, err := c.Seal(path, field, value, detRand(uint64(i)))
		if err != nil {
			f.Fatal(err)
		}
		sealed[tok+"\x00"+field] = true
		f.Add(tok, field)
	}
	f.Add("arca1.key-1.", "etag")
	f.Add(value, "etag")
	f.Fuzz(func(t *testing.T, tok, field string) {
		got, err := c.Open(tok, path, field)
		if err != nil {
			if got != "" {
				t.Fatalf("error %v with a value %q", err, got)
			}
			return
		}
		if !sealed[tok+"\x00"+field] || got != value {
			t.Fatalf("forged token %q opened to %q for field %q", tok, got, field)
		}
		_, _ = ListingTokenKeyID(tok)
	})
}
