//go:build cgo

package hsm_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice/hsm"
)

// plant creates, with the token's PIN as someone holding it could, an AES
// key labelled as Arca's master keys, with a known value and the given
// attributes, whose id sorts after every key Arca makes.
func plant(t *testing.T, h *testenv.SoftHSM, id string, attrs ...*pkcs11.Attribute) {
	t.Helper()
	p := pkcs11.New(h.Library)
	var pe pkcs11.Error
	if err := p.Initialize(); err != nil && !(errors.As(err, &pe) && pe == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	for _, s := range slots {
		if info, err := p.GetTokenInfo(s); err == nil && info.Label == h.TokenLabel {
			slot = s
		}
	}
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.CloseSession(sh) }()
	if err := p.Login(sh, pkcs11.CKU_USER, h.PIN); err != nil && !(errors.As(err, &pe) && pe == pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatal(err)
	}
	tmpl := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, bytes.Repeat([]byte{0x41}, 32)),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, hsm.DefaultKeyLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}, attrs...)
	if _, err := p.CreateObject(sh, tmpl); err != nil {
		t.Fatal(err)
	}
}

// TestPlantedKeyRefused: a key labelled as Arca's master keys that was not
// generated in the token, or can leave it, is no master key. Someone who
// held the PIN once could plant one with a known value and the greatest
// id: it became the active key, new project KEKs were sealed under it
// and opened outside the token, even after the PIN was changed. The token
// now refuses to load such a set: a reload fails and keeps the keys it
// had, and nothing is sealed under the planted key.
func TestPlantedKeyRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		attrs []*pkcs11.Attribute
	}{
		{"extractable, not sensitive", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)}},
		{"imported, sensitive and not extractable", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := testenv.StartSoftHSM(t)
			tok := open(t, h)
			legit := generate(t, tok)
			planted := "hsm-99991231T235959.999999999Z"
			plant(t, h, planted, c.attrs...)
			err := tok.Reload()
			if err == nil || !strings.Contains(err.Error(), planted) {
				t.Fatalf("reload with a planted key: %v", err)
			}
			if got := tok.ActiveID(); got != legit {
				t.Fatalf("active key %q after the refused reload, want %q", got, legit)
			}
			id, _, err := tok.SealKEK(rand.Reader, "victim", bytes.Repeat([]byte{7}, 32))
			if err != nil || id != legit {
				t.Fatalf("a new KEK sealed by %q (%v), want %q", id, err, legit)
			}
			if _, err := hsm.Open(config(h)); err == nil {
				t.Fatal("a token holding a planted key opened")
			}
		})
	}
}
