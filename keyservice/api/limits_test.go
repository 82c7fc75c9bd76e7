package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestLimitsHoldOnEveryPath: what one path bounds, the others bound too,
// with a 400 and nothing stored (each found by a review: the bound held
// on one route only, or failed later with a 500).
//   - Metadata keys: a PUT of more than 1000 is refused, and one POST at
//     a time went past it without end (and a GET answers them all).
//   - A key order's mode over 255 characters became an ERROR order with
//     a 500 "contact site administrator".
//   - An expiration at the end of year 9999 west of UTC is in year 10000
//     in UTC, which the insert refused with a 500.
func TestLimitsHoldOnEveryPath(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, e *env) {
		id := e.createSecret(`{"name":"m"}`)
		base := "/v1/secrets/" + id + "/metadata"
		md := make([]string, 1000)
		for i := range md {
			md[i] = fmt.Sprintf(`"k%d":"v"`, i)
		}
		e.mustStatus(e.do("PUT", base, `{"metadata":{`+strings.Join(md, ",")+`}}`), http.StatusCreated)
		e.mustStatus(e.do("POST", base, `{"key":"one-more","value":"v"}`), http.StatusBadRequest)
		e.mustStatus(e.do("POST", base, `{"key":"k7","value":"v"}`), http.StatusConflict)
		e.mustStatus(e.do("DELETE", base+"/k7", ""), http.StatusNoContent)
		e.mustStatus(e.do("POST", base, `{"key":"one-more","value":"v"}`), http.StatusCreated)
		if got := e.do("GET", base, "").json(t)["metadata"].(map[string]any); len(got) != 1000 {
			t.Errorf("%d metadata keys, want 1000", len(got))
		}

		r := e.do("POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256,"mode":"`+strings.Repeat("c", 300)+`"}}`)
		e.mustStatus(r, http.StatusBadRequest)
		if orders := e.do("GET", "/v1/orders", "").json(t)["orders"].([]any); len(orders) != 0 {
			t.Errorf("a refused order was stored: %v", orders)
		}

		r = e.do("POST", "/v1/secrets", `{"name":"late","payload":"x","payload_content_type":"text/plain","expiration":"9999-12-31T23:00:00-05:00"}`)
		e.mustStatus(r, http.StatusBadRequest)
		r = e.do("POST", "/v1/secrets", `{"name":"last","payload":"x","payload_content_type":"text/plain","expiration":"9999-12-31T23:00:00Z"}`)
		e.mustStatus(r, http.StatusCreated)
	})
}
