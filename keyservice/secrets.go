package keyservice

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"opendev.org/x/arca/keyservice/envelope"
)

// Limits Barbican enforces and clients rely on.
const (
	MaxPayloadBytes = 20000
	MaxNameLength   = 255
	MaxBitLength    = 32767
	MaxMetadataKeys = 1000
	MaxMetadataLen  = 255
)

// Payload content types, normalised as Barbican reports them.
const (
	ContentTypeText   = "text/plain"
	ContentTypeBinary = "application/octet-stream"
	ContentTypePKCS8  = "application/pkcs8"
	ContentTypePKIX   = "application/pkix-cert"
)

var secretTypes = map[string]bool{
	SecretTypeSymmetric: true, SecretTypePublic: true, SecretTypePrivate: true,
	SecretTypePassphrase: true, SecretTypeCertificate: true, SecretTypeOpaque: true,
}

// SecretSpec is a validated request to create a secret. Payload is the
// decoded payload (nil for two-step creation) and PayloadContentType its
// normalised media type.
type SecretSpec struct {
	Name               string
	SecretType         string
	Algorithm          string
	Mode               string
	BitLength          int
	Expiration         *time.Time
	Payload            []byte
	PayloadContentType string
}

// CreateSecret stores a new secret in the caller's project.
func (s *Service) CreateSecret(ctx context.Context, caller Caller, spec SecretSpec) (*Secret, error) {
	now := s.Now()
	if err := s.validateSpec(spec, now); err != nil {
		return nil, err
	}
	if spec.SecretType == "" {
		spec.SecretType = SecretTypeOpaque
	}
	sec := &Secret{
		ID:         NewID(),
		ProjectID:  caller.ProjectID,
		CreatorID:  caller.UserID,
		Name:       spec.Name,
		SecretType: spec.SecretType,
		Algorithm:  spec.Algorithm,
		BitLength:  spec.BitLength,
		Mode:       spec.Mode,
		Status:     StatusActive,
		Expiration: spec.Expiration,
		Created:    now,
		Updated:    now,
	}
	var err error
	if sec.SecretStore, err = s.storeForNewSecret(ctx, caller.ProjectID); err != nil {
		return nil, err
	}
	if spec.Payload != nil {
		sealed, err := s.sealInStore(ctx, sec.ProjectID, sec.SecretStore, spec.Payload, envelope.SecretAAD(sec.ProjectID, sec.ID))
		if err != nil {
			return nil, fmt.Errorf("sealing payload: %w", err)
		}
		sec.Payload = sealed
		sec.PayloadContentType = spec.PayloadContentType
	}
	if err := s.insertSecret(ctx, sec); err != nil {
		return nil, err
	}
	return sec, nil
}

// insertSecret stores a new secret within its project's secrets quota.
func (s *Service) insertSecret(ctx context.Context, sec *Secret) error {
	return s.createWithinQuota(ctx, sec.ProjectID, QuotaSecrets, "storing secret",
		func(qi QuotaInserter, g QuotaGuard) (bool, error) { return qi.CreateSecretGuarded(ctx, sec, g) },
		func() error { return s.store.CreateSecret(ctx, sec) })
}

func (s *Service) validateSpec(spec SecretSpec, now time.Time) error {
	switch {
	case len(spec.Name) > MaxNameLength:
		return Errorf(ErrInvalid, "Invalid name: longer than %d characters.", MaxNameLength)
	case spec.SecretType != "" && !secretTypes[spec.SecretType]:
		return Errorf(ErrInvalid, "Invalid secret_type %q: must be one of symmetric, public, private, passphrase, certificate, opaque.", spec.SecretType)
	case spec.BitLength < 0 || spec.BitLength > MaxBitLength:
		return Errorf(ErrInvalid, "Invalid bit_length: must be an integer from 1 to %d.", MaxBitLength)
	case spec.Expiration != nil && !spec.Expiration.After(now):
		return Errorf(ErrInvalid, "Invalid expiration: the date must be in the future.")
	case len(spec.Algorithm) > 255 || len(spec.Mode) > 255:
		return Errorf(ErrInvalid, "Invalid algorithm or mode: longer than 255 characters.")
	}
	if spec.Payload != nil {
		return validatePayload(spec.Payload)
	}
	return nil
}

