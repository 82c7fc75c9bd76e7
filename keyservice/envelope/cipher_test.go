package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestCipherMatchesSealOpen: a prepared Cipher writes and reads exactly
// the format of Seal and Open, in both directions, and refuses what they
// refuse (another key, other associated data, a truncated value).
func TestCipherMatchesSealOpen(t *testing.T) {
	c, err := NewCipher(key(3))
	if err != nil {
		t.Fatal(err)
	}
	aad := SecretAAD("p1", "s1")
	byCipher, err := c.Seal(rand.Reader, []byte("payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(key(3), byCipher, aad); err != nil || string(got) != "payload" {
		t.Fatalf("Open(Cipher.Seal) = %q, %v", got, err)
	}
	byFunc, err := Seal(rand.Reader, key(3), []byte("payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Open(byFunc, aad); err != nil || string(got) != "payload" {
		t.Fatalf("Cipher.Open(Seal) = %q, %v", got, err)
	}
	if len(byCipher) != len(byFunc) || byCipher[0] != sealVersion {
		t.Fatalf("format differs: %d bytes, version %d; Seal: %d bytes", len(byCipher), byCipher[0], len(byFunc))
	}
	other, err := NewCipher(key(4))
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"other key":       func() ([]byte, error) { return other.Open(byCipher, aad) },
		"other aad":       func() ([]byte, error) { return c.Open(byCipher, SecretAAD("p1", "s2")) },
		"truncated":       func() ([]byte, error) { return c.Open(byCipher[:1+nonceSize+15], aad) },
		"empty":           func() ([]byte, error) { return c.Open(nil, aad) },
		"unknown version": func() ([]byte, error) { v := bytes.Clone(byCipher); v[0]++; return c.Open(v, aad) },
	} {
		if got, err := open(); !errors.Is(err, ErrOpen) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", name, got, err)
		}
	}
	if _, err := NewCipher(key(1)[:16]); err == nil {
		t.Error("NewCipher took a 16-byte key")
	}
}

// TestCipherConcurrentUse: one Cipher seals and opens from many goroutines
// at once (arca-api shares a cached project KEK's Cipher between
// requests); run with -race.
func TestCipherConcurrentUse(t *testing.T) {
	c, err := NewCipher(key(5))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				msg := fmt.Appendf(nil, "payload %d/%d", g, i)
				aad := SecretAAD("p", fmt.Sprint(g, i))
				sealed, err := c.Seal(rand.Reader, msg, aad)
				if err == nil {
					var got []byte
					got, err = c.Open(sealed, aad)
					if err == nil && !bytes.Equal(got, msg) {
						err = fmt.Errorf("opened %q, sealed %q", got, msg)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzCipherOpen: any input is either opened to what was sealed or refused
// with ErrOpen, never a panic.
func FuzzCipherOpen(f *testing.F) {
	c, err := NewCipher(key(6))
	if err != nil {
		f.Fatal(err)
	}
	aad := SecretAAD("p", "s")
	// A fixed nonce: every fuzzing process must seal the same seed.
	sealed, err := c.Seal(bytes.NewReader(make([]byte, nonceSize)), []byte("seed"), aad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{sealVersion})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := c.Open(in, aad)
		if err != nil {
			if !errors.Is(err, ErrOpen) || got != nil {
				t.Fatalf("Open = %q, %v", got, err)
			}
			return
		}
		if !bytes.Equal(in, sealed) || string(got) != "seed" {
			t.Fatalf("opened a value nobody sealed: %x -> %q", in, got)
		}
	})
}
