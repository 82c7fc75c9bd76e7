package objectserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// KeyIDHeader carries the project key id the front filter chose for the
// account in the path (ARCHITECTURE.md, "The key-id header").
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

// writeKey picks the project key for a PUT: the one named by the request's
// X-Arca-Key-Id, after checking with the key service that it belongs to the
// account's project, else the project's active key (requests made inside
// the proxy carry no header).
func (s *Server) writeKey(ctx context.Context, account string, h http.Header) (objcrypt.ProjectKey, error) {
	project, err := s.projectFor(account)
	if err != nil {
		return objcrypt.ProjectKey{}, err
	}
	id := strings.TrimSpace(h.Get(KeyIDHeader))
	if id == "" {
		k, err := s.keys.ActiveKey(ctx, project)
		if err != nil {
			return objcrypt.ProjectKey{}, fmt.Errorf("active key of project %s: %w", project, err)
		}
		id = k.ID
	}
	return s.material(ctx, project, id)
}

// readKey fetches the key an object was written with.
func (s *Server) readKey(ctx context.Context, account, keyID string) (objcrypt.ProjectKey, error) {
	project, err := s.projectFor(account)
	if err != nil {
		return objcrypt.ProjectKey{}, err
	}
	return s.material(ctx, project, keyID)
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
