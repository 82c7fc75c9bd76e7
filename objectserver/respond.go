package objectserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
)

// Handlers answer success themselves and return every other outcome as an
// error; respond is the one place that turns an error into Swift's answer.
// An answer decided by the protocol is a *swiftError. An internal failure
// is wrapped by where it happened (diskFailed, keyFailed, bodyFailed),
// because its origin decides the answer: a context deadline is 408 on the
// disk and 503 at the key service, and an unknown error is 500 with
// Swift's plain body on the disk and "internal error" from the keys.

// swiftError is an answer the protocol decides: a status, the body
// (http.StatusText when empty) and headers to set first.
type swiftError struct {
	status int
	msg    string
	header [][2]string
	empty  bool // no body at all, as swob's failed conditions
}

func (e *swiftError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("objectserver: answer %d", e.status)
	}
	return fmt.Sprintf("objectserver: answer %d: %s", e.status, e.msg)
}

// answer is the error for a status and body.
func answer(status int, msg string) *swiftError { return &swiftError{status: status, msg: msg} }

// with adds a header to set on the answer.
func (e *swiftError) with(name, value string) *swiftError {
	e.header = append(e.header, [2]string{name, value})
	return e
}

// origin is where an internal failure happened.
type origin int

const (
	fromDisk origin = iota + 1
	fromKeys        // the key service, or objcrypt with a key
	fromBody        // reading the request body into a file
)

// failure is an internal error and its origin.
type failure struct {
	origin origin
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func diskFailed(err error) error { return &failure{origin: fromDisk, err: err} }
func keyFailed(err error) error  { return &failure{origin: fromKeys, err: err} }
func bodyFailed(err error) error { return &failure{origin: fromBody, err: err} }

// respond writes the answer for a handler's error (nothing for nil).
func (s *Server) respond(req *request, err error) {
	if err == nil {
		return
	}
	var se *swiftError
	if errors.As(err, &se) {
		for _, h := range se.header {
			req.w.Header().Set(h[0], h[1])
		}
		if se.empty {
			emptyAnswer(req.w, se.status)
			return
		}
		textError(req.w, req.r, se.status, se.msg)
		return
	}
	var f *failure
	if !errors.As(err, &f) {
		f = &failure{origin: fromDisk, err: err}
	}
	switch f.origin {
	case fromKeys:
		s.keyError(req, f.err)
	case fromBody:
		s.bodyError(req, f.err)
	default:
		s.diskError(req, f.err)
	}
}

// diskError answers a diskfile error.
func (s *Server) diskError(req *request, err error) {
	switch {
	case errors.Is(err, diskfile.ErrDeviceUnavailable):
		textError(req.w, req.r, http.StatusInsufficientStorage, insufficientStorage(req.device))
	case errors.Is(err, diskfile.ErrNoSpace), errors.Is(err, diskfile.ErrXattrNotSupported),
		// a body write that fills the disk fails in objcrypt's or io.Copy's
		// write, outside diskfile's own mapping: still 507, as Swift answers
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		req.log.Error().Err(err).Str("device", req.device).Msg("disk error")
		// naming the device, as Swift's HTTPInsufficientStorage(drive=device)
		textError(req.w, req.r, http.StatusInsufficientStorage, insufficientStorage(req.device))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		textError(req.w, req.r, http.StatusRequestTimeout, "")
	default:
		req.log.Error().Err(err).Str("device", req.device).Msg("disk error")
		textError(req.w, req.r, http.StatusInternalServerError, "")
	}
}

// keyError answers a key or crypto error and logs it (never key material).
func (s *Server) keyError(req *request, err error) {
	code, msg := keyErrorStatus(err)
	ev := req.log.Warn()
	if code >= 500 {
		ev = req.log.Error()
	}
	ev.Err(err).Str("path", "/"+req.account+"/"+req.container+"/"+req.object).Int("status", code).Msg(msg)
	s.countKeyError(req, err)
	textError(req.w, req.r, code, msg)
}

// bodyError answers a failure while a PUT body was read and stored: the
// Writer's refusal is a key or crypto error, a file's is the disk's, and
// anything else is the client's.
func (s *Server) bodyError(req *request, err error) {
	if errors.Is(err, objcrypt.ErrInvalid) || errors.Is(err, objcrypt.ErrClosed) {
		s.keyError(req, err)
		return
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		s.diskError(req, fmt.Errorf("writing object: %w", err))
		return
	}
	code, msg := bodyErrorStatus(err)
	req.log.Warn().Err(err).Int("status", code).Msg("reading PUT body failed")
	textError(req.w, req.r, code, msg)
}

// notFound is the answer for a missing object: 404, or 412 to If-Match: *,
// with the tombstone's time when there is one.
func notFound(req *request, tombstone *diskfile.Timestamp) *swiftError {
	a := answer(http.StatusNotFound, "")
	if strings.TrimSpace(req.r.Header.Get("If-Match")) == "*" {
		a = &swiftError{status: http.StatusPreconditionFailed, empty: true}
	}
	if tombstone != nil {
		return a.with("X-Backend-Timestamp", tombstone.Internal())
	}
	return a
}
