package keyservice

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"opendev.org/x/arca/keyservice/envelope"
)

// Secret stores (Barbican's enable_multiple_secret_stores): each store is a
// home of master keys (the key file, or a PKCS#11 token), a project has one
// KEK per store sealed by that store's active master key, and a secret
// records the store whose KEK seals it. New secrets go to the project's
// preferred store, or to the global default. With no store configured
// (Options.SecretStores empty) the service has one store, recorded as "",
// and /v1/secret-stores answers as Barbican does with multiple stores off.
//
// Rows recorded as "" (written with one store, or before stores existed)
// belong to the global default store: they move with it.

// Plugin names shown by the API, Barbican's own (store_crypto with the
// simple_crypto or p11_crypto plugin is what Barbican's two matching stores
// are made of).
const (
	StorePluginStoreCrypto = "store_crypto"
	CryptoPluginSimple     = "simple_crypto"
	CryptoPluginPKCS11     = "p11_crypto"
)

// SecretStoreDef configures one secret store.
type SecretStoreDef struct {
	// Name is what secrets and KEKs record (1-64 of a-z, 0-9, _ and -).
	Name string
	// CryptoPlugin is shown as the store's crypto_plugin.
	CryptoPlugin  string
	GlobalDefault bool
	// Keys returns the store's master keys as they are now (the caller
	// reloads them after a rotation); its active key seals new KEKs of the
	// store. The ring given to New must open what every store seals.
	Keys func() envelope.MasterKeys
}

// SecretStoreInfo is a configured secret store as the API shows it.
type SecretStoreInfo struct {
	// ID is stable across processes and restarts: a name-based UUID.
	ID            string
	Name          string
	StorePlugin   string
	CryptoPlugin  string
	GlobalDefault bool
	// Created is when this process loaded the configuration.
	Created time.Time
}

type secretStore struct {
	info SecretStoreInfo
	keys func() envelope.MasterKeys
}

// secretStoreNamespace derives the stores' ids from their names.
var secretStoreNamespace = uuid.MustParse("5a0b2a4e-7d1f-4c1e-9d0e-6172636173ff")

var storeNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// newSecretStores checks the definitions: unique valid names, exactly one
// global default.
func newSecretStores(defs []SecretStoreDef, now time.Time) ([]secretStore, error) {
	var out []secretStore
	seen := map[string]bool{}
	defaults := 0
	for _, d := range defs {
		switch {
		case !storeNameRE.MatchString(d.Name):
			return nil, fmt.Errorf("secret store name %q: use 1 to 64 of a-z, 0-9, _ and -", d.Name)
		case seen[d.Name]:
			return nil, fmt.Errorf("secret store %q configured twice", d.Name)
		case d.Keys == nil:
			return nil, fmt.Errorf("secret store %q has no master keys", d.Name)
		}
		seen[d.Name] = true
		if d.GlobalDefault {
			defaults++
		}
		out = append(out, secretStore{keys: d.Keys, info: SecretStoreInfo{
			ID: uuid.NewSHA1(secretStoreNamespace, []byte(d.Name)).String(), Name: d.Name,
			StorePlugin: StorePluginStoreCrypto, CryptoPlugin: d.CryptoPlugin, GlobalDefault: d.GlobalDefault, Created: now,
		}})
	}
	if len(defs) > 0 && defaults != 1 {
		return nil, fmt.Errorf("secret stores: %d global defaults, want exactly one", defaults)
	}
	return out, nil
}

// MultipleSecretStores reports whether secret stores are configured.
func (s *Service) MultipleSecretStores() bool { return len(s.stores) > 0 }

func multipleStoresOff() error {
	return Errorf(ErrNotFound, "Not Found. Multiple backends support is not enabled in service configuration.")
}

func secretStoreNotFound() error { return Errorf(ErrNotFound, "Not Found. Secret store not found.") }

func noPreferredStore() error {
	return Errorf(ErrNotFound, "Not Found. No preferred secret store defined for this project.")
}

// ListSecretStores returns the configured stores, in configuration order.
func (s *Service) ListSecretStores() ([]SecretStoreInfo, error) {
	if !s.MultipleSecretStores() {
		return nil, multipleStoresOff()
	}
	out := make([]SecretStoreInfo, len(s.stores))
	for i, st := range s.stores {
		out[i] = st.info
	}
	return out, nil
}

