// Package sysmeta is how the object server records an encrypted object's
// crypto metadata in Swift: X-Object-Sysmeta-Arca-* keys in the .data
// file's metadata pickle, beside Swift's own keys. It renders an
// objcrypt.Metadata and the sealed ETag and its MAC as those keys and
// parses them back (objcrypt/SPEC.md lists them), reading the plaintext
// ETag objects written before ETags were encrypted kept instead. It also
// seals and opens a metadata set's user metadata (usermeta.go), kept with
// the id of its key in the .data's sysmeta (DataSet) or, for a fast-POST's
// .meta, in transient sysmeta (MetaSet).
//
// What it is not: it does not check the values against the data (the
// object server opens the data for that), and it knows nothing of
// requests: the object server decides which keys a request may set (none
// of these) and which a response shows (none of these).
package sysmeta

import (
	"encoding/base64"
	"errors"
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
	// PlaintextEtag is only read: objects written before ETags were
	// encrypted have it instead of Etag and Etag-Mac.
	PlaintextEtag = "Plaintext-Etag"
	Etag          = "Etag"
	EtagMac       = "Etag-Mac"
	MetaKeyID     = "Meta-Key-Id"
	// EcEtag is an erasure-coded object's whole MD5
	// (X-Object-Sysmeta-Ec-Etag, which the proxy answers as the object's
	// ETag), sealed under the fragment archive's ETag keys.
	EcEtag = "Ec-Etag"
	// Layout is "ec1" for a fragment archive stored in objcrypt's EC
	// fragment layout (objcrypt/SPEC.md), absent for an objcrypt stream.
	// Such a record has no Version, Algorithm, Segment-Size or
	// Decorators; it has EcFragments and EcMac instead.
	Layout      = "Layout"
	EcFragments = "Ec-Fragments"
	EcMac       = "Ec-Mac"
)

// TransientPrefix is the prefix of Arca's keys in a fast-POST's .meta
// (transient sysmeta, which a .meta replaces as it replaces user
// metadata, where the .data's sysmeta would win), canonical case.
const TransientPrefix = "X-Object-Transient-Sysmeta-Arca-"

// TransientMetaKeyID is the .meta's record of the key its user metadata
// is sealed under.
const TransientMetaKeyID = TransientPrefix + MetaKeyID

// Object is what the object server records about an encrypted object.
type Object struct {
	objcrypt.Metadata
	// SealedEtag and EtagMAC are the plaintext MD5 (the ETag clients see)
	// sealed and MACed under keys from the data key (objcrypt.ETagKeys).
	SealedEtag, EtagMAC string
	// PlaintextEtag is the hex MD5 of an object written before ETags were
	// encrypted (then SealedEtag is empty); never written any more.
	PlaintextEtag string
	// EC is set for a fragment archive in the EC layout (Layout "ec1");
	// then Metadata has only KeyID, WrappedKey and the lengths.
	EC *objcrypt.ECMetadata
}

// ECMetadata is the record of an archive in the EC layout, or nil.
func (o *Object) ECMetadata() *objcrypt.ECMetadata {
	if o.EC == nil {
		return nil
	}
	e := *o.EC
	e.KeyID, e.WrappedKey = o.KeyID, o.WrappedKey
	return &e
}

// IsLegacy reports whether the object was written before its ETag and
// metadata were encrypted (the rewrap job upgrades it).
func (o *Object) IsLegacy() bool { return o.SealedEtag == "" }

// IsArca reports whether a metadata name has Prefix, in any case.
func IsArca(name string) bool {
	return len(name) >= len(Prefix) && strings.EqualFold(name[:len(Prefix)], Prefix)
}

// IsArcaTransient reports whether a metadata name has TransientPrefix, in
// any case.
func IsArcaTransient(name string) bool {
	return len(name) >= len(TransientPrefix) && strings.EqualFold(name[:len(TransientPrefix)], TransientPrefix)
}

