//go:build !cgo

package hsm

import (
	"io"
	"time"
)

// Token is unavailable in a build without cgo.
type Token struct{}

// Open fails: PKCS#11 modules are C libraries.
func Open(Config) (*Token, error) { return nil, ErrNoCgo }

// ActiveID is empty.
func (*Token) ActiveID() string { return "" }

// Has is false.
func (*Token) Has(string) bool { return false }

// SealKEK fails.
func (*Token) SealKEK(io.Reader, string, []byte) (string, []byte, error) { return "", nil, ErrNoCgo }

// OpenKEK fails.
func (*Token) OpenKEK(string, string, []byte) ([]byte, error) { return nil, ErrNoCgo }

// GenerateKey fails.
func (*Token) GenerateKey(time.Time) (string, error) { return "", ErrNoCgo }

// Reload fails.
func (*Token) Reload() error { return ErrNoCgo }

// Properties fails.
func (*Token) Properties(string) (KeyProperties, error) { return KeyProperties{}, ErrNoCgo }

// IDs is empty.
func (*Token) IDs() []string { return nil }

// Close does nothing.
func (*Token) Close() error { return nil }