// GlobalDefaultSecretStore returns the store new secrets go to when their
// project prefers none.
func (s *Service) GlobalDefaultSecretStore() (SecretStoreInfo, error) {
	if !s.MultipleSecretStores() {
		return SecretStoreInfo{}, multipleStoresOff()
	}
	return s.globalDefault().info, nil
}

func (s *Service) globalDefault() secretStore {
	for _, st := range s.stores {
		if st.info.GlobalDefault {
			return st
		}
	}
	return s.stores[0] // unreachable: New checks there is one
}

// GetSecretStore returns a store by id.
func (s *Service) GetSecretStore(id string) (SecretStoreInfo, error) {
	if !s.MultipleSecretStores() {
		return SecretStoreInfo{}, multipleStoresOff()
	}
	for _, st := range s.stores {
		if st.info.ID == id {
			return st.info, nil
		}
	}
	return SecretStoreInfo{}, secretStoreNotFound()
}

func (s *Service) storeByName(name string) (secretStore, bool) {
	for _, st := range s.stores {
		if st.info.Name == name {
			return st, true
		}
	}
	return secretStore{}, false
}

// PreferredSecretStore returns the store a project prefers. A preference
// for a store no longer configured counts as none.
func (s *Service) PreferredSecretStore(ctx context.Context, projectID string) (SecretStoreInfo, error) {
	if !s.MultipleSecretStores() {
		return SecretStoreInfo{}, multipleStoresOff()
	}
	name, err := s.store.GetPreferredSecretStore(ctx, projectID)
	if errors.Is(err, ErrNotFound) {
		return SecretStoreInfo{}, noPreferredStore()
	}
	if err != nil {
		return SecretStoreInfo{}, fmt.Errorf("reading the preferred secret store: %w", err)
	}
	st, ok := s.storeByName(name)
	if !ok {
		return SecretStoreInfo{}, noPreferredStore()
	}
	return st.info, nil
}

// SetPreferredSecretStore makes the store with that id the project's
// preferred one.
func (s *Service) SetPreferredSecretStore(ctx context.Context, projectID, storeID string) error {
	st, err := s.GetSecretStore(storeID)
	if err != nil {
		return err
	}
	if err := s.store.SetPreferredSecretStore(ctx, projectID, st.Name, s.Now()); err != nil {
		return fmt.Errorf("setting the preferred secret store: %w", err)
	}
	return nil
}

// RemovePreferredSecretStore removes the project's preference, whichever
// store it names (as Barbican, the store in the path is only checked to
// exist).
func (s *Service) RemovePreferredSecretStore(ctx context.Context, projectID, storeID string) error {
	if _, err := s.GetSecretStore(storeID); err != nil {
		return err
	}
	err := s.store.DeletePreferredSecretStore(ctx, projectID)
	if errors.Is(err, ErrNotFound) {
		return noPreferredStore()
	}
	if err != nil {
		return fmt.Errorf("removing the preferred secret store: %w", err)
	}
	return nil
}

// storeForNewSecret names the store a new secret of the project goes to.
func (s *Service) storeForNewSecret(ctx context.Context, projectID string) (string, error) {
	if !s.MultipleSecretStores() {
		return "", nil
	}
	name, err := s.store.GetPreferredSecretStore(ctx, projectID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return "", fmt.Errorf("reading the preferred secret store: %w", err)
	default:
		if _, ok := s.storeByName(name); ok {
			return name, nil
		}
		s.log.Warn().Str("project_id", projectID).Str("secret_store", name).
			Msg("preferred secret store is not configured; using the global default")
	}
	return s.globalDefault().info.Name, nil
}

// storeLabels lists what KEK rows of configured stores record: "" and,
// with several stores, each store's name.
func (s *Service) storeLabels() []string {
	labels := []string{""}
	for _, st := range s.stores {
		labels = append(labels, st.info.Name)
	}
	return labels
}

// storeKeys returns the master keys that seal new KEKs of a store. With
// one store every label is that store (the ring); with several, "" is the
// global default's, and a store no longer configured is an error.
func (s *Service) storeKeys(label string) (envelope.MasterKeys, error) {
	if !s.MultipleSecretStores() {
		return s.keyring(), nil
	}
	if label == "" {
		return s.globalDefault().keys(), nil
	}
	st, ok := s.storeByName(label)
	if !ok {
		return nil, fmt.Errorf("secret store %q is not configured", label)
	}
	return st.keys(), nil
}
