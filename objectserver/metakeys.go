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
// project key, then an AES-GCM cipher, a few per cent of a small request's
// CPU and a fifth of a small GET's allocated bytes when built per request.
// derivedKeys keeps one such cipher per project key, built once per
// key_cache_ttl.
//
// An entry is keyed by the key id and the identity of the material (a
// salted hash of it, not the material): the cache is only asked after the
// material was had from the key client, which honours key_cache_ttl and a
// destroy, so an entry serves only while its project key is served. It is
// dropped after key_cache_ttl anyway, so a cipher never outlives the key
// it comes from in the key client's cache; the cache is bounded. The
// derived bytes are wiped as soon as the cipher is built; the cipher's own
// AES key schedule (which Go's crypto/aes cannot zero) goes to the garbage
// collector when its entry is dropped: one per project key, where building
// one per request left one behind per request.
type derivedKeys[T any] struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	salt   [32]byte
	m      map[derivedRef]*derivedEntry[T]
	now    func() time.Time
	derive func(objcrypt.ProjectKey) ([]byte, error)
	// build makes the cipher of a derived key; the cipher must copy what
	// it keeps of the bytes (they are wiped), and be safe for concurrent
	// use.
	build func(keyID string, derived []byte) (T, error)
}

type derivedRef struct {
	id  string
	sum [sha256.Size]byte
}

type derivedEntry[T any] struct {
	cipher T
	at     time.Time
}

// derivedKeysMax bounds the entries: one per project key in use on the node.
const derivedKeysMax = 4096

func newDerivedKeys[T any](ttl time.Duration, derive func(objcrypt.ProjectKey) ([]byte, error), build func(string, []byte) (T, error)) *derivedKeys[T] {
	if ttl <= 0 {
		ttl = keyclient.DefaultMaterialTTL
	}
	c := &derivedKeys[T]{ttl: ttl, max: derivedKeysMax, m: map[derivedRef]*derivedEntry[T]{}, now: time.Now, derive: derive, build: build}
	_, _ = rand.Read(c.salt[:])
	return c
}

// get returns pk's cipher, derived and built once per key_cache_ttl.
func (c *derivedKeys[T]) get(pk objcrypt.ProjectKey) (T, error) {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write(pk.Key)
	ref := derivedRef{id: pk.ID}
	h.Sum(ref.sum[:0])
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[ref]; ok && now.Sub(e.at) < c.ttl {
		defer c.mu.Unlock()
		return e.cipher, nil
	}
	c.mu.Unlock()
	var zero T
	k, err := c.derive(pk)
	if err != nil {
		return zero, err
	}
	built, err := c.build(pk.ID, k)
	clear(k)
	if err != nil {
		return zero, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ref]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[ref] = &derivedEntry[T]{cipher: built, at: now}
	return built, nil
}

// evict drops the expired entries, or one entry when none is: the caller
// holds mu.
func (c *derivedKeys[T]) evict(now time.Time) {
	for ref, e := range c.m {
		if now.Sub(e.at) >= c.ttl {
			delete(c.m, ref)
		}
	}
	for ref := range c.m {
		if len(c.m) < c.max {
			return
		}
		delete(c.m, ref)
	}
}

// len is the number of entries (tests).
func (c *derivedKeys[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// metaKeys are the project keys' metadata keys (objcrypt.DeriveMetaKey).
type metaKeys = derivedKeys[*objcrypt.MetaKey]

func newMetaKeys(ttl time.Duration) *metaKeys {
	return newDerivedKeys(ttl, objcrypt.DeriveMetaKey, objcrypt.MetaKeyFrom)
}

// listingKeys are the ciphers of the project keys' listing keys
// (objcrypt.DeriveListingKey).
type listingKeys = derivedKeys[*objcrypt.ListingCipher]

func newListingKeys(ttl time.Duration) *listingKeys {
	return newDerivedKeys(ttl, objcrypt.DeriveListingKey, objcrypt.NewListingCipher)
}
