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
// its project key's metadata key, and every PUT and POST that updates a
// container seals the listing ETag under its listing key: both HKDFs of the
// project key, a few per cent of a small request's CPU when derived per
// request. derivedKeys keeps one such derivation's bytes per project key,
// so a request only builds the cipher.
//
// An entry is keyed by the key id and the identity of the material (a
// salted hash of it, not the material): the cache is only asked after the
// material was had from the key client, which honours key_cache_ttl and a
// destroy, so an entry serves only while its project key is served. It is
// dropped after key_cache_ttl anyway, so derived bytes never outlive the
// key they come from in the key client's cache; the cache is bounded, and
// the bytes of every entry dropped are wiped.
type derivedKeys struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	salt   [32]byte
	m      map[derivedRef]*derivedEntry
	now    func() time.Time
	derive func(objcrypt.ProjectKey) ([]byte, error)
}

type derivedRef struct {
	id  string
	sum [sha256.Size]byte
}

type derivedEntry struct {
	key []byte
	at  time.Time
}

// derivedKeysMax bounds the entries: one per project key in use on the node.
const derivedKeysMax = 4096

func newDerivedKeys(ttl time.Duration, derive func(objcrypt.ProjectKey) ([]byte, error)) *derivedKeys {
	if ttl <= 0 {
		ttl = keyclient.DefaultMaterialTTL
	}
	c := &derivedKeys{ttl: ttl, max: derivedKeysMax, m: map[derivedRef]*derivedEntry{}, now: time.Now, derive: derive}
	_, _ = rand.Read(c.salt[:])
	return c
}

// with calls use with pk's derived bytes, derived once per key_cache_ttl,
// and returns its error. use runs under the cache's lock, so that no
// eviction wipes the bytes meanwhile; it must not keep them.
func (c *derivedKeys) with(pk objcrypt.ProjectKey, use func(k []byte) error) error {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write(pk.Key)
	ref := derivedRef{id: pk.ID}
	h.Sum(ref.sum[:0])
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[ref]; ok && now.Sub(e.at) < c.ttl {
		defer c.mu.Unlock()
		return use(e.key)
	}
	c.mu.Unlock()
	k, err := c.derive(pk)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := use(k); err != nil {
		clear(k)
		return err
	}
	if old, ok := c.m[ref]; ok {
		clear(old.key)
	} else if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[ref] = &derivedEntry{key: k, at: now}
	return nil
}

// evict drops the expired entries, or one entry when none is: the caller
// holds mu.
func (c *derivedKeys) evict(now time.Time) {
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
func (c *derivedKeys) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// metaKeys are the project keys' metadata keys (objcrypt.DeriveMetaKey).
type metaKeys struct{ *derivedKeys }

func newMetaKeys(ttl time.Duration) *metaKeys {
	return &metaKeys{newDerivedKeys(ttl, objcrypt.DeriveMetaKey)}
}

// get returns pk's metadata key.
func (c *metaKeys) get(pk objcrypt.ProjectKey) (mk *objcrypt.MetaKey, err error) {
	err = c.with(pk, func(k []byte) error {
		mk, err = objcrypt.MetaKeyFrom(pk.ID, k)
		return err
	})
	return mk, err
}

// listingKeys are the project keys' listing keys
// (objcrypt.DeriveListingKey).
type listingKeys struct{ *derivedKeys }

func newListingKeys(ttl time.Duration) *listingKeys {
	return &listingKeys{newDerivedKeys(ttl, objcrypt.DeriveListingKey)}
}

// get returns the cipher of pk's listing key.
func (c *listingKeys) get(pk objcrypt.ProjectKey) (lc *objcrypt.ListingCipher, err error) {
	err = c.with(pk, func(k []byte) error {
		lc, err = objcrypt.NewListingCipher(pk.ID, k)
		return err
	})
	return lc, err
}
