package objectserver

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"opendev.org/x/arca/objcrypt"
)

func testKey(id string, b byte) objcrypt.ProjectKey {
	return objcrypt.ProjectKey{ID: id, Key: bytes.Repeat([]byte{b}, 32)}
}

// TestMetaKeysCache: a cached metadata key seals and opens as a derived
// one; other material under the same id (a key service answering other
// bytes) is never served the cached key; the derived bytes are wiped once
// the cipher is built; entries go after the TTL (derived again) and past
// the bound.
func TestMetaKeysCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newMetaKeys(time.Minute)
	c.now = func() time.Time { return now }
	var derived [][]byte
	derive := c.derive
	c.derive = func(pk objcrypt.ProjectKey) ([]byte, error) {
		k, err := derive(pk)
		derived = append(derived, k)
		return k, err
	}
	const path = "/AUTH_p/c/o"
	k1 := testKey("k1", 1)
	sealed, err := mustMetaKey(t, c, k1).SealMetaValue(path, "X-Object-Meta-A", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := objcrypt.NewMetaKey(k1)
	if v, err := direct.OpenMetaValue(path, "X-Object-Meta-A", sealed); err != nil || v != "v" {
		t.Fatalf("the cached key is not the derived one: %q %v", v, err)
	}
	if v, err := mustMetaKey(t, c, k1).OpenMetaValue(path, "X-Object-Meta-A", sealed); err != nil || v != "v" || c.len() != 1 {
		t.Fatalf("second get: %q %v, %d entries", v, err, c.len())
	}
	// the same id, other material: its own key, which does not open k1's value
	if _, err := mustMetaKey(t, c, testKey("k1", 2)).OpenMetaValue(path, "X-Object-Meta-A", sealed); err == nil || c.len() != 2 {
		t.Fatalf("other material under the same id opened the value (%d entries)", c.len())
	}
	if len(derived) != 2 {
		t.Fatalf("%d derivations for two keys, each asked for once or twice", len(derived))
	}
	for i, k := range derived {
		if !bytes.Equal(k, make([]byte, 32)) {
			t.Errorf("derivation %d: the derived bytes were kept, not wiped", i)
		}
	}
	now = now.Add(time.Minute)
	c.max = 2
	mustMetaKey(t, c, testKey("k3", 3))
	if c.len() != 1 {
		t.Fatalf("expired entries kept: %d", c.len())
	}
	if mustMetaKey(t, c, k1); len(derived) != 4 {
		t.Fatalf("an expired key was served without being derived again (%d derivations)", len(derived))
	}
	for i := range 10 {
		mustMetaKey(t, c, testKey(fmt.Sprint("n", i), byte(10+i)))
	}
	if c.len() > 2 {
		t.Fatalf("%d entries past the bound of 2", c.len())
	}
}

func mustMetaKey(t *testing.T, c *metaKeys, pk objcrypt.ProjectKey) *objcrypt.MetaKey {
	t.Helper()
	mk, err := c.get(pk)
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

// TestListingKeysCache: a cached listing cipher seals as the derived one
// (a token it seals opens under the key derived directly); other material
// under the same id gets its own key; entries go after the TTL; an id a
// listing token cannot carry is refused, not kept.
func TestListingKeysCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newListingKeys(time.Minute)
	c.now = func() time.Time { return now }
	const path = "/AUTH_p/c/o"
	k1 := testKey("k1", 1)
	seal := func(pk objcrypt.ProjectKey) string {
		t.Helper()
		lc, err := c.get(pk)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := lc.Seal(path, "etag", "d41d8cd98f00b204e9800998ecf8427e", nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	lk, err := objcrypt.DeriveListingKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := objcrypt.NewListingCipher(k1.ID, lk)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // derived, then cached
		if v, err := direct.Open(seal(k1), path, "etag"); err != nil || v != "d41d8cd98f00b204e9800998ecf8427e" || c.len() != 1 {
			t.Fatalf("get %d: the listing key is not the derived one: %q %v (%d entries)", i, v, err, c.len())
		}
	}
	if _, err := direct.Open(seal(testKey("k1", 2)), path, "etag"); err == nil || c.len() != 2 {
		t.Fatalf("other material under the same id sealed under k1's listing key (%d entries)", c.len())
	}
	now = now.Add(time.Minute)
	c.max = 2
	seal(testKey("k3", 3))
	if c.len() != 1 {
		t.Fatalf("expired entries kept: %d entries", c.len())
	}
	if _, err := c.get(testKey("bad id", 4)); err == nil || c.len() != 1 {
		t.Fatalf("an id a token cannot carry: %v, %d entries", err, c.len())
	}
}
