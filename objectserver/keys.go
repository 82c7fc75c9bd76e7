package objectserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// KeyIDHeader carries the project key id the front filter chose for the
// account in the path: a hint, never trusted to choose the key a write is
// stored under (docs/project-keys.md, docs/architecture.md).
const KeyIDHeader = "X-Arca-Key-Id"

// errNoProject: the account does not belong to an encrypted project (no
// configured reseller prefix matches it).
var errNoProject = errors.New("objectserver: account has no project to encrypt for")

// projectFor maps an account name to its project id by reseller prefix
// (AUTH_<project_id>).
func (s *Server) projectFor(account string) (string, error) {
	for _, p := range s.cfg.ResellerPrefixes {
		if rest, ok := strings.CutPrefix(account, p); ok && rest != "" {
			return rest, nil
		}
	}
	return "", fmt.Errorf("%w: %q", errNoProject, account)
}

// writeKey picks the project key for a PUT: the account's project's active
// key as this server knows it (its active-id cache, at most
// active_key_cache_ttl old), and only that. arca-api refuses to destroy a
// key deactivated less than its own active_key_cache_ttl ago, which the
// operator sets to at least ours, so a write acknowledged here is never
// under a key that could be destroyed already (docs/project-keys.md).
//
// X-Arca-Key-Id, the filter's choice, is only a hint: when it names another
// key, one of us has not seen a rotation yet (or the header is stale or
// forged), so the active id is asked for again past the cache, once, and
// the object is written under whatever is active then. Never under a key
// merely because the header names it, even a key of the project: that key
// may be deactivated, and then destroyed while the object is acknowledged.
func (s *Server) writeKey(ctx context.Context, account string, h http.Header) (objcrypt.ProjectKey, error) {
	project, err := s.projectFor(account)
	if err != nil {
		return objcrypt.ProjectKey{}, err
	}
	k, err := s.keys.ActiveKey(ctx, project)
	if err != nil {
		return objcrypt.ProjectKey{}, fmt.Errorf("active key of project %s: %w", project, err)
	}
	if hint := strings.TrimSpace(h.Get(KeyIDHeader)); hint != "" && hint != k.ID {
		if r, ok := s.keys.(keyclient.ActiveRefresher); ok {
			k, err = r.RefreshActiveKey(ctx, project)
			if err != nil {
				return objcrypt.ProjectKey{}, fmt.Errorf("active key of project %s (refreshed: %s names key %s): %w", project, KeyIDHeader, hint, err)
			}
		}
		if hint != k.ID {
			// Normal for up to the filter's active_key_cache_ttl after a
			// rotation; otherwise worth a look.
			s.log.Debug().Str("project_id", project).Str("hint_key_id", hint).Str("key_id", k.ID).
				Msg("X-Arca-Key-Id is not the project's active key: writing under the active key")
		}
	}
	return s.material(ctx, project, k.ID)
}

// errKeyRotated: the key a PUT was encrypted under stopped being the
// project's active key while the body streamed.
var errKeyRotated = errors.New("objectserver: the project key was rotated during the upload")

// confirmWriteKey runs just before a PUT is committed, that is before it
// can be acknowledged: the key the object was encrypted under must still be
// the project's active key as this server knows it. Then arca-api cannot
// have destroyed it yet (it waits its active_key_cache_ttl, at least ours,
// after a deactivation). An upload that outlived the rotation of its key is
// refused (503, the client retries under the new key) rather than stored
// under a key that may already be gone. The check is a cache hit nearly
// always; cached active ids only move forward, so a different cached id
// means the key was deactivated.
func (s *Server) confirmWriteKey(ctx context.Context, account, keyID string) error {
	project, err := s.projectFor(account)
	if err != nil {
		return err
	}
	k, err := s.keys.ActiveKey(ctx, project)
	if err != nil {
		return fmt.Errorf("confirming the active key of project %s: %w", project, err)
	}
	if k.ID != keyID {
		return fmt.Errorf("%w: written under %s, active now %s", errKeyRotated, keyID, k.ID)
	}
	return nil
}

// readKey fetches the key an object was written with.
func (s *Server) readKey(ctx context.Context, account, keyID string) (objcrypt.ProjectKey, error) {
	k, _, err := s.readKeyUntil(ctx, account, keyID)
	return k, err
}

// readKeyUntil is readKey with the time the key client's cached copy of
// the material expires: what is derived from it is kept no longer. A
// resolver that does not say (tests) gives now + key_cache_ttl.
func (s *Server) readKeyUntil(ctx context.Context, account, keyID string) (objcrypt.ProjectKey, time.Time, error) {
	project, err := s.projectFor(account)
	if err != nil {
		return objcrypt.ProjectKey{}, time.Time{}, err
	}
	me, ok := s.keys.(keyclient.MaterialExpirer)
	if !ok {
		k, err := s.material(ctx, project, keyID)
		return k, s.now().Add(s.dataKeys.ttl), err
	}
	raw, until, err := me.KeyMaterialUntil(ctx, project, keyID)
	if err != nil {
		return objcrypt.ProjectKey{}, time.Time{}, fmt.Errorf("key %s of project %s: %w", keyID, project, err)
	}
	return objcrypt.ProjectKey{ID: keyID, Key: append([]byte(nil), raw...)}, until, nil
}

func (s *Server) material(ctx context.Context, project, id string) (objcrypt.ProjectKey, error) {
	raw, err := s.keys.KeyMaterial(ctx, project, id)
	if err != nil {
		return objcrypt.ProjectKey{}, fmt.Errorf("key %s of project %s: %w", id, project, err)
	}
	// The resolver's bytes may be cached and shared: copy them.
	return objcrypt.ProjectKey{ID: id, Key: append([]byte(nil), raw...)}, nil
}

// keyErrorStatus maps a key or crypto failure to the status the proxy sees.
func keyErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, keyclient.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "key service unavailable"
	case errors.Is(err, errKeyRotated):
		return http.StatusServiceUnavailable, "the project key was rotated during the upload; retry"
	case errors.Is(err, keyclient.ErrDestroyed):
		return http.StatusGone, "the project key of this object was destroyed"
	case errors.Is(err, keyclient.ErrNotFound):
		return http.StatusForbidden, "key does not belong to the account's project"
	case errors.Is(err, keyclient.ErrDenied):
		return http.StatusServiceUnavailable, "object server may not read project keys"
	case errors.Is(err, errNoProject):
		return http.StatusForbidden, "account is not a project account"
	case errors.Is(err, objcrypt.ErrTampered):
		return http.StatusInternalServerError, "object data failed authentication"
	case errors.Is(err, objcrypt.ErrWrongKey), errors.Is(err, objcrypt.ErrKeyUnwrap):
		return http.StatusInternalServerError, "object key does not open"
	case errors.Is(err, objcrypt.ErrUnsupported), errors.Is(err, objcrypt.ErrInvalid):
		return http.StatusInternalServerError, "unsupported or invalid encrypted object"
	}
	return http.StatusInternalServerError, "internal error"
}
