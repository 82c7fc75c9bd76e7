package keyservice

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// Asymmetric orders generate an RSA key pair and store it as Barbican 15's
// simple_crypto plugin does: a "public" secret (PEM SubjectPublicKeyInfo),
// a "private" secret (PEM PKCS#8, encrypted with the passphrase when one is
// given) and, with a passphrase, a "passphrase" secret, grouped in an "rsa"
// container under the names public_key, private_key and
// private_key_passphrase. docs/compatibility.md says where Arca differs
// (sizes, DSA) and why.

// rsaSizes are the RSA modulus sizes Arca generates. Barbican 15 makes
// 1024, 2048 and 4096; 1024 is too weak to hand out today and 3072 is the
// size NIST pairs with 128-bit security, so Arca makes 2048, 3072 and 4096.
var rsaSizes = map[int]bool{2048: true, 3072: true, 4096: true}

// asymmetricNotSupported are the algorithms Barbican's secret store knows
// as asymmetric but its simple_crypto plugin (or Arca) does not generate:
// Barbican fails such an order with "Requested algorithm is not supported".
// Arca adds DSA (Barbican 15 makes DSA keys, in DER, but DSA is withdrawn
// from FIPS 186-5 and Go's crypto/dsa is deprecated).
var asymmetricNotSupported = map[string]bool{"ec": true, "dsa": true}

// The failure reasons Barbican 15 records on an asymmetric order, kept
// verbatim: clients and operators match on them.
const (
	reasonFailure        = "Process TypeOrder failure seen - please contact site administrator."
	reasonAlgUnsupported = "Process TypeOrder issue seen - Requested algorithm is not supported."
	reasonNoPlugin       = "Process TypeOrder issue seen - Secret generate supported plugin not found.."
)

// orderContentTypes are the payload_content_type values Barbican accepts
// in an order's meta (barbican.plugin.util.mime_types.SUPPORTED).
var orderContentTypes = map[string]string{
	"text/plain": ContentTypeText, "text/plain;charset=utf-8": ContentTypeText,
	"text/plain; charset=utf-8": ContentTypeText,
	ContentTypeBinary:           ContentTypeBinary, ContentTypePKCS8: ContentTypePKCS8,
}

// validateAsymmetricOrder checks what Barbican's TypeOrderValidator checks
// for an asymmetric order, with its messages.
func validateAsymmetricOrder(m OrderMeta) error {
	if m.Algorithm == nil || *m.Algorithm == "" {
		return Errorf(ErrInvalid, "Provided object does not match schema 'Order': 'algorithm' is required field for asymmetric key type order. Invalid property: 'meta'")
	}
	if m.BitLength == nil {
		return Errorf(ErrInvalid, "Provided object does not match schema 'Order': 'bit_length' is required field for asymmetric key type order. Invalid property: 'meta'")
	}
	if *m.BitLength <= 0 || *m.BitLength > MaxBitLength {
		return Errorf(ErrInvalid, "Invalid extra data: 'bit_length' must be a positive multiple of 8.")
	}
	if *m.BitLength%8 != 0 {
		return Errorf(ErrInvalid, "Provided field value is not supported")
	}
	if m.PayloadContentType != nil && *m.PayloadContentType != "" {
		if _, ok := orderContentTypes[strings.ToLower(*m.PayloadContentType)]; !ok {
			return Errorf(ErrInvalid, "Provided object does not match schema 'Secret' within 'Order': payload_content_type is not one of ['text/plain', 'text/plain;charset=utf-8', 'text/plain; charset=utf-8', 'application/octet-stream', 'application/pkcs8']. Invalid property: 'payload_content_type'")
		}
	}
	return nil
}

