package swiftfilter

import (
	"crypto/md5" //nolint:gosec // G501: dlo's ETag is an MD5, as Swift defines it
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// A dynamic large object's ETag is computed by the proxy's dlo middleware
// from its segments' container listing: the MD5 of their listing hashes,
// quoted. Behind the filter those hashes are sealed (objcrypt/SPEC.md,
// "Listing ETags"), so dlo's ETag is the MD5 of the sealed values. On a
// GET or HEAD answer that names a manifest (X-Object-Manifest) and carries
// an ETag, the filter lists the segments again, as the caller and with the
// caller's token, through the Swift proxy, opens their hashes and writes
// the ETag dlo computes from the opened listing. dlo computes one only when
// its first listing page held every segment, fewer than Swift's
// container_listing_limit; else it leaves the manifest object's own ETag,
// and so does the filter when the page it reads is full.
//
// The listing refused (an anonymous TempURL, a token that cannot list)
// or a segment hash that does not open leaves dlo's ETag as it is; the key
// service unavailable fails the request, as it fails listings.

// maxDLOListing bounds the segments' listing read: one page of at most
// 10000 entries of a few hundred bytes.
const maxDLOListing = 32 << 20

// containerListingLimit is Swift's default container_listing_limit, the
// most entries a listing page holds: dlo computes a DLO's ETag only from a
// first page with fewer segments.
const containerListingLimit = 10000

// dloETag rewrites the ETag of a DLO manifest's GET or HEAD answer
// (proxy.go's ModifyResponse); client sends the segments' listing
// request to the upstream.
func (f *Filter) dloETag(res *http.Response, client *http.Client) error {
	req := res.Request
	manifest := res.Header.Get("X-Object-Manifest")
	if manifest == "" || req == nil || (req.Method != http.MethodGet && req.Method != http.MethodHead) ||
		(res.StatusCode != http.StatusOK && res.StatusCode != http.StatusPartialContent) || res.Header.Get("Etag") == "" {
		return nil
	}
	// ?multipart-manifest=get: the manifest object itself, dlo passes it
	// by (swob's params: the last value counts).
	if mm := req.URL.Query()["multipart-manifest"]; len(mm) > 0 && mm[len(mm)-1] == "get" {
		return nil
	}
	value, err := url.PathUnescape(manifest)
	if err != nil {
		return nil //nolint:nilerr // not a manifest dlo reads either
	}
	container, prefix, ok := strings.Cut(value, "/")
	target, perr := ParsePath(req.URL.Path)
	if !ok || container == "" || perr != nil || !target.IsObject() {
		return nil //nolint:nilerr // not a DLO the filter can list: passed as it is
	}
	opener, ok := f.listingOpener(req.Context(), target.Account, container)
	if !ok {
		return nil
	}
	hashes, err := segmentHashes(req, client, target, container, prefix)
	if err != nil {
		f.log.Warn().Err(err).Str("path", req.URL.Path).Msg("a DLO's segments could not be listed: its ETag is dlo's")
		return nil //nolint:nilerr // the answer goes on with dlo's ETag
	}
	if len(hashes) >= containerListingLimit {
		return nil // dlo's: the manifest's own ETag
	}
	sum := md5.New() //nolint:gosec // G401: Swift's DLO ETag, not a protection
	for _, seg := range hashes {
		h := seg.Hash
		if objcrypt.IsListingToken(h) {
			opened, err := opener.open(opener.objectPath(seg.Name, ""), "etag", h)
			if err != nil {
				return err
			}
			if opened == h {
				return nil // does not open: dlo's ETag stays
			}
			h = opened
		}
		sum.Write([]byte(strings.Trim(h, `"`))) // dlo's normalize_etag
	}
	res.Header.Set("Etag", `"`+hex.EncodeToString(sum.Sum(nil))+`"`)
	return nil
}

// segmentHashes lists the DLO's segments (container, prefix, in the
// manifest's account) as the caller.
func segmentHashes(req *http.Request, client *http.Client, target Target, container, prefix string) ([]struct{ Name, Hash string }, error) {
	u := *req.URL
	u.Path = "/" + target.Version + "/" + target.Account + "/" + container
	u.RawPath = ""
	u.RawQuery = "format=json&prefix=" + url.QueryEscape(prefix)
	// G704: the URL is the configured upstream's, only the path and query
	// are the client's (as in every request the filter forwards).
	lr, err := http.NewRequestWithContext(req.Context(), http.MethodGet, u.String(), nil) //nolint:gosec // see above
	if err != nil {
		return nil, fmt.Errorf("segments' listing: %w", err)
	}
	lr.Host = req.Host
	if tok := req.Header.Get("X-Auth-Token"); tok != "" {
		lr.Header.Set("X-Auth-Token", tok)
	}
	lr.Header.Set("User-Agent", "arca-swift-filter DLO")
	resp, err := client.Do(lr) //nolint:gosec // G704: the upstream, see above
	if err != nil {
		return nil, fmt.Errorf("segments' listing: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("segments' listing: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDLOListing+1))
	if err != nil {
		return nil, fmt.Errorf("segments' listing: %w", err)
	}
	if len(body) > maxDLOListing {
		return nil, errors.New("segments' listing: too long")
	}
	var segs []struct{ Name, Hash string }
	if err := json.Unmarshal(body, &segs); err != nil {
		return nil, fmt.Errorf("segments' listing: %w", err)
	}
	return segs, nil
}
