package keyservice

import (
	"errors"
	"net/http"
)

// Sentinel errors callers branch on. Service methods wrap them with context
// (fmt.Errorf("...: %w", ErrNotFound)); the HTTP layer maps them to statuses
// with StatusOf and to the Barbican error body.
var (
	ErrNotFound        = errors.New("not found")
	ErrForbidden       = errors.New("forbidden")
	ErrConflict        = errors.New("conflict")
	ErrInvalid         = errors.New("invalid request")
	ErrTooLarge        = errors.New("request entity too large")
	ErrUnsupportedType = errors.New("unsupported media type")
	ErrNotAcceptable   = errors.New("not acceptable")
	ErrGone            = errors.New("gone")
	ErrUnavailable     = errors.New("service unavailable")
)

// Error is an error with a message meant for the API client. The message is
// what Barbican would put in the "description" field; Kind is one of the
// sentinels above so that errors.Is keeps working.
type Error struct {
	Kind        error
	Description string
}

func (e *Error) Error() string { return e.Description }

// Unwrap lets errors.Is(err, ErrNotFound) see through an *Error.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf builds a client-facing error of the given kind.
func Errorf(kind error, description string) error {
	return &Error{Kind: kind, Description: description}
}

// StatusOf returns the HTTP status for an error built on the sentinels, and
// 500 for anything else: an error we did not classify is our fault.
func StatusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupportedType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrNotAcceptable):
		return http.StatusNotAcceptable
	case errors.Is(err, ErrGone):
		return http.StatusGone
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
