package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
)

// TestAbandonedOrderFinished: a client that gives up while its RSA key is
// generated (barbicanclient's timeout, a dropped connection) leaves an
// order that is finished anyway: ACTIVE with its container. Fulfilment
// ran on the request's context, so the order stayed PENDING for ever
// (Arca has no worker to finish it), counting against the orders quota
// while its client polled in vain.
func TestAbandonedOrderFinished(t *testing.T) {
	e := newEnv(t, dbconn.SQLite)
	hdr := []string{"X-Project-Id", "demo", "X-User-Id", "alice"}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/orders",
		strings.NewReader(`{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":4096}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hdr[0], hdr[1])
	req.Header.Set(hdr[2], hdr[3])
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the 4096-bit key was made within 100 ms (%d): nothing was abandoned; shorten the client's wait", resp.StatusCode)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		orders, _ := e.do("GET", "/v1/orders", "", hdr...).json(t)["orders"].([]any)
		if len(orders) == 1 {
			o, _ := orders[0].(map[string]any)
			if o["status"] == "ACTIVE" && o["container_ref"] != nil {
				return
			}
			if o["status"] != "PENDING" {
				t.Fatalf("the abandoned order: %v", o)
			}
		} else if len(orders) > 1 {
			t.Fatalf("orders: %v", orders)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned order is still not finished: %v", orders)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
