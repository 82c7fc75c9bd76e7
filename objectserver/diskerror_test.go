package objectserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// A body write that fills the disk is a *PathError from the write, not a
// diskfile error: it must still answer 507 (issue 9), not 500.
func TestDiskErrorNoSpaceIs507(t *testing.T) {
	s := &Server{}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		rec := httptest.NewRecorder()
		err := fmt.Errorf("writing object: objcrypt: writing object: %w", &os.PathError{Op: "write", Path: "/srv/node/sda/tmp/tmp1", Err: errno})
		s.respond(&request{w: rec, log: zerolog.Nop(), device: "sda"}, diskFailed(err))
		if rec.Code != http.StatusInsufficientStorage {
			t.Errorf("%v: %d, want 507", errno, rec.Code)
		}
	}
}
