package swiftfilter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objcrypt"
)

// Listing ETags (objcrypt/SPEC.md, "Listing ETags"): the container
// databases hold each object's ETag sealed under its project key's listing
// key; the filter opens them in JSON and XML container listings, on the
// way out, so that clients see the MD5s Swift would show. Text listings
// carry no hash and pass as they are.
//
// The body is streamed: it is rewritten one entry at a time, never held
// whole. Its length changes (a token is longer than the MD5 it seals), so
// the upstream's Content-Length is dropped. Up to primeBytes of rewritten
// listing are prepared before the answer starts: a listing that ends
// within them gets its exact Content-Length (most listings), a longer one
// goes out chunked (its length is known only at its end). Preparing first
// also lets a key service outage at the first sealed entries answer 503.
//
// Failing closed: the key service unavailable (or the filter refused
// its listing keys) fails the listing: 503 before the answer starts, the
// connection cut after (never a listing that looks complete with entries
// missing). A key that was destroyed or is not the project's, or a value
// that does not open, leaves that entry's value as it is: an opaque token
// where an MD5 would be, never a wrong MD5.

// primeBytes is how much rewritten listing is prepared before the answer.
const primeBytes = 128 << 10

// maxListingEntry bounds one entry of a listing: Swift's entries are a few
// KiB at most (a 1024-byte name, escaped).
const maxListingEntry = 256 << 10

// errListingKeys: the listing keys could not be had; the listing fails.
var errListingKeys = errors.New("swiftfilter: listing keys unavailable")

// listingFormat is how a listing body is written.
type listingFormat int

const (
	listingJSON listingFormat = iota + 1
	listingXML
)

// listingFormatOf is the format of a container GET's answer, 0 when it is
// not a listing the filter rewrites.
func listingFormatOf(res *http.Response) listingFormat {
	if res.StatusCode != http.StatusOK || res.Request == nil || res.Request.Method != http.MethodGet ||
		res.Header.Get("Content-Encoding") != "" {
		return 0
	}
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "application/json":
		return listingJSON
	case "application/xml", "text/xml":
		return listingXML
	}
	return 0
}

// openListing rewrites a container listing's body (proxy.go's
// ModifyResponse). Anything else passes untouched.
func (f *Filter) openListing(res *http.Response) error {
	format := listingFormatOf(res)
	if format == 0 {
		return nil
	}
	// A path the filter could not parse never went upstream.
	target, perr := ParsePath(res.Request.URL.Path)
	if perr != nil || target.Container == "" || target.Object != "" {
		return nil //nolint:nilerr // not a container listing: passed as it is
	}
	opener, ok := f.listingOpener(res.Request.Context(), target.Account, target.Container)
	if !ok {
		return nil
	}
	opener.versions = res.Request.URL.Query().Has("versions")
	lb := &listingBody{src: res.Body, format: format, opener: opener}
	if err := lb.fill(primeBytes); err != nil && !errors.Is(err, io.EOF) {
		res.Body.Close()
		return err
	}
	res.Body = lb
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	if errors.Is(lb.err, io.EOF) {
		res.ContentLength = int64(len(lb.out))
		res.Header.Set("Content-Length", strconv.Itoa(len(lb.out)))
	}
	return nil
}

// listingOpener is the opener of the listing of account/container; false
// when the account is not one of the filter's projects' (nothing of it is
// sealed) or the key client serves no listing keys.
func (f *Filter) listingOpener(ctx context.Context, account, container string) (*listingOpener, bool) {
	project, ok := f.prefixes.ProjectOf(account)
	keys, can := f.keys.(keyclient.ListingKeyResolver)
	if !ok || !can {
		return nil, false
	}
	return &listingOpener{
		ctx: ctx, keys: keys, project: project, log: f.log,
		prefix: "/" + account + "/" + container + "/",
		// Object versioning's ?versions listing shows the versions kept
		// in its reserved container, sealed for their paths there.
		versionsPrefix: "/" + account + "/\x00versions\x00" + container + "/",
		ciphers:        map[string]*objcrypt.ListingCipher{},
	}, true
}

// listingOpener opens the sealed values of one listing: its account and
// container, its project's listing keys (one cipher per key id, fetched
// once per listing, from the key client's cache nearly always).
type listingOpener struct {
	ctx     context.Context
	keys    keyclient.ListingKeyResolver
	project string
	prefix  string // "/account/container/"
	// versionsPrefix is the reserved container of object versioning's
	// versions ("/account/\x00versions\x00container/"), versions whether
	// the listing is a ?versions one.
	versionsPrefix string
	versions       bool
	log            zerolog.Logger
	ciphers        map[string]*objcrypt.ListingCipher // nil entry: the key is gone
}

