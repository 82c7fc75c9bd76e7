package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/keyservice"
)

// A request its client abandoned is recorded as 499 at info level, not as
// a server error; the same cancellation while the client still waits is
// the server's fault and stays a 500.
func TestErrorStatusOfCancellation(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantStatus int
		wantLevel  string
	}{
		{"client went away", canceled, fmt.Errorf("listing secrets: %w", context.Canceled), statusClientClosedRequest, `"level":"info"`},
		{"cancelled inside the server", context.Background(), fmt.Errorf("listing secrets: %w", context.Canceled), http.StatusInternalServerError, `"level":"error"`},
		{"client went away during an outage", canceled, fmt.Errorf("get: %w", keyservice.ErrUnavailable), http.StatusServiceUnavailable, `"level":"warn"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{log: zerolog.New(&logs)}
			req := httptest.NewRequest(http.MethodGet, "/v1/secrets", nil).WithContext(tt.ctx)
			rec := httptest.NewRecorder()
			s.httpErrorHandler(tt.err, echo.New().NewContext(req, rec))
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if !strings.Contains(logs.String(), tt.wantLevel) {
				t.Errorf("log %q lacks %s", logs.String(), tt.wantLevel)
			}
		})
	}
}

// TestStatusOfKinds: each kind of service error, wrapped or not, maps to
// its status; nil is 200 and an unclassified error 500.
func TestStatusOfKinds(t *testing.T) {
	for kind, want := range map[error]int{
		keyservice.ErrNotFound: 404, keyservice.ErrForbidden: 403, keyservice.ErrConflict: 409,
		keyservice.ErrInvalid: 400, keyservice.ErrTooLarge: 413, keyservice.ErrUnsupportedType: 415,
		keyservice.ErrNotAcceptable: 406, keyservice.ErrGone: 410, keyservice.ErrUnavailable: 503,
	} {
		if got := statusOf(fmt.Errorf("context: %w", kind)); got != want {
			t.Errorf("statusOf(wrapped %v) = %d, want %d", kind, got, want)
		}
		if got := statusOf(keyservice.Errorf(kind, "described %d", 1)); got != want {
			t.Errorf("statusOf(Errorf(%v)) = %d, want %d", kind, got, want)
		}
	}
	if got := statusOf(nil); got != 200 {
		t.Errorf("statusOf(nil) = %d", got)
	}
	if got := statusOf(errors.New("boom")); got != 500 {
		t.Errorf("statusOf(unclassified) = %d", got)
	}
	// A conflict found while the database failed is a conflict.
	if got := statusOf(fmt.Errorf("%w: %w", keyservice.ErrUnavailable, keyservice.ErrConflict)); got != 409 {
		t.Errorf("statusOf(unavailable and conflict) = %d, want 409", got)
	}
}
