package objcrypt

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (with %w and context), so callers branch with errors.Is and map them
// to a status: ErrTampered and ErrTruncated mean the stored bytes are not what
// was written (fail closed, never serve them); ErrWrongKey and ErrKeyUnwrap
// mean the caller brought the wrong key or the object sits at another path;
// ErrUnsupported means a newer or unknown format; ErrInvalid means a caller
// mistake (bad options, bad range).
var (
	// ErrTampered: a MAC did not verify, or the layout is inconsistent.
	ErrTampered = errors.New("objcrypt: object data failed authentication")

	// ErrTruncated is a kind of ErrTampered: errors.Is(ErrTruncated,
	// ErrTampered) holds, so callers that only care about integrity need one
	// check, while logs can still say "truncated".
	ErrTruncated = &kindError{msg: "objcrypt: object data truncated", parent: ErrTampered}

	// ErrWrongKey: the key id in the object differs from the key supplied.
	ErrWrongKey = errors.New("objcrypt: object was written with another project key")

	// ErrKeyUnwrap: the wrapped data key did not open under this project key
	// and object path (wrong key material, object moved, or wrapped key
	// altered; AES-GCM cannot tell these apart and neither do we).
	ErrKeyUnwrap = errors.New("objcrypt: cannot unwrap data key")

	// ErrUnsupported: unknown magic, version, algorithm or decorator.
	ErrUnsupported = errors.New("objcrypt: unsupported format")

	// ErrInvalid: invalid argument (options, key length, range).
	ErrInvalid = errors.New("objcrypt: invalid argument")

	// ErrClosed: use of a Writer or Reader after Close.
	ErrClosed = errors.New("objcrypt: stream closed")
)

// kindError is a sentinel that is also a kind of another sentinel.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }
