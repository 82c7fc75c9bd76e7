package envelope

import (
	"fmt"
	"io"
)

// MasterKeys is where the master key-encryption keys live: a Keyring (a key
// file or ARCA_MASTER_KEYS, the keys in this process's memory) or a PKCS#11
// token (package hsm, where the keys never leave the token). Either seals
// and opens project KEKs in the same format (Seal's), bound to
// KEKAAD(projectID, masterKeyID), so a KEK can move from one to the other
// with a rewrap.
type MasterKeys interface {
	// ActiveID names the key that seals new KEKs.
	ActiveID() string
	// Has reports whether the named key is available here.
	Has(id string) bool
	// SealKEK seals a project KEK with the active key.
	SealKEK(rand io.Reader, projectID string, kek []byte) (masterKeyID string, sealed []byte, err error)
	// OpenKEK opens a project KEK sealed by the named key.
	OpenKEK(projectID, masterKeyID string, sealed []byte) ([]byte, error)
}

var _ MasterKeys = (*Keyring)(nil)

// Chain is a primary MasterKeys that seals every new KEK, and older ones
// that only open the KEKs they sealed: how a deployment moving its master
// key from a file into an HSM runs until "arca-manage kek rewrap" has
// resealed every KEK with the HSM's key.
type Chain struct {
	Primary MasterKeys
	Older   []MasterKeys
}

// ActiveID is the primary's active key.
func (c Chain) ActiveID() string { return c.Primary.ActiveID() }

// Has reports whether any member holds the key.
func (c Chain) Has(id string) bool { return c.holder(id) != nil }

// SealKEK seals with the primary's active key.
func (c Chain) SealKEK(rand io.Reader, projectID string, kek []byte) (string, []byte, error) {
	return c.Primary.SealKEK(rand, projectID, kek)
}

// OpenKEK opens with whichever member holds the key.
func (c Chain) OpenKEK(projectID, masterKeyID string, sealed []byte) ([]byte, error) {
	m := c.holder(masterKeyID)
	if m == nil {
		return nil, fmt.Errorf("project %s: KEK sealed by master key %q, which no configured master key store holds", projectID, masterKeyID)
	}
	return m.OpenKEK(projectID, masterKeyID, sealed)
}

func (c Chain) holder(id string) MasterKeys {
	if c.Primary.Has(id) {
		return c.Primary
	}
	for _, m := range c.Older {
		if m.Has(id) {
			return m
		}
	}
	return nil
}
