package keyclient

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// ListingKeyResolver is what arca-swift-filter needs to open listing
// ETags: a key's listing key (objcrypt.DeriveListingKey), never the key.
// Client implements it.
type ListingKeyResolver interface {
	// ListingKey returns the listing key of one of the project's keys.
	// The caller must not modify or retain the bytes beyond its use.
	ListingKey(ctx context.Context, projectID, keyID string) ([]byte, error)
}

var _ ListingKeyResolver = (*Client)(nil)

// listingKeyLen is the length of a listing key (objcrypt.ListingKeyLen).
const listingKeyLen = 32

// ListingKey returns the listing key of one of the project's keys, from
// arca-api's /v1/project-keys/{id}/listing-key (rule
// project_key:get_listing_key), cached for Options.MaterialTTL like key
// material, failures for Options.ErrorTTL. The slice is shared with the
// cache: callers must not modify it.
func (c *Client) ListingKey(ctx context.Context, projectID, keyID string) ([]byte, error) {
	e, err := c.keyBytes(ctx, keyBytesKind{cache: c.listing, flight: "l", what: "listing key of key", fetch: c.fetchListingKey}, projectID, keyID)
	return e.b, err
}

func (c *Client) fetchListingKey(ctx context.Context, projectID, keyID string) ([]byte, error) {
	path := "/v1/project-keys/" + url.PathEscape(keyID) + "/listing-key?project_id=" + url.QueryEscape(projectID)
	body, _, err := c.get(ctx, projectID, path, "application/octet-stream")
	if err != nil {
		return nil, fmt.Errorf("listing key of key %s of project %s: %w", keyID, projectID, err)
	}
	if len(body) != listingKeyLen {
		return nil, fmt.Errorf("listing key of key %s of project %s: %w: %d bytes", keyID, projectID, ErrUnavailable, len(body))
	}
	return body, nil
}

// NoAuthListingRole is the role a NoAuth client claims for listing keys:
// the filter's, the one role granted them beside the project's own users.
const NoAuthListingRole = "key-manager:swift-filter"

// noAuthRoles is what a NoAuth client claims for path.
func noAuthRoles(path string) string {
	if strings.Contains(path, "/listing-key?") {
		return NoAuthListingRole
	}
	return NoAuthRole
}
