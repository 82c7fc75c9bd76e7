package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// OpenPKCS8 decrypts an "ENCRYPTED PRIVATE KEY" PEM with the real openssl
// (Debian openssl, what an operator would use) and returns the key's
// unencrypted "PRIVATE KEY" PEM; the error is openssl's when the passphrase
// is wrong. Arca only writes encrypted PKCS#8: reading it with a tool Arca
// does not share code with is what shows the format is right.
func OpenPKCS8(t testing.TB, encrypted []byte, passphrase string) ([]byte, error) {
	t.Helper()
	RequireTools(t, "openssl")
	in := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(in, encrypted, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The passphrase goes through the environment, not argv.
	out, _, err := RunOutputs(ctx, []string{"ARCA_TEST_PKCS8_PASS=" + passphrase},
		"openssl", "pkcs8", "-in", in, "-passin", "env:ARCA_TEST_PKCS8_PASS")
	if err != nil {
		return nil, err
	}
	return []byte(out + "\n"), nil
}

// CheckRSAKeyPair fails the test unless publicPEM is a PEM SubjectPublicKeyInfo
// RSA key of bits bits, privatePEM an unencrypted PEM PKCS#8 RSA key, and
// the private key decrypts what the public key encrypted (RSA-OAEP).
func CheckRSAKeyPair(t testing.TB, publicPEM, privatePEM []byte, bits int) {
	t.Helper()
	pubBlock, rest := pem.Decode(publicPEM)
	if pubBlock == nil || pubBlock.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("public key is not one PEM PUBLIC KEY: %q", publicPEM)
	}
	pubAny, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	pub, ok := pubAny.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != bits {
		t.Fatalf("public key is %T, want RSA of %d bits", pubAny, bits)
	}
	privBlock, _ := pem.Decode(privatePEM)
	if privBlock == nil || privBlock.Type != "PRIVATE KEY" {
		t.Fatalf("private key is not a PEM PRIVATE KEY (PKCS#8)")
	}
	privAny, err := x509.ParsePKCS8PrivateKey(privBlock.Bytes)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	priv, ok := privAny.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("private key is %T, want RSA", privAny)
	}
	msg := []byte("sealed by the public key, opened by the private one")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), rand.Reader, priv, ct, nil)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("the private key does not open what the public key sealed: %v", err)
	}
}
