package objectserver

import (
	"fmt"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// Listing ETags (objcrypt/SPEC.md, "Listing ETags"): the container update
// carries the object's ETag sealed under the project key's listing key, so
// that no container database or async pending holds a plaintext MD5.
// arca-swift-filter opens it in listings for clients.

// sealedListingParams are the X-Etag parameters Swift's middlewares set
// whose values are MD5s: SLO's slo_etag and a static symlink's target
// ETag. Every other parameter (a symlink's target path, account and size)
// is a name or a size, in clear anyway, and is kept byte for byte so that
// the proxy's SLO and symlink middlewares still find it.
var sealedListingParams = map[string]bool{"slo_etag": true, "symlink_target_etag": true}

// listingPath is the path listing values are bound to: the object as a
// client names it, also when the update goes to a shard container.
func listingPath(req *request) string {
	return "/" + req.account + "/" + req.container + "/" + req.object
}

// sealListingEtag replaces upd's X-Etag (with the container-update
// overrides already applied) by its sealed form under key's listing key.
func (s *Server) sealListingEtag(key objcrypt.ProjectKey, path string, upd map[string]string) error {
	v, ok := upd["X-Etag"]
	if !ok {
		return nil
	}
	c, err := s.listingKeys.get(key)
	if err != nil {
		return fmt.Errorf("listing cipher of %s: %w", key.ID, err)
	}
	sealed, err := sealEtagValue(c, path, v)
	if err != nil {
		return fmt.Errorf("sealing the listing ETag of %s: %w", path, err)
	}
	upd["X-Etag"] = sealed
	return nil
}

// sealEtagValue seals "etag *(; param)": the etag part, and the values of
// sealedListingParams. An empty etag part (an override of "") has nothing
// to hide and stays; a part that is sealed already (an override that a
// middleware copied from a sealed update) is not sealed twice.
func sealEtagValue(c *objcrypt.ListingCipher, path, v string) (string, error) {
	parts := strings.Split(v, ";")
	etag := strings.TrimSpace(parts[0])
	if etag != "" && !objcrypt.IsListingToken(etag) {
		tok, err := c.Seal(path, "etag", etag, nil)
		if err != nil {
			return "", err
		}
		parts[0] = tok
	}
	for i := 1; i < len(parts); i++ {
		name, val, ok := strings.Cut(parts[i], "=")
		field := strings.ToLower(strings.TrimSpace(name))
		if !ok || !sealedListingParams[field] {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if val == "" || objcrypt.IsListingToken(val) {
			continue
		}
		tok, err := c.Seal(path, field, val, nil)
		if err != nil {
			return "", err
		}
		parts[i] = name + "=" + tok
	}
	return strings.Join(parts, ";"), nil
}

// sealPostListing seals a POST's container update under the listing key of
// the key the object was written with (fetched, from the cache nearly
// always, when the POST authenticated the object). It reports whether the
// update may go: never with a plaintext ETag, so when the key cannot be
// had the update is not sent (the .meta is committed; the listing keeps
// the entry's previous content type until the next update).
func (s *Server) sealPostListing(req *request, st *postState, upd map[string]string) bool {
	if st.view.crypt == nil {
		return true // stored in the clear, ETag and all
	}
	key, err := s.readKey(req.ctx, req.account, st.view.crypt.KeyID)
	if err == nil {
		err = s.sealListingEtag(key, listingPath(req), upd)
		clear(key.Key)
	}
	if err != nil {
		req.log.Error().Err(err).Msg("container update not sent: the listing ETag cannot be sealed")
		return false
	}
	return true
}
