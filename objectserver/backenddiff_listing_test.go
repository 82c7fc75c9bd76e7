package objectserver_test

import (
	"context"
	"strings"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// listingOpener opens the sealed ETags of Arca's async pendings with the
// listing keys arca-api hands the filter, so that they compare with the
// plaintext ones Swift writes: the same ETag, once opened, and nothing in
// clear before. A value that does not open is shown as such and differs.
type listingOpener struct{ keys *keyclient.Client }

func (o *listingOpener) openAsync(m, h map[string]any) {
	v, ok := h["x-etag"].(string)
	if !ok {
		return
	}
	account, _ := m["account"].(string)
	container, _ := m["container"].(string)
	obj, _ := m["obj"].(string)
	if strings.HasPrefix(account, ".") {
		return // the expirer queue's entries: not an object's ETag
	}
	path := "/" + account + "/" + container + "/" + obj
	parts := strings.Split(v, ";")
	for i, p := range parts {
		field, val := "etag", strings.TrimSpace(p)
		if i > 0 {
			name, pv, _ := strings.Cut(p, "=")
			field, val = strings.TrimSpace(name), pv
			if field != "slo_etag" && field != "symlink_target_etag" {
				continue
			}
		}
		if val == "" {
			continue
		}
		opened := o.open(strings.TrimPrefix(account, "AUTH_"), path, field, val)
		if i == 0 {
			parts[i] = opened
		} else {
			parts[i] = strings.SplitAfter(p, "=")[0] + opened
		}
	}
	h["x-etag"] = strings.Join(parts, ";")
}

func (o *listingOpener) open(project, path, field, token string) string {
	id, ok := objcrypt.ListingTokenKeyID(token)
	if !ok {
		return "not sealed: " + token
	}
	lk, err := o.keys.ListingKey(context.Background(), project, id)
	if err != nil {
		return "no listing key: " + err.Error()
	}
	c, err := objcrypt.NewListingCipher(id, lk)
	if err != nil {
		return err.Error()
	}
	v, err := c.Open(token, path, field)
	if err != nil {
		return "does not open: " + err.Error()
	}
	return v
}