// Map renders the record as sysmeta keys (canonical names with Prefix;
// values are ASCII, binary values base64). StoredLength is not among them:
// Swift's own Content-Length says it.
func (o *Object) Map() map[string]string {
	m := &o.Metadata
	if o.EC != nil {
		return map[string]string{
			Prefix + Layout:          objcrypt.ECLayout,
			Prefix + KeyID:           m.KeyID,
			Prefix + WrappedKey:      base64.StdEncoding.EncodeToString(m.WrappedKey),
			Prefix + PlaintextLength: strconv.FormatInt(m.PlaintextLength, 10),
			Prefix + EcFragments:     strconv.FormatInt(o.EC.Fragments, 10),
			Prefix + EcMac:           base64.StdEncoding.EncodeToString(o.EC.MAC),
			Prefix + Etag:            o.SealedEtag,
			Prefix + EtagMac:         o.EtagMAC,
		}
	}
	out := map[string]string{
		Prefix + Version:         strconv.Itoa(m.Version),
		Prefix + Algorithm:       m.Algorithm.String(),
		Prefix + SegmentSize:     strconv.Itoa(m.SegmentSize),
		Prefix + KeyID:           m.KeyID,
		Prefix + WrappedKey:      base64.StdEncoding.EncodeToString(m.WrappedKey),
		Prefix + PlaintextLength: strconv.FormatInt(m.PlaintextLength, 10),
	}
	for name, v := range map[string]string{Etag: o.SealedEtag, EtagMac: o.EtagMAC, PlaintextEtag: o.PlaintextEtag} {
		if v != "" {
			out[Prefix+name] = v
		}
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
	o := &Object{PlaintextEtag: get[PlaintextEtag], SealedEtag: get[Etag], EtagMAC: get[EtagMac]}
	m := &o.Metadata
	var err error
	if l, ok := get[Layout]; ok {
		return parseEC(o, get, l)
	}
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
	if (o.SealedEtag == "") != (o.EtagMAC == "") {
		return nil, fmt.Errorf("%w: metadata %s%s and %s%s go together", objcrypt.ErrInvalid, Prefix, Etag, Prefix, EtagMac)
	}
	if o.SealedEtag != "" && o.PlaintextEtag != "" {
		return nil, fmt.Errorf("%w: metadata %s%s beside a sealed ETag", objcrypt.ErrInvalid, Prefix, PlaintextEtag)
	}
	return o, nil
}

// parseEC reads the record of an archive in the EC layout: key, length,
// fragment count, archive MAC and the sealed ETag, nothing else of
// objcrypt's stream record.
func parseEC(o *Object, get map[string]string, layout string) (*Object, error) {
	bad := func(name string, e error) error {
		return fmt.Errorf("%w: metadata %s%s: %w", objcrypt.ErrInvalid, Prefix, name, e)
	}
	if layout != objcrypt.ECLayout {
		return nil, fmt.Errorf("%w: layout %.20q", objcrypt.ErrUnsupported, layout)
	}
	for _, name := range []string{Version, Algorithm, SegmentSize, Decorators, PlaintextEtag} {
		if _, ok := get[name]; ok {
			return nil, bad(name, errors.New("not part of an EC layout record"))
		}
	}
	m, ec := &o.Metadata, &objcrypt.ECMetadata{}
	var err error
	m.KeyID = get[KeyID]
	if m.KeyID == "" || len(m.KeyID) > objcrypt.MaxKeyIDLen {
		return nil, bad(KeyID, errors.New("length"))
	}
	if m.WrappedKey, err = base64.StdEncoding.Strict().DecodeString(get[WrappedKey]); err != nil {
		return nil, bad(WrappedKey, err)
	}
	if m.PlaintextLength, err = strconv.ParseInt(get[PlaintextLength], 10, 64); err != nil || m.PlaintextLength < 0 {
		return nil, bad(PlaintextLength, errors.New("not a length"))
	}
	if ec.Fragments, err = strconv.ParseInt(get[EcFragments], 10, 64); err != nil || ec.Fragments < 0 {
		return nil, bad(EcFragments, errors.New("not a count"))
	}
	if ec.MAC, err = base64.StdEncoding.Strict().DecodeString(get[EcMac]); err != nil || len(ec.MAC) != 32 {
		return nil, bad(EcMac, errors.New("not a 32-byte MAC"))
	}
	if o.SealedEtag == "" || o.EtagMAC == "" {
		return nil, bad(Etag, errors.New("an EC layout record has a sealed ETag and its MAC"))
	}
	m.StoredLength, ec.Length = m.PlaintextLength, m.PlaintextLength
	o.EC = ec
	return o, nil
}
