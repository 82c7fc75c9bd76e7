// Package sysmeta is how the object server records an encrypted object's
// crypto metadata in Swift: X-Object-Sysmeta-Arca-* keys in the .data
// file's metadata pickle, beside Swift's own keys. It renders an
// objcrypt.Metadata and the plaintext ETag as those keys and parses them
// back (objcrypt/SPEC.md lists them).
//
// What it is not: it does not check the values against the data (the
// object server opens the data for that), and it knows nothing of
// requests: the object server decides which keys a request may set (none
// of these) and which a response shows (none of these).
package sysmeta

import (
	"encoding/base64"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"opendev.org/x/arca/objcrypt"
)

// Prefix is the prefix of Arca's sysmeta keys, canonical case.
const Prefix = "X-Object-Sysmeta-Arca-"

// The key names, after Prefix.
const (
	Version         = "Version"
	Algorithm       = "Algorithm"
	SegmentSize     = "Segment-Size"
	Decorators      = "Decorators"
	KeyID           = "Key-Id"
	WrappedKey      = "Wrapped-Key"
	PlaintextLength = "Plaintext-Length"
	PlaintextEtag   = "Plaintext-Etag"
)

// Object is what the object server records about an encrypted object.
type Object struct {
	objcrypt.Metadata
	// PlaintextEtag is the hex MD5 of the plaintext: the ETag clients see.
	// objcrypt does not carry it, so nothing authenticates it.
	PlaintextEtag string
}

// IsArca reports whether a metadata name has Prefix, in any case.
func IsArca(name string) bool {
	return len(name) >= len(Prefix) && strings.EqualFold(name[:len(Prefix)], Prefix)
}

// Map renders the record as sysmeta keys (canonical names with Prefix;
// values are ASCII, binary values base64). StoredLength is not among them:
// Swift's own Content-Length says it.
func (o *Object) Map() map[string]string {
	m := &o.Metadata
	out := map[string]string{
		Prefix + Version:         strconv.Itoa(m.Version),
		Prefix + Algorithm:       m.Algorithm.String(),
		Prefix + SegmentSize:     strconv.Itoa(m.SegmentSize),
		Prefix + KeyID:           m.KeyID,
		Prefix + WrappedKey:      base64.StdEncoding.EncodeToString(m.WrappedKey),
		Prefix + PlaintextLength: strconv.FormatInt(m.PlaintextLength, 10),
		Prefix + PlaintextEtag:   o.PlaintextEtag,
	}
	if len(m.Decorators) > 0 {
		names := make([]string, len(m.Decorators))
		for i, d := range m.Decorators {
			names[i] = d.String()
		}
		out[Prefix+Decorators] = strings.Join(names, ",")
	}
	return out
}

// Parse reads a record from metadata as Map writes it. Names match
// case-insensitively; names without Prefix are ignored. The values are
// checked for form (objcrypt.Metadata.Validate), not authenticated.
func Parse(h map[string]string) (*Object, error) {
	get := map[string]string{}
	for k, v := range h {
		if name, ok := strings.CutPrefix(textproto.CanonicalMIMEHeaderKey(k), Prefix); ok {
			get[name] = v
		}
	}
	bad := func(name string, e error) error {
		return fmt.Errorf("%w: metadata %s%s: %w", objcrypt.ErrInvalid, Prefix, name, e)
	}
	o := &Object{PlaintextEtag: get[PlaintextEtag]}
	m := &o.Metadata
	var err error
	if m.Version, err = strconv.Atoi(get[Version]); err != nil {
		return nil, bad(Version, err)
	}
	if m.Version != objcrypt.Version {
		return nil, fmt.Errorf("%w: metadata version %d", objcrypt.ErrUnsupported, m.Version)
	}
	if m.Algorithm, err = objcrypt.ParseAlgorithm(get[Algorithm]); err != nil {
		return nil, err
	}
	if m.SegmentSize, err = strconv.Atoi(get[SegmentSize]); err != nil {
		return nil, bad(SegmentSize, err)
	}
	if s := get[Decorators]; s != "" {
		for name := range strings.SplitSeq(s, ",") {
			d, err := objcrypt.ParseDecorator(name)
			if err != nil {
				return nil, err
			}
			m.Decorators = append(m.Decorators, d)
		}
	}
	m.KeyID = get[KeyID]
	if m.WrappedKey, err = base64.StdEncoding.DecodeString(get[WrappedKey]); err != nil {
		return nil, bad(WrappedKey, err)
	}
	if m.PlaintextLength, err = strconv.ParseInt(get[PlaintextLength], 10, 64); err != nil {
		return nil, bad(PlaintextLength, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("metadata %s*: %w", Prefix, err)
	}
	return o, nil
}
