//go:build cgo

package hsm_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"opendev.org/x/arca/internal/testenv"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/envelope/envelopetest"
	"opendev.org/x/arca/keyservice/hsm"
)

func config(h *testenv.SoftHSM) hsm.Config {
	return hsm.Config{Library: h.Library, TokenLabel: h.TokenLabel, PIN: h.PIN, RetryInterval: 50 * time.Millisecond}
}

func open(t *testing.T, h *testenv.SoftHSM) *hsm.Token {
	t.Helper()
	tok, err := hsm.Open(config(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

func generate(t *testing.T, tok *hsm.Token) string {
	t.Helper()
	id, err := tok.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTokenConformance(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tok := open(t, h)
	first := generate(t, tok)
	envelopetest.Run(t, tok)
	kek := bytes.Repeat([]byte{9}, envelope.KeySize)
	_, sealed, err := tok.SealKEK(rand.Reader, "p", kek)
	if err != nil {
		t.Fatal(err)
	}
	// A rotation: the new key is active, the old one still opens its KEKs,
	// and a second connection (another arca-api) sees both.
	second := generate(t, tok)
	if tok.ActiveID() != second || second <= first {
		t.Fatalf("active = %q after rotating from %q to %q", tok.ActiveID(), first, second)
	}
	envelopetest.Run(t, tok)
	other := open(t, h)
	if got, err := other.OpenKEK("p", first, sealed); err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if other.ActiveID() != second {
		t.Fatalf("another connection sees active %q, want %q", other.ActiveID(), second)
	}
	// The file -> token migration: a chain opens the file's KEKs and seals
	// new ones in the token.
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk-file", Key: bytes.Repeat([]byte{3}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	chain := envelope.Chain{Primary: tok, Older: []envelope.MasterKeys{ring}}
	envelopetest.Run(t, chain)
	fid, fsealed, _ := ring.SealKEK(rand.Reader, "p", kek)
	if got, err := chain.OpenKEK("p", fid, fsealed); err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("chain cannot open the file's KEK: %v", err)
	}
}

// TestTokenKeysStayInside reads back what keeps the master key in the
// token, and asks the token for its value as an attacker with the PIN
// would: the token must refuse.
func TestTokenKeysStayInside(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tok := open(t, h)
	id := generate(t, tok)
	props, err := tok.Properties(id)
	if err != nil {
		t.Fatal(err)
	}
	want := hsm.KeyProperties{Sensitive: true, Extractable: false, AlwaysSensitive: true, NeverExtractable: true, Local: true}
	if props != want {
		t.Fatalf("key attributes %+v, want %+v", props, want)
	}
	p, sh, obj := rawKey(t, h, id)
	attrs, err := p.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
		t.Fatalf("CKA_VALUE of the master key: %v, %d attributes: want CKR_ATTRIBUTE_SENSITIVE", err, len(attrs))
	}
	// Making it extractable afterwards is refused too (CKA_EXTRACTABLE
	// may only go true -> false; the key is not modifiable at all).
	err = p.SetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)})
	if err == nil {
		t.Fatal("the master key was made extractable")
	}
}

// rawKey finds a master key through the module directly, as anyone holding
// the PIN could.
func rawKey(t *testing.T, h *testenv.SoftHSM, id string) (*pkcs11.Ctx, pkcs11.SessionHandle, pkcs11.ObjectHandle) {
	t.Helper()
	p := pkcs11.New(h.Library)
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil || len(slots) == 0 {
		t.Fatal(slots, err)
	}
	sh, err := p.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.CloseSession(sh) })
	if err := p.Login(sh, pkcs11.CKU_USER, h.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		t.Fatal(err)
	}
	if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id))}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.FindObjects(sh, 2)
	_ = p.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		t.Fatalf("finding the key: %v, %d objects", err, len(objs))
	}
	return p, sh, objs[0]
}

func TestTokenOpenRefusals(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tests := []struct {
		name string
		edit func(*hsm.Config)
		want string
	}{
		{"wrong PIN", func(c *hsm.Config) { c.PIN = "9999" }, "PIN"},
		{"no such token", func(c *hsm.Config) { c.TokenLabel = "elsewhere" }, `no PKCS#11 token labelled "elsewhere"`},
		{"no module", func(c *hsm.Config) { c.Library = "/nonexistent/libpkcs11.so" }, "cannot load the PKCS#11 module"},
		{"no label", func(c *hsm.Config) { c.TokenLabel = "" }, "token_label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(h)
			tt.edit(&cfg)
			tok, err := hsm.Open(cfg)
			if err == nil {
				_ = tok.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "9999") || strings.Contains(err.Error(), h.PIN+" ") {
				t.Fatalf("error shows the PIN: %v", err)
			}
		})
	}
	// A token without an Arca key opens (kek rotate needs it) but seals
	// nothing.
	tok := open(t, h)
	if tok.ActiveID() != "" {
		t.Fatalf("fresh token has active key %q", tok.ActiveID())
	}
	if _, _, err := tok.SealKEK(rand.Reader, "p", make([]byte, 32)); err == nil || !strings.Contains(err.Error(), "kek rotate") {
		t.Fatalf("sealing without a key: %v", err)
	}
}

