package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// ErrUnauthenticated marks a request without valid credentials (401).
var ErrUnauthenticated = errors.New("unauthenticated")

// statusClientClosedRequest is what the access log and metrics record when
// the client went away before the answer (nginx's and Swift's 499): no one
// receives it, and it is not the server's error.
const statusClientClosedRequest = 499

// errorBody is Barbican's error document. barbicanclient prints
// "title: description" and fails on bodies without a title.
type errorBody struct {
	Code        int    `json:"code"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// httpErrorHandler renders every error in Barbican's format. Internal errors
// are logged with the request id and answered without detail.
func (s *Server) httpErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, description := s.classify(err, c)
	if status == http.StatusUnauthorized {
		if challenge := s.authn.Challenge(); challenge != "" {
			c.Response().Header().Set("WWW-Authenticate", challenge)
		}
	}
	body := errorBody{Code: status, Title: titleOf(status), Description: description}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := c.JSON(status, body); werr != nil {
		s.log.Debug().Err(werr).Msg("writing error response")
	}
}

func (s *Server) classify(err error, c echo.Context) (int, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, "The resource could not be found."
		case http.StatusMethodNotAllowed:
			return he.Code, "The method is not allowed for the requested URL."
		case http.StatusRequestEntityTooLarge:
			return he.Code, "Provided information too large to process."
		}
		if he.Code < 500 {
			if msg, ok := he.Message.(string); ok {
				return he.Code, msg
			}
			return he.Code, http.StatusText(he.Code)
		}
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		s.log.Info().Str("request_id", requestID(c)).Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).Msg("client closed the request")
		return statusClientClosedRequest, "The client closed the request."
	}
	if errors.Is(err, ErrUnauthenticated) {
		return http.StatusUnauthorized, describe(err, "The request you have made requires authentication.")
	}
	status := statusOf(err)
	if status >= 500 {
		event := s.log.Error()
		if status == http.StatusServiceUnavailable {
			event = s.log.Warn()
		}
		event.Err(err).Str("request_id", requestID(c)).Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).Msg("request failed")
		if status == http.StatusServiceUnavailable {
			return status, "The key service is temporarily unavailable; retry later."
		}
		return http.StatusInternalServerError, "The server has either erred or is incapable of performing the requested operation."
	}
	return status, describe(err, http.StatusText(status)+".")
}

// describe returns the client-facing description of err: the message of a
// keyservice.Error, or fallback for anything else (never an internal detail).
func describe(err error, fallback string) string {
	var ke *keyservice.Error
	if errors.As(err, &ke) {
		return ke.Description
	}
	return fallback
}

// titleOf returns the title webob gives each status (Barbican's titles).
func titleOf(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "Request Entity Too Large"
	case http.StatusInternalServerError:
		return "Internal Server Error"
	case statusClientClosedRequest:
		return "Client Closed Request"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

func invalid(description string) error {
	return &keyservice.Error{Kind: keyservice.ErrInvalid, Description: description}
}

// kindStatus maps the service's kinds of error to HTTP statuses.
var kindStatus = map[error]int{
	keyservice.ErrNotFound:        http.StatusNotFound,
	keyservice.ErrForbidden:       http.StatusForbidden,
	keyservice.ErrConflict:        http.StatusConflict,
	keyservice.ErrInvalid:         http.StatusBadRequest,
	keyservice.ErrTooLarge:        http.StatusRequestEntityTooLarge,
	keyservice.ErrUnsupportedType: http.StatusUnsupportedMediaType,
	keyservice.ErrNotAcceptable:   http.StatusNotAcceptable,
	keyservice.ErrGone:            http.StatusGone,
	keyservice.ErrUnavailable:     http.StatusServiceUnavailable,
}

// statusOf returns the HTTP status of an error of the service's kinds
// (keyservice.KindOf), 200 for nil and 500 for anything else: an error no
// one classified is our fault.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if status, ok := kindStatus[keyservice.KindOf(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}
