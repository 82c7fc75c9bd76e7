package objectserver

import (
	"crypto/sha256"
	"sync"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// Every GET and HEAD of an encrypted object unwraps its data key (an HKDF
// of the project key, AES-GCM) and derives its segment and ETag keys (an
// HKDF-Extract and four HKDF-Expands): about a tenth of a small GET's CPU.
// dataKeys keeps the derived keys of the objects read recently
// (objcrypt.DataKeys), so that a hot object's GET derives nothing.
//
// The bound (docs/trust-model.md, "Derived keys in memory"):
//   - an entry is asked for only after the project key's material was had
//     from the key client (openCrypt's readKey), which honours
//     key_cache_ttl and a destroy: a destroyed key stops reads within the
//     same key_cache_ttl as without this cache, and an entry never opens
//     an object while its project key is not served;
//   - an entry is keyed by objcrypt.DataKeysRef, a hash of the material,
//     the key id, the object path, the wrapped key and the algorithm:
//     another material for the same id, a rewrapped object, or a wrapped
//     key moved to another path finds nothing (and objcrypt.NewReader
//     checks the binding again before it uses the keys);
//   - an entry expires no later than the key client's cached copy of the
//     material it was derived from (keyclient.MaterialExpirer), nor
//     key_cache_ttl after it was derived, and its bytes are wiped when it
//     is dropped or replaced;
//   - at most dataKeysMax entries, about 2.2 KiB each: the keys and the
//     ciphers built from them once (objcrypt.DataKeys), which every GET of
//     the object shares instead of building its own.
type dataKeys struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[[sha256.Size]byte]*dataKeyEntry
	now func() time.Time
}

type dataKeyEntry struct {
	keys    *objcrypt.DataKeys
	expires time.Time
}

// dataKeysMax bounds the cached objects: about 18 MiB.
const dataKeysMax = 8192

func newDataKeys(ttl time.Duration) *dataKeys {
	if ttl <= 0 {
		ttl = keyclient.DefaultMaterialTTL
	}
	return &dataKeys{ttl: ttl, max: dataKeysMax, m: map[[sha256.Size]byte]*dataKeyEntry{}, now: time.Now}
}

// get returns the caller's own copy of the keys of the object (path,
// wrapped under pk as keyID, alg); the caller wipes it. pk must come from
// the key client just now, and until is when the key client's copy of it
// expires: keys derived now are kept until then at the latest. When the
// keys do not open (wrong key, altered wrapped key), get returns nil:
// objcrypt.NewReader then fails as it would have, with its own error and
// after its own checks of the file.
func (c *dataKeys) get(pk objcrypt.ProjectKey, until time.Time, keyID, path string, wrapped []byte, alg objcrypt.Algorithm) *objcrypt.DataKeys {
	ref := objcrypt.DataKeysRef(pk, keyID, path, wrapped, alg)
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[ref]; ok {
		if now.Before(e.expires) {
			k := e.keys.Clone()
			c.mu.Unlock()
			return k
		}
		e.keys.Wipe()
		delete(c.m, ref)
	}
	c.mu.Unlock()
	k, err := objcrypt.OpenDataKeys(pk, keyID, path, wrapped, alg)
	if err != nil {
		return nil
	}
	expires := now.Add(c.ttl)
	if until.Before(expires) {
		expires = until
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[ref]; ok {
		old.keys.Wipe()
		delete(c.m, ref)
	}
	if !now.Before(expires) {
		return k // the material's copy expires now: used once, not kept
	}
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[ref] = &dataKeyEntry{keys: k.Clone(), expires: expires}
	return k
}

// evict drops the expired entries, or one entry when none is: the caller
// holds mu.
func (c *dataKeys) evict(now time.Time) {
	for ref, e := range c.m {
		if !now.Before(e.expires) {
			e.keys.Wipe()
			delete(c.m, ref)
		}
	}
	for ref, e := range c.m {
		if len(c.m) < c.max {
			return
		}
		e.keys.Wipe()
		delete(c.m, ref)
	}
}

// len is the number of entries, expired ones included (tests).
func (c *dataKeys) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
