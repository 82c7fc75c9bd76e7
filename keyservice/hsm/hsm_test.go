package hsm_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/hsm"
)

func open(t *testing.T, h *testenv.SoftHSM) *hsm.Token {
	t.Helper()
	tok, err := hsm.Open(hsm.Config{Library: h.Library, TokenLabel: h.TokenLabel, PIN: h.PIN, RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

func TestTokenUnplugged(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tok := open(t, h)
	if _, err := tok.GenerateKey(time.Now()); err != nil {
		t.Fatal(err)
	}
	id, sealed, err := tok.SealKEK(rand.Reader, "p", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	replug := h.Unplug(t)
	_, err = tok.OpenKEK("p", id, sealed)
	t.Logf("unplugged: %v", err)
	_, _, err = tok.SealKEK(rand.Reader, "p", bytes.Repeat([]byte{7}, 32))
	t.Logf("unplugged seal: %v (unavailable %v)", err, errors.Is(err, keyservice.ErrUnavailable))
	replug()
	time.Sleep(100 * time.Millisecond)
	kek, err := tok.OpenKEK("p", id, sealed)
	t.Logf("replugged: %x %v", kek, err)
	_ = envelope.KeySize
}
