package swiftfilter

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// In the pipeline shape the arca middleware sits right of the proxy's
// listing middlewares, so a container listing reaches it with its sealed
// values (objcrypt/SPEC.md, "Listing ETags"). It sends the tokens of one
// listing page in one request and rewrites the page with the answer; the
// values are opened here, with the reverse proxy's code (listingOpener),
// so that no key ever reaches the Swift proxy.
//
//	request: {"v":1,"op":"open_listing","account":"AUTH_p","container":"c",
//	          "items":[{"name":"o","field":"etag","token":"arca1.k.x"}, ...]}
//	answer:  {"v":1,"values":["<value>",null,...]}   one per item, in order
//	         {"v":1,"status":503,"message":"..."}    fail the listing
//
// account and container are WSGI strings, as a decision's path; name is
// the object's name as the listing shows it. null leaves that token as it
// is: a key that was destroyed or is not the project's, a value that does
// not open, an account that is not one of the filter's.

// opListing is the op of a request that opens a listing's values.
const opListing = "open_listing"

// listingItem is one sealed value of a listing: field is what it was
// sealed for (etag, slo_etag or symlink_target_etag).
type listingItem struct {
	Name  string `json:"name"`
	Field string `json:"field"`
	Token string `json:"token"`
}

// openListing answers an open_listing request; fatal closes the
// connection.
func (d *DecisionServer) openListing(ctx context.Context, req decisionRequest) (ans decisionAnswer, fatal bool) {
	ans.V = DecisionProtocol
	account, okA := wsgiBytes(req.Account)
	container, okC := wsgiBytes(req.Container)
	if !okA || !okC || account == "" || container == "" {
		ans.Error = "open_listing: account and container must be WSGI strings"
		return ans, true
	}
	ans.Values = make([]*string, len(req.Items))
	o, ok := d.filter.listingOpener(ctx, account, container)
	if !ok || len(req.Items) == 0 {
		return ans, false // not an account of the filter's: shown as it is
	}
	o.log = d.log
	start := time.Now()
	opened := 0
	for i, it := range req.Items {
		v, err := o.open(o.objectPath(it.Name, ""), it.Field, it.Token)
		if err != nil {
			d.log.Error().Err(err).Str("account", account).Msg("open_listing: listing keys unavailable")
			return decisionAnswer{V: DecisionProtocol, Status: http.StatusServiceUnavailable,
				Message: fmt.Sprintf("The key service is unavailable; retry later (%d sealed values).", len(req.Items))}, false
		}
		if v != it.Token {
			ans.Values[i] = &v
			opened++
		}
	}
	d.log.Debug().Str("account", account).Int("items", len(req.Items)).Int("opened", opened).
		Dur("took", time.Since(start)).Msg("open_listing")
	return ans, false
}
