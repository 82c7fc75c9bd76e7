package api

import (
	"bytes"
	"context"
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
