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
// bytes) is never served the cached key; entries go after the TTL and
// past the bound, their bytes wiped.
func TestMetaKeysCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newMetaKeys(time.Minute)
	c.now = func() time.Time { return now }
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
	var first *metaKeyEntry
	for _, e := range c.m {
		first = e
		break
	}
	now = now.Add(time.Minute)
	c.max = 2
	mustMetaKey(t, c, testKey("k3", 3))
	if !bytes.Equal(first.key, make([]byte, 32)) {
		t.Error("an expired entry's bytes were not wiped")
	}
	if c.len() != 1 {
		t.Fatalf("expired entries kept: %d", c.len())
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
