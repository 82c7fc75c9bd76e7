//go:build !cgo

package hsm_test

import (
	"errors"
	"testing"

	"opendev.org/x/arca/keyservice/hsm"
)

// TestNoCgo: a build without cgo refuses the PKCS#11 backend, saying why.
func TestNoCgo(t *testing.T) {
	if _, err := hsm.Open(hsm.Config{Library: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t"}); !errors.Is(err, hsm.ErrNoCgo) {
		t.Fatalf("Open without cgo: %v", err)
	}
}
