package objectserver

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// Every HEAD and GET of an encrypted object opens its user metadata under
// its project key's metadata key, an HKDF of the project key: derived per
// request it was a few per cent of a small GET's CPU. metaKeys keeps the
// derived bytes per project key, so a request only builds the cipher.
//
// An entry is keyed by the key id and the identity of the material (a
// salted hash of it, not the material): the cache is only asked after the
// material was had from the key client, which honours key_cache_ttl and a
// destroy, so an entry serves only while its project key is served. It is
// dropped after key_cache_ttl anyway, so derived bytes never outlive the
// key they come from in the key client's cache; the cache is bounded, and
// the bytes of every entry dropped are wiped.
type metaKeys struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	salt [32]byte
	m    map[metaKeyRef]*metaKeyEntry
	now  func() time.Time
}

type metaKeyRef struct {
	id  string
	sum [sha256.Size]byte
}

type metaKeyEntry struct {
	key []byte
	at  time.Time
}

// metaKeysMax bounds the entries: one per project key in use on the node.
const metaKeysMax = 4096

func newMetaKeys(ttl time.Duration) *metaKeys {
	if ttl <= 0 {
		ttl = keyclient.DefaultMaterialTTL
	}
	c := &metaKeys{ttl: ttl, max: metaKeysMax, m: map[metaKeyRef]*metaKeyEntry{}, now: time.Now}
	_, _ = rand.Read(c.salt[:])
	return c
}

// get returns pk's metadata key, derived once per key_cache_ttl.
func (c *metaKeys) get(pk objcrypt.ProjectKey) (*objcrypt.MetaKey, error) {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write(pk.Key)
	ref := metaKeyRef{id: pk.ID}
	h.Sum(ref.sum[:0])
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[ref]; ok && now.Sub(e.at) < c.ttl {
		mk, err := objcrypt.MetaKeyFrom(pk.ID, e.key)
		c.mu.Unlock()
		return mk, err
	}
	c.mu.Unlock()
	k, err := objcrypt.DeriveMetaKey(pk)
	if err != nil {
		return nil, err
	}
	mk, err := objcrypt.MetaKeyFrom(pk.ID, k)
	if err != nil {
		clear(k)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[ref]; ok {
		clear(old.key)
	} else if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[ref] = &metaKeyEntry{key: k, at: now}
	return mk, nil
}

// evict drops the expired entries, or one entry when none is: the caller
// holds mu.
func (c *metaKeys) evict(now time.Time) {
	for ref, e := range c.m {
		if now.Sub(e.at) >= c.ttl {
			clear(e.key)
			delete(c.m, ref)
		}
	}
	for ref, e := range c.m {
		if len(c.m) < c.max {
			return
		}
		clear(e.key)
		delete(c.m, ref)
	}
}

// len is the number of entries (tests).
func (c *metaKeys) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
