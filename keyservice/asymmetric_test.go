package keyservice

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"opendev.org/x/arca/keyservice/envelope"
)

// orderCounter is a Store that knows no quotas and counts stored orders;
// any other call panics (the embedded nil Store), which the test would
// show.
type orderCounter struct {
	Store
	orders int
}

func (c *orderCounter) GetProjectQuotas(context.Context, string) (*ProjectQuotas, error) {
	return nil, ErrNotFound
}

func (c *orderCounter) CreateOrder(context.Context, *Order) error { c.orders++; return nil }

// TestAsymmetricOrderWaitsForASlot: with every key-generation slot taken,
// an asymmetric order waits; a caller who gives up gets an error and
// leaves no order (not even a PENDING one) behind.
func TestAsymmetricOrderWaitsForASlot(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{{ID: "mk", Key: bytes.Repeat([]byte{7}, envelope.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	store := &orderCounter{}
	svc, err := New(store, ring, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range cap(keygenSlots) {
		keygenSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(keygenSlots) {
			<-keygenSlots
		}
	})
	alg, bits := "rsa", 2048
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = svc.CreateOrder(ctx, Caller{ProjectID: "p", UserID: "u"},
		OrderSpec{Type: OrderTypeAsymmetric, Meta: OrderMeta{Algorithm: &alg, BitLength: &bits}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateOrder with no free slot: %v, want the caller's deadline", err)
	}
	if store.orders != 0 {
		t.Fatalf("%d orders stored by a caller who gave up", store.orders)
	}
}
