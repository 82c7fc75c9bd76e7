package keyclient

import (
	"context"
	"errors"
	"time"
)

// Errors a Resolver returns, wrapped with context. Callers branch on them:
// ErrUnavailable becomes 503 (retry later), ErrDestroyed and ErrNotFound
// mean the data is unreadable for good or the key id is not the project's.
var (
	// ErrUnavailable: the key service cannot be reached (or answers 5xx)
	// and no unexpired cached answer exists.
	ErrUnavailable = errors.New("keyclient: key service unavailable")
	// ErrNotFound: the key does not exist for this project.
	ErrNotFound = errors.New("keyclient: key not found for project")
	// ErrDestroyed: the key existed but its material was destroyed.
	ErrDestroyed = errors.New("keyclient: key destroyed")
	// ErrDenied: the service credentials lack the role to read keys.
	ErrDenied = errors.New("keyclient: access to project keys denied")
)

// Key is a project key's identity and parameters.
type Key struct {
	ID        string
	ProjectID string
	// Algorithm is the crypto_protocol it was made for ("aes_128_cbc",
	// "aes_256_cbc"); BitLength its size.
	Algorithm string
	BitLength int
}

// Resolver is what the Swift-side parts need from the key service. The
// implementation in this package is Client; tests may use another.
type Resolver interface {
	// ActiveKey returns the project's active key, creating the project's
	// first key on demand.
	ActiveKey(ctx context.Context, projectID string) (Key, error)
	// KeyMaterial returns the raw bytes of a key of the project. The
	// caller must not modify or retain them beyond its use.
	KeyMaterial(ctx context.Context, projectID, keyID string) ([]byte, error)
}

// ActiveRefresher is implemented by resolvers that can bypass their cache
// of active key ids (Client does). A writer told of another key than its
// cached active one asks once more before choosing the key to write under.
type ActiveRefresher interface {
	// RefreshActiveKey returns the project's active key as the key
	// service says it now (rate-limited per project: MinActiveRefresh).
	RefreshActiveKey(ctx context.Context, projectID string) (Key, error)
}

var _ ActiveRefresher = (*Client)(nil)

// ActiveBounder is implemented by resolvers that say how long an active
// key id they return may be kept (Client does): never past the key
// service's destroy guard, so that a component keeping the id itself
// does not write under a key after it may have been destroyed.
type ActiveBounder interface {
	// ActiveKeyUntil is ActiveKey with the moment its answer expires.
	ActiveKeyUntil(ctx context.Context, projectID string) (Key, time.Time, error)
}

var _ ActiveBounder = (*Client)(nil)

// MaterialExpirer is implemented by resolvers that cache key material
// (Client does): what a caller derives from the bytes may be kept until
// the cached copy they come from expires, and no longer.
type MaterialExpirer interface {
	// KeyMaterialUntil is KeyMaterial with the time the cached copy of
	// the bytes expires.
	KeyMaterialUntil(ctx context.Context, projectID, keyID string) ([]byte, time.Time, error)
}

var _ MaterialExpirer = (*Client)(nil)
