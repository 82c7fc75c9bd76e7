package hsm

import (
	"errors"
	"time"
)

// Config is the [pkcs11] section of arca.conf.
type Config struct {
	// Library is the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
	Library string
	// TokenLabel selects the token.
	TokenLabel string
	// PIN is the user PIN (from [pkcs11] pin or ARCA_PKCS11_PIN).
	PIN string
	// KeyLabel is the CKA_LABEL every Arca master key carries; CKA_ID is
	// the key's id. DefaultKeyLabel when empty.
	KeyLabel string
	// Sessions bounds the sessions kept open (DefaultSessions).
	Sessions int
	// RetryInterval is how long after a failed connection the next is
	// tried (DefaultRetryInterval); operations meanwhile fail at once.
	RetryInterval time.Duration
}

// Defaults of Config.
const (
	DefaultKeyLabel      = "arca-master-kek"
	DefaultSessions      = 8
	DefaultRetryInterval = time.Second
)

// ErrNoCgo is returned by Open in a build without cgo.
var ErrNoCgo = errors.New("this arca build has no PKCS#11 support (built with CGO_ENABLED=0): rebuild with cgo, or use [crypto] master_key_backend = file")

func (c Config) withDefaults() Config {
	if c.KeyLabel == "" {
		c.KeyLabel = DefaultKeyLabel
	}
	if c.Sessions <= 0 {
		c.Sessions = DefaultSessions
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	return c
}

// KeyProperties are the PKCS#11 attributes that say whether a master key
// can leave the token.
type KeyProperties struct {
	Sensitive, Extractable, AlwaysSensitive, NeverExtractable bool
	// Local: generated in the token (CKA_LOCAL), not imported.
	Local bool
}

// inside reports whether a key was generated in the token and can never
// leave it: what every master key must be.
func (p KeyProperties) inside() bool {
	return p.Sensitive && !p.Extractable && p.AlwaysSensitive && p.NeverExtractable && p.Local
}
