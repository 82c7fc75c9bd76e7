package keyservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OrderSpec is a request to create an order. Expiration is Meta.Expiration
// parsed by the caller (the HTTP layer owns date formats).
type OrderSpec struct {
	Type       string
	Meta       OrderMeta
	Expiration *time.Time
	// Passphrase protects an asymmetric order's private key; nil or empty
	// means none. It is never part of Meta: Meta is stored in the clear and
	// shown to every reader of the order.
	Passphrase []byte
	// PassphraseNotString is set when the client sent a passphrase that is
	// not a JSON string: Barbican accepts such an order and fails it.
	PassphraseNotString bool
}

// symmetricSizes are the key sizes Arca generates per algorithm.
var symmetricSizes = map[string]map[int]bool{
	"aes": {128: true, 192: true, 256: true},
}

// CreateOrder records an order and fulfils it at once: Arca has no queue, so
// an order is ACTIVE with its secret (key) or container (asymmetric), or
// ERROR with the reason, when this returns. Malformed orders are refused
// outright (400); well-formed orders Arca cannot fulfil (an unsupported
// algorithm) become ERROR orders, as in Barbican.
func (s *Service) CreateOrder(ctx context.Context, caller Caller, spec OrderSpec) (*Order, error) {
	var err error
	switch spec.Type {
	case OrderTypeKey:
		err = validateKeyOrder(spec.Meta)
	case OrderTypeAsymmetric:
		err = validateAsymmetricOrder(spec.Meta)
	default:
		err = Errorf(ErrInvalid, "Invalid order type: must be 'key' or 'asymmetric'.")
	}
	if err != nil {
		return nil, err
	}
	if spec.Meta.Name != nil && len(*spec.Meta.Name) > MaxNameLength {
		return nil, Errorf(ErrInvalid, "Invalid name: longer than %d characters.", MaxNameLength)
	}
	now := s.Now()
	if spec.Expiration != nil && !spec.Expiration.After(now) {
		return nil, Errorf(ErrInvalid, "Invalid expiration: the date must be in the future.")
	}
	if spec.Type == OrderTypeAsymmetric {
		// Waits for a key-generation slot before the order exists, so a
		// caller who gives up leaves no PENDING order behind.
		release, err := acquireKeygen(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	o := &Order{
		ID: NewID(), ProjectID: caller.ProjectID, CreatorID: caller.UserID,
		Type: spec.Type, Status: StatusPending, Meta: spec.Meta, Created: now, Updated: now,
	}
	// The orders quota applies here; the secrets and containers quotas
	// when the order is fulfilled (see quotas.go).
	if err := s.createWithinQuota(ctx, o.ProjectID, QuotaOrders, "storing order",
		func(qi QuotaInserter, g QuotaGuard) (bool, error) { return qi.CreateOrderGuarded(ctx, o, g) },
		func() error { return s.store.CreateOrder(ctx, o) }); err != nil {
		return nil, err
	}
	// From here the order exists: it is fulfilled and its result stored
	// even when the caller goes away meanwhile. On the request's context,
	// a client giving up during an RSA key generation left the order
	// PENDING for ever (Arca has no worker to finish it), counted against
	// the orders quota and polled for in vain.
	ctx = context.WithoutCancel(ctx)
	if spec.Type == OrderTypeAsymmetric {
		s.fulfilAsymmetricOrder(ctx, caller, o, spec)
	} else {
		s.fulfilKeyOrder(ctx, caller, o, spec.Expiration)
	}
	o.Updated = s.Now()
	if err := s.store.UpdateOrder(ctx, o); err != nil {
		return nil, fmt.Errorf("storing order result: %w", err)
	}
	return o, nil
}

func validateKeyOrder(m OrderMeta) error {
	if m.Algorithm == nil || *m.Algorithm == "" {
		return Errorf(ErrInvalid, "Invalid extra data: 'algorithm' is a required property.")
	}
	if m.BitLength == nil {
		return Errorf(ErrInvalid, "Invalid extra data: 'bit_length' is a required property.")
	}
	if *m.BitLength <= 0 || *m.BitLength > MaxBitLength || *m.BitLength%8 != 0 {
		return Errorf(ErrInvalid, "Invalid extra data: 'bit_length' must be a positive multiple of 8.")
	}
	if m.PayloadContentType != nil && *m.PayloadContentType != ContentTypeBinary {
		return Errorf(ErrInvalid, "Invalid payload_content_type: key orders produce application/octet-stream.")
	}
	// What the generated secret must satisfy (validateSpec), refused here
	// with a 400 rather than after the order exists, as a failed order
	// with a 500 "contact site administrator".
	if len(*m.Algorithm) > 255 || (m.Mode != nil && len(*m.Mode) > 255) {
		return Errorf(ErrInvalid, "Invalid extra data: 'algorithm' or 'mode' longer than 255 characters.")
	}
	return nil
}

// fulfilKeyOrder generates the key; failures are recorded on the order.
func (s *Service) fulfilKeyOrder(ctx context.Context, caller Caller, o *Order, expiration *time.Time) {
	alg := strings.ToLower(*o.Meta.Algorithm)
	bits := *o.Meta.BitLength
	if sizes, ok := symmetricSizes[alg]; !ok || !sizes[bits] {
		o.Status = StatusError
		o.ErrorStatusCode = "400"
		o.ErrorReason = fmt.Sprintf("Process TypeOrder failure seen - please contact site administrator. Key generation of %s with %d bits is not supported.", *o.Meta.Algorithm, bits)
		return
	}
	key, err := s.RandomBytes(bits / 8)
	if err != nil {
		s.orderFailed(o, err)
		return
	}
	mode := "cbc"
	if o.Meta.Mode != nil && *o.Meta.Mode != "" {
		mode = *o.Meta.Mode
	}
	spec := SecretSpec{
		SecretType: SecretTypeSymmetric, Algorithm: alg, BitLength: bits, Mode: mode,
		Expiration: expiration, Payload: key, PayloadContentType: ContentTypeBinary,
	}
	if o.Meta.Name != nil {
		spec.Name = *o.Meta.Name
	}
	sec, err := s.CreateSecret(ctx, caller, spec)
	if errors.Is(err, ErrForbidden) {
		// Over the secrets quota: the client's problem, said as such.
		o.Status, o.ErrorStatusCode, o.ErrorReason = StatusError, "403", describeError(err)
		return
	}
	if err != nil {
		s.orderFailed(o, err)
		return
	}
	o.Status = StatusActive
	o.SecretID = sec.ID
}

func (s *Service) orderFailed(o *Order, err error) {
	s.log.Error().Err(err).Str("order_id", o.ID).Msg("order failed")
	o.Status = StatusError
	o.ErrorStatusCode = "500"
	o.ErrorReason = "Process TypeOrder failure seen - please contact site administrator."
}

// LoadOrder returns an order by id.
func (s *Service) LoadOrder(ctx context.Context, id string) (*Order, error) {
	if !validID(id) {
		return nil, orderNotFound()
	}
	o, err := s.store.GetOrder(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, orderNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading order: %w", err)
	}
	return o, nil
}

func orderNotFound() error { return Errorf(ErrNotFound, "Order not found.") }

// ListOrders returns a page of a project's orders.
func (s *Service) ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*Order, int, error) {
	list, total, err := s.store.ListOrders(ctx, projectID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing orders: %w", err)
	}
	return list, total, nil
}

// DeleteOrder deletes an order; the secret it produced stays.
func (s *Service) DeleteOrder(ctx context.Context, o *Order) error {
	err := s.store.DeleteOrder(ctx, o.ID)
	if errors.Is(err, ErrNotFound) {
		return orderNotFound()
	}
	if err != nil {
		return fmt.Errorf("deleting order: %w", err)
	}
	return nil
}