func validatePayload(payload []byte) error {
	if len(payload) == 0 {
		return Errorf(ErrInvalid, "If 'payload' is specified, it must not be empty.")
	}
	if len(payload) > MaxPayloadBytes {
		return Errorf(ErrTooLarge, "Could not add secret data as it was too large.")
	}
	return nil
}

// LoadSecret returns a secret by id; a secret that has expired is reported
// as not found, as it is in Barbican.
func (s *Service) LoadSecret(ctx context.Context, id string) (*Secret, error) {
	if !validID(id) {
		return nil, secretNotFound()
	}
	sec, err := s.store.GetSecret(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, secretNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading secret: %w", err)
	}
	if sec.Expired(s.Now()) {
		return nil, secretNotFound()
	}
	return sec, nil
}

func secretNotFound() error { return Errorf(ErrNotFound, "Secret not found.") }

// SecretPayload opens a secret's payload.
func (s *Service) SecretPayload(ctx context.Context, sec *Secret) ([]byte, error) {
	if !sec.HasPayload() {
		return nil, Errorf(ErrNotFound, "Secret payload not found.")
	}
	plain, err := s.openInStore(ctx, sec.ProjectID, sec.SecretStore, sec.Payload, envelope.SecretAAD(sec.ProjectID, sec.ID))
	if err != nil {
		return nil, fmt.Errorf("secret %s: opening payload: %w", sec.ID, err)
	}
	return plain, nil
}

// SetSecretPayload stores the payload of a secret created without one.
func (s *Service) SetSecretPayload(ctx context.Context, sec *Secret, contentType string, payload []byte) error {
	if sec.HasPayload() {
		return Errorf(ErrConflict, "Secret already has data, cannot modify it.")
	}
	if err := validatePayload(payload); err != nil {
		return err
	}
	sealed, err := s.sealInStore(ctx, sec.ProjectID, sec.SecretStore, payload, envelope.SecretAAD(sec.ProjectID, sec.ID))
	if err != nil {
		return fmt.Errorf("sealing payload: %w", err)
	}
	err = s.store.SetSecretPayload(ctx, sec.ID, contentType, sealed, s.Now())
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(ErrConflict, "Secret already has data, cannot modify it.")
	case errors.Is(err, ErrNotFound):
		return secretNotFound()
	case err != nil:
		return fmt.Errorf("storing payload: %w", err)
	}
	return nil
}

// DeleteSecret deletes a secret and its metadata. While the secret has
// consumers it is refused (400, as newer Barbican does) unless force is set
// or the service allows it (Options.AllowDeleteWithConsumers).
func (s *Service) DeleteSecret(ctx context.Context, sec *Secret, force bool) error {
	if s.blockDelete && !force {
		_, n, err := s.store.ListSecretConsumers(ctx, sec.ID, 0, 0)
		if err != nil {
			return fmt.Errorf("counting secret consumers: %w", err)
		}
		if n > 0 {
			return Errorf(ErrInvalid, "Secret has consumers! Remove them first or use the force parameter to delete it.")
		}
	}
	err := s.store.DeleteSecret(ctx, sec.ID)
	if errors.Is(err, ErrNotFound) {
		return secretNotFound()
	}
	if err != nil {
		return fmt.Errorf("deleting secret: %w", err)
	}
	return nil
}

// ListSecrets returns a page of the filter's project's live secrets.
func (s *Service) ListSecrets(ctx context.Context, f SecretFilter) ([]*Secret, int, error) {
	f.Now = s.Now()
	for _, k := range f.Sort {
		if !SortableSecretFields[k.Field] {
			return nil, 0, Errorf(ErrInvalid, "Invalid sort key %q.", k.Field)
		}
	}
	list, total, err := s.store.ListSecrets(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("listing secrets: %w", err)
	}
	return list, total, nil
}

var metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// NormalizeMetadataKey validates a user metadata key and lower-cases it, as
// Barbican stores them.
func NormalizeMetadataKey(key string) (string, error) {
	if !metadataKeyPattern.MatchString(key) {
		return "", Errorf(ErrInvalid, "Invalid metadata key: use 1-255 letters, digits, '_' or '-'.")
	}
	return strings.ToLower(key), nil
}

func validMetadataValue(v string) error {
	if len(v) > MaxMetadataLen {
		return Errorf(ErrInvalid, "Invalid metadata value: longer than %d characters.", MaxMetadataLen)
	}
	return nil
}

// SecretMetadata returns a secret's user metadata.
func (s *Service) SecretMetadata(ctx context.Context, sec *Secret) (map[string]string, error) {
	md, err := s.store.GetSecretMetadata(ctx, sec.ID)
	if err != nil {
		return nil, fmt.Errorf("loading metadata: %w", err)
	}
	return md, nil
}

// ReplaceSecretMetadata replaces all user metadata of a secret.
func (s *Service) ReplaceSecretMetadata(ctx context.Context, sec *Secret, md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return Errorf(ErrInvalid, "Too many metadata keys (at most %d).", MaxMetadataKeys)
	}
	clean := make(map[string]string, len(md))
	for k, v := range md {
		key, err := NormalizeMetadataKey(k)
		if err != nil {
			return err
		}
		if err := validMetadataValue(v); err != nil {
			return err
		}
		clean[key] = v
	}
	if err := s.store.ReplaceSecretMetadata(ctx, sec.ID, clean); err != nil {
		return metadataError(err)
	}
	return nil
}

// AddSecretMetadatum adds one metadata key; 409 if it exists.
func (s *Service) AddSecretMetadatum(ctx context.Context, sec *Secret, key, value string) (string, error) {
	key, err := NormalizeMetadataKey(key)
	if err != nil {
		return "", err
	}
	if err := validMetadataValue(value); err != nil {
		return "", err
	}
	// The bound a PUT of the whole set has: one POST at a time, keys
	// were unbounded (and a GET answers them all). Concurrent POSTs may
	// pass it by as many as run at once.
	md, err := s.store.GetSecretMetadata(ctx, sec.ID)
	if err != nil {
		return "", fmt.Errorf("loading metadata: %w", err)
	}
	if _, exists := md[key]; !exists && len(md) >= MaxMetadataKeys {
		return "", Errorf(ErrInvalid, "Too many metadata keys (at most %d).", MaxMetadataKeys)
	}
	if err := s.store.AddSecretMetadatum(ctx, sec.ID, key, value); err != nil {
		return "", metadataError(err)
	}
	return key, nil
}

// UpdateSecretMetadatum changes one existing metadata key.
func (s *Service) UpdateSecretMetadatum(ctx context.Context, sec *Secret, key, value string) (string, error) {
	key, err := NormalizeMetadataKey(key)
	if err != nil {
		return "", err
	}
	if err := validMetadataValue(value); err != nil {
		return "", err
	}
	if err := s.store.UpdateSecretMetadatum(ctx, sec.ID, key, value); err != nil {
		return "", metadataError(err)
	}
	return key, nil
}

// DeleteSecretMetadatum removes one metadata key.
func (s *Service) DeleteSecretMetadatum(ctx context.Context, sec *Secret, key string) error {
	key, err := NormalizeMetadataKey(key)
	if err != nil {
		return Errorf(ErrNotFound, "Secret metadata not found.")
	}
	if err := s.store.DeleteSecretMetadatum(ctx, sec.ID, key); err != nil {
		return metadataError(err)
	}
	return nil
}

func metadataError(err error) error {
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(ErrConflict, "Conflict. Key in request is already in the secret metadata.")
	case errors.Is(err, ErrNotFound):
		return Errorf(ErrNotFound, "Secret metadata not found.")
	}
	return fmt.Errorf("secret metadata: %w", err)
}

// validID reports whether id can be a resource id. Ids are UUIDs; anything
// else cannot exist, so we answer 404 without asking the database.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
