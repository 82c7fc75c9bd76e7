//go:build cgo

package hsm

import (
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// GenerateKey creates a new master key inside the token and makes it the
// active one; its id is "hsm-" and the UTC time to the nanosecond, so ids
// sort in creation order. The key is an AES-256 token object that is
// sensitive and not extractable (it can never be read or wrapped out),
// usable only to encrypt and decrypt.
func (t *Token) GenerateKey(now time.Time) (string, error) {
	id := "hsm-" + now.UTC().Format("20060102T150405.000000000Z")
	if t.Has(id) {
		return "", fmt.Errorf("master key %q already exists in token %q", id, t.cfg.TokenLabel)
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.cfg.KeyLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	err := t.do(func(c *conn, sh pkcs11.SessionHandle) error {
		if _, err := t.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl); err != nil {
			return fmt.Errorf("C_GenerateKey: %w", err)
		}
		return t.listKeys(c, sh)
	})
	if err != nil {
		return "", fmt.Errorf("generating master key in token %q: %w", t.cfg.TokenLabel, err)
	}
	return id, nil
}

// Properties reads back the attributes that keep a master key inside the
// token. It never asks for the key's value.
func (t *Token) Properties(id string) (KeyProperties, error) {
	var p KeyProperties
	err := t.do(func(c *conn, sh pkcs11.SessionHandle) error {
		h, ok := c.handles[id]
		if !ok {
			return fmt.Errorf("%w: %q", errNoKey, id)
		}
		var err error
		_, p, err = t.readKey(sh, h)
		return err
	})
	return p, err
}

// readKey reads a key's CKA_ID and the attributes that keep it inside the
// token, never its value.
func (t *Token) readKey(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) (string, KeyProperties, error) {
	attrs, err := t.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LOCAL, nil),
	})
	if err != nil {
		return "", KeyProperties{}, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	flag := func(a *pkcs11.Attribute) bool { return len(a.Value) == 1 && a.Value[0] != 0 }
	return string(attrs[0].Value), KeyProperties{Sensitive: flag(attrs[1]), Extractable: flag(attrs[2]),
		AlwaysSensitive: flag(attrs[3]), NeverExtractable: flag(attrs[4]), Local: flag(attrs[5])}, nil
}
