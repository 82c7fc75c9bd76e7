package keystone

import (
	"errors"
	"net/http"
)

var (
	// ErrInvalidToken: the token is missing, malformed, expired, revoked or not
	// scoped to a project or domain. Answer 401 with WWW-Authenticate.
	ErrInvalidToken = errors.New("keystone: invalid token")
	// ErrUnavailable: Keystone could not give an answer (unreachable, timeout,
	// 5xx, or it refused the service user's credentials). Answer 503.
	ErrUnavailable = errors.New("keystone: token validation unavailable")
	// ErrNotServiceToken: an X-Service-Token is valid but carries none of the
	// service roles while service_token_roles_required is set. Answer 401.
	ErrNotServiceToken = errors.New("keystone: service token lacks the service roles")
)

// Error is what Validate returns: Kind is one of the sentinel errors above (so
// errors.Is works on it), Reason a short text safe to log, Err the cause.
// Neither ever contains the token: Keystone's error bodies can quote it, so
// they are not kept.
type Error struct {
	Kind   error
	Reason string
	Err    error
}

func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// HTTPStatus is the status a server should answer with.
func (e *Error) HTTPStatus() int {
	if errors.Is(e.Kind, ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

func invalid(reason string) error { return &Error{Kind: ErrInvalidToken, Reason: reason} }

func unavailable(reason string, err error) error {
	return &Error{Kind: ErrUnavailable, Reason: reason, Err: err}
}