// TestTokenLostAndBack takes the token away while a connection is live:
// every operation fails with ErrUnavailable (no panic), and the connection
// comes back by itself when the token does.
func TestTokenLostAndBack(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tok := open(t, h)
	id := generate(t, tok)
	kek := bytes.Repeat([]byte{7}, envelope.KeySize)
	_, sealed, err := tok.SealKEK(rand.Reader, "p", kek)
	if err != nil {
		t.Fatal(err)
	}
	// Requests keep coming while the token goes and returns: no panic, no
	// race, every answer the KEK or ErrUnavailable.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := tok.OpenKEK("p", id, sealed)
				if err == nil && !bytes.Equal(got, kek) || err != nil && !errors.Is(err, keyservice.ErrUnavailable) {
					t.Errorf("during the outage: %x, %v", got, err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	replug := h.Unplug(t)
	for i := range 5 {
		if _, err := tok.OpenKEK("p", id, sealed); !errors.Is(err, keyservice.ErrUnavailable) {
			t.Fatalf("open %d with the token gone: %v, want ErrUnavailable", i, err)
		}
		if _, _, err := tok.SealKEK(rand.Reader, "p", kek); !errors.Is(err, keyservice.ErrUnavailable) {
			t.Fatalf("seal %d with the token gone: %v, want ErrUnavailable", i, err)
		}
		time.Sleep(60 * time.Millisecond) // past RetryInterval: reconnects are tried, and fail
	}
	if !tok.Has(id) || tok.ActiveID() != id {
		t.Fatal("the key ids were forgotten while the token was away")
	}
	replug()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := tok.OpenKEK("p", id, sealed)
		if err == nil {
			if !bytes.Equal(got, kek) {
				t.Fatal("wrong KEK after the token came back")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the token came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokenKeyMissing: a KEK sealed by a key the token no longer holds is
// refused with an error naming the key, not ErrUnavailable (retrying will
// not help), and other keys keep working.
func TestTokenKeyMissing(t *testing.T) {
	h := testenv.StartSoftHSM(t)
	tok := open(t, h)
	gone := generate(t, tok)
	_, sealed, err := tok.SealKEK(rand.Reader, "p", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	kept := generate(t, tok)
	// The key vanishes from the token (an operator deleted it, a restore
	// from an older backup).
	p, sh, obj := rawKey(t, h, gone)
	if err := p.DestroyObject(sh, obj); err != nil {
		t.Fatal(err)
	}
	if err := tok.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = tok.OpenKEK("p", gone, sealed)
	if err == nil || errors.Is(err, keyservice.ErrUnavailable) || !strings.Contains(err.Error(), gone) {
		t.Fatalf("KEK of a missing key: %v", err)
	}
	if tok.ActiveID() != kept {
		t.Fatalf("active %q, want %q", tok.ActiveID(), kept)
	}
	envelopetest.Run(t, tok)
}

// FuzzTokenOpenKEK feeds the token's KEK opener arbitrary sealed bytes: it
// must never panic, never drop the connection for a bad input (the next
// good open works), and open nothing but the one value sealed.
func FuzzTokenOpenKEK(f *testing.F) {
	h := testenv.StartSoftHSM(f)
	tok, err := hsm.Open(config(h))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tok.Close() })
	id, err := tok.GenerateKey(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	kek := bytes.Repeat([]byte{4}, envelope.KeySize)
	_, sealed, err := tok.SealKEK(rand.Reader, "p", kek)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("p", sealed)
	f.Add("q", sealed)
	f.Add("p", sealed[:29])
	f.Add("p", []byte{1})
	f.Fuzz(func(t *testing.T, project string, in []byte) {
		got, err := tok.OpenKEK(project, id, in)
		if errors.Is(err, keyservice.ErrUnavailable) {
			t.Fatalf("a bad sealed value dropped the token connection: %v", err)
		}
		if err == nil && (project != "p" || !bytes.Equal(in, sealed) || !bytes.Equal(got, kek)) {
			t.Fatalf("opened %q for project %q", in, project)
		}
	})
}

// BenchmarkOpenKEK is the cost of a project KEK cache miss: opening a KEK
// inside SoftHSM2 beside opening it with a key file's key in memory.
func BenchmarkOpenKEK(b *testing.B) {
	h := testenv.StartSoftHSM(b)
	tok, err := hsm.Open(config(h))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tok.Close() })
	if _, err := tok.GenerateKey(time.Now()); err != nil {
		b.Fatal(err)
	}
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk-file", Key: bytes.Repeat([]byte{3}, envelope.KeySize)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, keys := range []struct {
		name string
		envelope.MasterKeys
	}{{"file", ring}, {"softhsm2", tok}} {
		id, sealed, err := keys.SealKEK(rand.Reader, "p", make([]byte, envelope.KeySize))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(keys.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := keys.OpenKEK("p", id, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
