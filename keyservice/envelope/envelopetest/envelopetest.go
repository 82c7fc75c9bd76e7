// Package envelopetest is the conformance suite every envelope.MasterKeys
// (the key file's Keyring, the PKCS#11 token of package hsm) passes: the
// same sealing, binding and refusal rules wherever the master key lives.
package envelopetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"opendev.org/x/arca/keyservice/envelope"
)

// Run checks keys. It seals and opens KEKs of made-up projects only.
func Run(t *testing.T, keys envelope.MasterKeys) {
	t.Helper()
	active := keys.ActiveID()
	if active == "" || !keys.Has(active) {
		t.Fatalf("active key %q is not held", active)
	}
	if keys.Has("no-such-master-key") {
		t.Fatal("Has(absent key) = true")
	}
	kek := bytes.Repeat([]byte{0x5a}, envelope.KeySize)
	id, sealed, err := keys.SealKEK(rand.Reader, "proj-a", kek)
	if err != nil {
		t.Fatal(err)
	}
	if id != active {
		t.Fatalf("sealed by %q, want the active key %q", id, active)
	}
	if bytes.Contains(sealed, kek[:8]) {
		t.Fatal("KEK visible in its sealed form")
	}
	_, again, err := keys.SealKEK(rand.Reader, "proj-a", kek)
	if err != nil || bytes.Equal(again, sealed) {
		t.Fatalf("two seals of one KEK are identical (nonce reuse?): %v", err)
	}
	got, err := keys.OpenKEK("proj-a", id, sealed)
	if err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("OpenKEK = %x, %v", got, err)
	}
	t.Run("refusals", func(t *testing.T) { refusals(t, keys, id, sealed) })
	t.Run("concurrent", func(t *testing.T) { concurrent(t, keys) })
}

func refusals(t *testing.T, keys envelope.MasterKeys, id string, sealed []byte) {
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	version := bytes.Clone(sealed)
	version[0] ^= 0x80
	tests := []struct {
		name, project, id string
		sealed            []byte
		wantOpen          bool // the error must be envelope.ErrOpen
	}{
		{"other project", "proj-b", id, sealed, true},
		{"tampered tag", "proj-a", id, flipped, true},
		{"unknown version", "proj-a", id, version, true},
		{"truncated", "proj-a", id, sealed[:20], true},
		{"empty", "proj-a", id, nil, true},
		{"key not held", "proj-a", "no-such-master-key", sealed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keys.OpenKEK(tt.project, tt.id, tt.sealed)
			if err == nil {
				t.Fatalf("opened: %x", got)
			}
			if tt.wantOpen && !errors.Is(err, envelope.ErrOpen) {
				t.Fatalf("error %v is not envelope.ErrOpen", err)
			}
		})
	}
}

func concurrent(t *testing.T, keys envelope.MasterKeys) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kek := bytes.Repeat([]byte{byte(i)}, envelope.KeySize)
			project := "proj-" + string(rune('a'+i))
			id, sealed, err := keys.SealKEK(rand.Reader, project, kek)
			if err == nil {
				var got []byte
				got, err = keys.OpenKEK(project, id, sealed)
				if err == nil && !bytes.Equal(got, kek) {
					err = errors.New("a concurrent round trip returned another KEK")
				}
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
