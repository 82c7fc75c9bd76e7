package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"opendev.org/x/arca/keyservice"
)

func strp(s string) *string { return &s }
func intp(i int) *int       { return &i }

func testOrders(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	o := &keyservice.Order{
		ID: uuid.NewString(), ProjectID: "p", CreatorID: "u", Type: keyservice.OrderTypeKey, Status: keyservice.StatusPending,
		Meta:    keyservice.OrderMeta{Name: strp("k"), Algorithm: strp("aes"), BitLength: intp(256), Mode: strp("cbc"), Expiration: strp("2031-01-01T00:00:00")},
		Created: base, Updated: base,
	}
	must(t, s.CreateOrder(c, o))
	got, err := s.GetOrder(c, o.ID)
	must(t, err)
	if got.ProjectID != "p" || got.CreatorID != "u" || got.Type != "key" || got.Status != "PENDING" || got.SecretID != "" ||
		*got.Meta.Name != "k" || *got.Meta.BitLength != 256 || got.Meta.PayloadContentType != nil || *got.Meta.Expiration != "2031-01-01T00:00:00" {
		t.Errorf("GetOrder = %+v", got)
	}
	sameTime(t, "Created", got.Created, base)
	wantErr(t, s.CreateOrder(c, o), keyservice.ErrConflict, "CreateOrder with a used id")

	secretID := uuid.NewString()
	o.Status, o.SecretID, o.Updated = keyservice.StatusActive, secretID, base.Add(time.Second)
	must(t, s.UpdateOrder(c, o))
	must(t, s.UpdateOrder(c, o)) // unchanged rewrite is no miss
	got, err = s.GetOrder(c, o.ID)
	must(t, err)
	if got.Status != "ACTIVE" || got.SecretID != secretID {
		t.Errorf("after UpdateOrder: %+v", got)
	}
	sameTime(t, "Updated", got.Updated, base.Add(time.Second))

	failed := &keyservice.Order{ID: uuid.NewString(), ProjectID: "p", CreatorID: "u", Type: keyservice.OrderTypeKey,
		Status: keyservice.StatusError, ErrorStatusCode: "400", ErrorReason: "Unsupported algorithm", Created: base, Updated: base}
	must(t, s.CreateOrder(c, failed))
	got, err = s.GetOrder(c, failed.ID)
	must(t, err)
	if got.ErrorStatusCode != "400" || got.ErrorReason != "Unsupported algorithm" || got.Meta.Name != nil {
		t.Errorf("failed order: %+v", got)
	}

	missing := &keyservice.Order{ID: uuid.NewString(), Status: keyservice.StatusActive}
	wantErr(t, s.UpdateOrder(c, missing), keyservice.ErrNotFound, "UpdateOrder of an unknown order")
	_, err = s.GetOrder(c, missing.ID)
	wantErr(t, err, keyservice.ErrNotFound, "GetOrder of an unknown order")

	// Deleting an order leaves its secret alone.
	sec := newSecret("p")
	sec.ID = secretID
	must(t, s.CreateSecret(c, sec))
	must(t, s.DeleteOrder(c, o.ID))
	_, err = s.GetOrder(c, o.ID)
	wantErr(t, err, keyservice.ErrNotFound, "GetOrder after delete")
	wantErr(t, s.DeleteOrder(c, o.ID), keyservice.ErrNotFound, "second DeleteOrder")
	_, err = s.GetSecret(c, secretID)
	must(t, err)
}

func testListOrders(t *testing.T, s keyservice.Store) {
	c := ctx(t)
	var want []string
	for i := range 12 {
		o := &keyservice.Order{ID: uuid.NewString(), ProjectID: "p", CreatorID: "u", Type: keyservice.OrderTypeKey,
			Status: keyservice.StatusActive, Created: base.Add(time.Duration(11-i) * time.Minute)}
		must(t, s.CreateOrder(c, o))
		want = append(want, o.ID)
	}
	slices.Reverse(want) // oldest first
	must(t, s.CreateOrder(c, &keyservice.Order{ID: uuid.NewString(), ProjectID: "q", Type: keyservice.OrderTypeKey, Status: keyservice.StatusActive}))
	var got []string
	for offset := 0; offset < 15; offset += 5 {
		list, total, err := s.ListOrders(c, "p", 5, offset)
		must(t, err)
		if total != 12 {
			t.Fatalf("total %d", total)
		}
		for _, o := range list {
			got = append(got, o.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("orders %v, want %v", got, want)
	}
	list, total, err := s.ListOrders(c, "nobody", 5, 0)
	must(t, err)
	if total != 0 || len(list) != 0 {
		t.Errorf("unknown project: %d of %d", len(list), total)
	}
}
