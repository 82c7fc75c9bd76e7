package app

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/hsm"
)

// MasterKeyStore is the configured home of the master keys: the key file
// (or ARCA_MASTER_KEYS), or a PKCS#11 token ([crypto] master_key_backend).
type MasterKeyStore struct {
	// Keys seal and open project KEKs.
	Keys envelope.MasterKeys
	// Token is the PKCS#11 token; nil with the file backend.
	Token *hsm.Token
	// Stores are the secret stores with [secretstore]
	// enable_multiple_secret_stores (keyservice.Options.SecretStores); nil
	// otherwise.
	Stores []keyservice.SecretStoreDef
	file   atomic.Pointer[envelope.Keyring] // the file store's keys, reloaded
	cfg    Config
}

// OpenMasterKeys opens the configured master key store and refuses one
// that holds no key. With master_key_backend = pkcs11 a key file that
// exists (or ARCA_MASTER_KEYS) is kept as an older store: it still opens
// the KEKs it sealed, and "arca-manage kek rewrap" moves them into the
// token (the file -> HSM migration). The pkcs11 module is loaded only with
// that backend.
func OpenMasterKeys(cfg Config) (*MasterKeyStore, error) {
	m := &MasterKeyStore{cfg: cfg}
	if cfg.MultipleSecretStores {
		return m, m.openStores()
	}
	if cfg.MasterKeyBackend != "pkcs11" {
		ring, err := LoadKeyring(cfg)
		if err != nil {
			return nil, err
		}
		m.Keys = ring
		return m, nil
	}
	tok, err := hsm.Open(cfg.PKCS11)
	if err != nil {
		return nil, fmt.Errorf("[crypto] master_key_backend = pkcs11: %w", err)
	}
	if tok.ActiveID() == "" {
		_ = tok.Close()
		return nil, fmt.Errorf("PKCS#11 token %q holds no Arca master key (CKA_LABEL %q): create one with \"arca-manage kek rotate\"",
			cfg.PKCS11.TokenLabel, cfg.PKCS11.KeyLabel)
	}
	m.Token = tok
	if m.Keys, err = m.chain(); err != nil {
		_ = tok.Close()
		return nil, err
	}
	return m, nil
}

// chain puts the token first and a key file, if there is one, behind it.
func (m *MasterKeyStore) chain() (envelope.MasterKeys, error) {
	older, err := m.olderKeyring()
	if err != nil {
		return nil, err
	}
	if older == nil {
		return m.Token, nil
	}
	for _, id := range older.IDs() {
		if m.Token.Has(id) {
			return nil, fmt.Errorf("master key id %q is both in the key file and in the token", id)
		}
	}
	return envelope.Chain{Primary: m.Token, Older: []envelope.MasterKeys{older}}, nil
}

// olderKeyring is the key file kept beside a token, or nil when there is
// none.
func (m *MasterKeyStore) olderKeyring() (*envelope.Keyring, error) {
	if os.Getenv("ARCA_MASTER_KEYS") == "" && m.cfg.MasterKeyFile == "" {
		return nil, nil
	}
	ring, err := LoadKeyring(m.cfg)
	if errors.Is(err, envelope.ErrNoKeyring) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the key file kept beside the PKCS#11 token: %w", err)
	}
	return ring, nil
}

// Secret store names: the two homes of master keys.
const (
	StoreFile   = "file"
	StorePKCS11 = "pkcs11"
)

// openStores opens both stores: the key file and the token, each of which
// must hold a master key. Keys opens what either sealed; each store seals
// with its own.
func (m *MasterKeyStore) openStores() error {
	ring, err := LoadKeyring(m.cfg)
	if err != nil {
		return fmt.Errorf("secret store %q: %w", StoreFile, err)
	}
	m.file.Store(ring)
	tok, err := hsm.Open(m.cfg.PKCS11)
	if err != nil {
		return fmt.Errorf("secret store %q: %w", StorePKCS11, err)
	}
	if tok.ActiveID() == "" {
		_ = tok.Close()
		return fmt.Errorf("secret store %q: PKCS#11 token %q holds no Arca master key (CKA_LABEL %q): create one with \"arca-manage kek rotate\"",
			StorePKCS11, m.cfg.PKCS11.TokenLabel, m.cfg.PKCS11.KeyLabel)
	}
	m.Token = tok
	if m.Keys, err = m.union(); err != nil {
		_ = tok.Close()
		return err
	}
	m.Stores = []keyservice.SecretStoreDef{
		{Name: StoreFile, CryptoPlugin: keyservice.CryptoPluginSimple, GlobalDefault: m.cfg.MasterKeyBackend != "pkcs11",
			Keys: func() envelope.MasterKeys { return m.file.Load() }},
		{Name: StorePKCS11, CryptoPlugin: keyservice.CryptoPluginPKCS11, GlobalDefault: m.cfg.MasterKeyBackend == "pkcs11",
			Keys: func() envelope.MasterKeys { return m.Token }},
	}
	return nil
}

// union opens with both stores' keys, the global default's first.
func (m *MasterKeyStore) union() (envelope.MasterKeys, error) {
	ring := m.file.Load()
	for _, id := range ring.IDs() {
		if m.Token.Has(id) {
			return nil, fmt.Errorf("master key id %q is both in the key file and in the token", id)
		}
	}
	if m.cfg.MasterKeyBackend == "pkcs11" {
		return envelope.Chain{Primary: m.Token, Older: []envelope.MasterKeys{ring}}, nil
	}
	return envelope.Chain{Primary: ring, Older: []envelope.MasterKeys{m.Token}}, nil
}

// Reload reads the master keys again (keyservice.Options.ReloadKeyring):
// the key file, or the token's list of keys after a rotation.
func (m *MasterKeyStore) Reload() (envelope.MasterKeys, error) {
	if m.Stores != nil {
		ring, err := LoadKeyring(m.cfg)
		if err != nil {
			return nil, err
		}
		if err := m.Token.Reload(); err != nil {
			return nil, err
		}
		m.file.Store(ring)
		return m.union()
	}
	if m.Token == nil {
		return LoadKeyring(m.cfg)
	}
	if err := m.Token.Reload(); err != nil {
		return nil, err
	}
	return m.chain()
}

// Close releases the token, if any.
func (m *MasterKeyStore) Close() error {
	if m.Token == nil {
		return nil
	}
	return m.Token.Close()
}