// objectPath is the path an entry's values were sealed for: the listed
// container's object, or, in a ?versions listing, the version object
// swift's object versioning keeps for a version_id other than "null"
// (named "\x00<name>\x00<inverted version>" in its reserved container).
func (o *listingOpener) objectPath(name, version string) string {
	if !o.versions || version == "" || version == "null" {
		return o.prefix + name
	}
	inv, ok := invertTimestamp(version)
	if !ok {
		return o.prefix + name
	}
	return o.versionsPrefix + "\x00" + name + "\x00" + inv
}

// invertTimestamp is Swift's ~Timestamp(ts) in its normal form: the
// version part of a version object's name, which sorts newest first.
func invertTimestamp(ts string) (string, bool) {
	whole, frac, _ := strings.Cut(ts, ".")
	if whole == "" || len(whole) > 10 || len(frac) > 5 {
		return "", false
	}
	frac += strings.Repeat("0", 5-len(frac))
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || w < 0 || f < 0 {
		return "", false
	}
	inv := int64(999999999999999) - (w*100000 + f)
	if inv < 0 {
		return "", false
	}
	return fmt.Sprintf("%010d.%05d", inv/100000, inv%100000), true
}

// open returns the value a token seals for field of the object at path,
// or the token itself when it does not open for good (destroyed or
// foreign key, altered value). It fails only when the key service cannot
// say.
func (o *listingOpener) open(path, field, token string) (string, error) {
	id, ok := objcrypt.ListingTokenKeyID(token)
	if !ok {
		return token, nil
	}
	c, seen := o.ciphers[id]
	if !seen {
		var err error
		if c, err = o.cipher(id); err != nil {
			return "", err
		}
		o.ciphers[id] = c
	}
	if c == nil {
		return token, nil
	}
	v, err := c.Open(token, path, field)
	if err != nil {
		o.log.Warn().Err(err).Str("project_id", o.project).Str("key_id", id).
			Msg("a listing value does not open: shown sealed")
		return token, nil
	}
	return v, nil
}

func (o *listingOpener) cipher(id string) (*objcrypt.ListingCipher, error) {
	lk, err := o.keys.ListingKey(o.ctx, o.project, id)
	switch {
	case errors.Is(err, keyclient.ErrDestroyed), errors.Is(err, keyclient.ErrNotFound):
		o.log.Info().Err(err).Str("project_id", o.project).Str("key_id", id).
			Msg("listing values under a key that is gone: shown sealed")
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: project %s, key %s: %w", errListingKeys, o.project, id, err)
	}
	c, err := objcrypt.NewListingCipher(id, lk)
	if err != nil {
		return nil, fmt.Errorf("%w: project %s, key %s: %w", errListingKeys, o.project, id, err)
	}
	return c, nil
}

// listingBody rewrites a listing as it is read: bytes between entries are
// copied, each entry (a JSON object in the top-level array, an XML
// <object> element) is held until it is whole, then rewritten.
type listingBody struct {
	src    io.ReadCloser
	format listingFormat
	opener *listingOpener

	in  []byte // read, not yet rewritten
	out []byte // rewritten, not yet returned
	off int    // of out already returned
	err error  // of the source, once it ended (io.EOF: cleanly)
}

func (b *listingBody) Read(p []byte) (int, error) {
	for b.off == len(b.out) {
		if b.err != nil {
			return 0, b.err
		}
		b.out, b.off = b.out[:0], 0
		if err := b.fill(1); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	n := copy(p, b.out[b.off:])
	b.off += n
	return n, nil
}

func (b *listingBody) Close() error { return b.src.Close() }

// fill reads and rewrites until at least want bytes wait in out, or the
// source ended (b.err set; returned too).
func (b *listingBody) fill(want int) error {
	var buf [32 << 10]byte
	for len(b.out)-b.off < want && b.err == nil {
		n, err := b.src.Read(buf[:])
		b.in = append(b.in, buf[:n]...)
		if perr := b.process(); perr != nil {
			b.err = perr
			return perr
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b.in) > 0 {
				// An entry the listing never closed: not Swift's. Copy
				// it as it is (nothing can be opened in it reliably).
				b.out = append(b.out, b.in...)
				b.in = b.in[:0]
			}
			b.err = err
		}
	}
	if b.err != nil {
		return b.err
	}
	return nil
}

// process rewrites every whole entry in b.in and copies what lies
// between them; an entry not yet whole stays in b.in.
func (b *listingBody) process() error {
	var done int
	var err error
	if b.format == listingJSON {
		done, err = b.processJSON()
	} else {
		done, err = b.processXML()
	}
	if err != nil {
		return err
	}
	b.in = append(b.in[:0], b.in[done:]...)
	if len(b.in) > maxListingEntry {
		return fmt.Errorf("swiftfilter: a listing entry over %d bytes", maxListingEntry)
	}
	return nil
}
