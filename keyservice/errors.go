package keyservice

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on: the kinds of error the service reports.
// Service methods wrap them with context (fmt.Errorf("...: %w",
// ErrNotFound)); KindOf names the kind of any error, and the HTTP edge (package
// api) maps kinds to statuses and to the Barbican error body.
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

// kinds lists the sentinels in the order KindOf tries them: an error that
// wraps several (a conflict found while the database was failing, say) is
// of the first kind it matches.
var kinds = []error{
	ErrNotFound, ErrForbidden, ErrConflict, ErrInvalid, ErrTooLarge,
	ErrUnsupportedType, ErrNotAcceptable, ErrGone, ErrUnavailable,
}

// KindOf returns the sentinel err is built on, or nil for an error no one
// classified (nil as well): such an error is an internal one, our fault.
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

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

// Errorf builds a client-facing error of the given kind whose description
// is formatted as by fmt.Sprintf (go vet checks the format).
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Description: fmt.Sprintf(format, args...)}
}