// keygenSlots bounds how many key pairs are generated at once in this
// process. An RSA 4096 key takes a core for up to seconds; without a bound
// a burst of orders would take every core from the requests that only read
// (the CPU is the process's, so the bound is too, not a Service's).
var keygenSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// acquireKeygen waits for a key-generation slot, or for ctx to end.
func acquireKeygen(ctx context.Context) (release func(), err error) {
	select {
	case keygenSlots <- struct{}{}:
		return func() { <-keygenSlots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to generate a key pair: %w", ctx.Err())
	}
}

// keyPair is a generated pair in the encodings the secrets hold.
type keyPair struct {
	publicPEM, privatePEM []byte
}

// generateRSA makes an RSA key pair; with a passphrase the PKCS#8 is
// encrypted (encryptPKCS8).
func (s *Service) generateRSA(bits int, passphrase []byte) (keyPair, error) {
	// crypto/rsa draws from the system's CSPRNG whatever reader it is
	// given; the service's reader only feeds the PKCS#8 salt and IV.
	key, err := rsa.GenerateKey(s.rand, bits)
	if err != nil {
		return keyPair{}, fmt.Errorf("generating an RSA key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return keyPair{}, fmt.Errorf("encoding the public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, fmt.Errorf("encoding the private key: %w", err)
	}
	defer clear(der)
	block := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	if len(passphrase) > 0 {
		enc, err := s.encryptPKCS8(der, passphrase)
		if err != nil {
			return keyPair{}, err
		}
		block = &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}
	}
	return keyPair{
		publicPEM:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		privatePEM: pem.EncodeToMemory(block),
	}, nil
}

// fulfilAsymmetricOrder generates the pair and stores its secrets and
// container; failures are recorded on the order, with Barbican's codes and
// reasons, and what was stored before a failure is removed.
func (s *Service) fulfilAsymmetricOrder(ctx context.Context, caller Caller, o *Order, spec OrderSpec) {
	alg := strings.ToLower(*o.Meta.Algorithm)
	fail := func(code, reason string) {
		o.Status, o.ErrorStatusCode, o.ErrorReason = StatusError, code, reason
	}
	switch {
	case asymmetricNotSupported[alg]:
		fail("400", reasonAlgUnsupported)
		return
	case alg != "rsa":
		fail("400", reasonNoPlugin)
		return
	case !rsaSizes[*o.Meta.BitLength] || spec.PassphraseNotString:
		fail("500", reasonFailure)
		return
	}
	pair, err := s.generateRSA(*o.Meta.BitLength, spec.Passphrase)
	if err != nil {
		s.orderFailed(o, err)
		return
	}
	// Once sealed into its secret, the private key need not linger here.
	defer clear(pair.privatePEM)
	c, err := s.storeKeyPair(ctx, caller, o, spec, pair)
	if errors.Is(err, ErrForbidden) {
		// Over the secrets or containers quota: the client's problem.
		fail("403", describeError(err))
		return
	}
	if err != nil {
		s.orderFailed(o, err)
		return
	}
	o.Status, o.ContainerID = StatusActive, c.ID
}

// storeKeyPair stores the pair's secrets and their container, or nothing.
func (s *Service) storeKeyPair(ctx context.Context, caller Caller, o *Order, spec OrderSpec, pair keyPair) (*Container, error) {
	base := SecretSpec{
		Algorithm: *o.Meta.Algorithm, BitLength: *o.Meta.BitLength, Expiration: spec.Expiration,
		PayloadContentType: ContentTypeBinary,
	}
	if o.Meta.Name != nil {
		base.Name = *o.Meta.Name
	}
	if o.Meta.Mode != nil {
		base.Mode = *o.Meta.Mode
	}
	if ct := o.Meta.PayloadContentType; ct != nil && *ct != "" {
		base.PayloadContentType = orderContentTypes[strings.ToLower(*ct)]
	}
	parts := []struct {
		name, secretType string
		payload          []byte
	}{
		{"private_key", SecretTypePrivate, pair.privatePEM},
		{"public_key", SecretTypePublic, pair.publicPEM},
	}
	if len(spec.Passphrase) > 0 {
		parts = append(parts, struct {
			name, secretType string
			payload          []byte
		}{"private_key_passphrase", SecretTypePassphrase, spec.Passphrase})
	}
	var made []*Secret
	cleanup := func() {
		for _, sec := range made {
			// A secret left behind would only count against the quota:
			// it is in no container and no order names it.
			if err := s.store.DeleteSecret(context.WithoutCancel(ctx), sec.ID); err != nil {
				s.log.Error().Err(err).Str("order_id", o.ID).Str("secret_id", sec.ID).Msg("removing a secret of a failed asymmetric order")
			}
		}
	}
	refs := make([]ContainerSecret, 0, len(parts))
	for _, p := range parts {
		spec := base
		spec.SecretType, spec.Payload = p.secretType, p.payload
		sec, err := s.CreateSecret(ctx, caller, spec)
		if err != nil {
			cleanup()
			return nil, err
		}
		made = append(made, sec)
		refs = append(refs, ContainerSecret{Name: p.name, SecretID: sec.ID})
	}
	c, err := s.CreateContainer(ctx, caller, ContainerSpec{Name: base.Name, Type: ContainerTypeRSA, Secrets: refs})
	if err != nil {
		cleanup()
		return nil, err
	}
	return c, nil
}
