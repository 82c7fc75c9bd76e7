package objcrypt

import (
	"encoding/base64"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// SysmetaPrefix is the prefix of the Swift system-metadata headers that
// carry an object's crypto metadata (Metadata.Map and ParseMetadata).
const SysmetaPrefix = "X-Object-Sysmeta-Arca-"

// Metadata is what an object server keeps beside an encrypted object. The
// stored file is self-describing (its header repeats the format fields and
// the wrapped key); metadata is what the server needs without opening the
// file: the plaintext length and ETag for HEAD and container listings, and
// the key id to fetch the project key. After a Rewrap the metadata's key id
// and wrapped key supersede the header's.
type Metadata struct {
	Version         int
	Algorithm       Algorithm
	SegmentSize     int
	Decorators      []Decorator
	KeyID           string
	WrappedKey      []byte
	PlaintextLength int64
	PlaintextMD5    string // hex; the ETag clients see

	// Not part of Map: the object server records these in Swift's own
	// metadata (Content-Length and ETag of the file as stored).
	StoredLength int64
	StoredMD5    string // hex; empty unless WriterOptions.StoredMD5
}

// Layout returns the object's layout, computed from the metadata alone.
func (m *Metadata) Layout() Layout {
	return Layout{
		HeaderLen:   int64(headerLen(len(m.KeyID), len(m.Decorators))),
		SegmentSize: int64(m.SegmentSize),
		Decorated:   len(m.Decorators) > 0,
		decorators:  len(m.Decorators),
	}
}

// Metadata header names, after SysmetaPrefix.
const (
	mdVersion    = "Version"
	mdAlgorithm  = "Algorithm"
	mdSegment    = "Segment-Size"
	mdDecorators = "Decorators"
	mdKeyID      = "Key-Id"
	mdWrapped    = "Wrapped-Key"
	mdLength     = "Plaintext-Length"
	mdEtag       = "Plaintext-Etag"
)

// Map renders the metadata as Swift sysmeta headers (canonical names with
// SysmetaPrefix; values are ASCII, binary values base64).
func (m *Metadata) Map() map[string]string {
	out := map[string]string{
		SysmetaPrefix + mdVersion:   strconv.Itoa(m.Version),
		SysmetaPrefix + mdAlgorithm: m.Algorithm.String(),
		SysmetaPrefix + mdSegment:   strconv.Itoa(m.SegmentSize),
		SysmetaPrefix + mdKeyID:     m.KeyID,
		SysmetaPrefix + mdWrapped:   base64.StdEncoding.EncodeToString(m.WrappedKey),
		SysmetaPrefix + mdLength:    strconv.FormatInt(m.PlaintextLength, 10),
		SysmetaPrefix + mdEtag:      m.PlaintextMD5,
	}
	if len(m.Decorators) > 0 {
		names := make([]string, len(m.Decorators))
		for i, d := range m.Decorators {
			names[i] = d.String()
		}
		out[SysmetaPrefix+mdDecorators] = strings.Join(names, ",")
	}
	return out
}

// ParseMetadata reads metadata from headers as Map writes them. Header names
// match case-insensitively; headers without SysmetaPrefix are ignored.
// The values are not authenticated here: the wrapped key is (by its AEAD)
// when NewReader uses it, and the plaintext length and ETag are facts the
// reader re-derives from the authenticated data.
func ParseMetadata(h map[string]string) (*Metadata, error) {
	get := map[string]string{}
	for k, v := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if name, ok := strings.CutPrefix(ck, SysmetaPrefix); ok {
			get[name] = v
		}
	}
	m := &Metadata{}
	var err error
	bad := func(name string, e error) error {
		return fmt.Errorf("%w: metadata %s%s: %w", ErrInvalid, SysmetaPrefix, name, e)
	}
	if m.Version, err = strconv.Atoi(get[mdVersion]); err != nil {
		return nil, bad(mdVersion, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("%w: metadata version %d", ErrUnsupported, m.Version)
	}
	if m.Algorithm, err = ParseAlgorithm(get[mdAlgorithm]); err != nil {
		return nil, err
	}
	if m.SegmentSize, err = strconv.Atoi(get[mdSegment]); err != nil {
		return nil, bad(mdSegment, err)
	}
	if err := checkSegmentSize(m.SegmentSize); err != nil {
		return nil, bad(mdSegment, err)
	}
	if s := get[mdDecorators]; s != "" {
		for name := range strings.SplitSeq(s, ",") {
			d, err := ParseDecorator(name)
			if err != nil {
				return nil, err
			}
			m.Decorators = append(m.Decorators, d)
		}
		if len(m.Decorators) > maxDecorators {
			return nil, bad(mdDecorators, fmt.Errorf("%d decorators", len(m.Decorators)))
		}
	}
	m.KeyID = get[mdKeyID]
	if m.KeyID == "" || len(m.KeyID) > MaxKeyIDLen {
		return nil, bad(mdKeyID, fmt.Errorf("length %d", len(m.KeyID)))
	}
	if m.WrappedKey, err = base64.StdEncoding.DecodeString(get[mdWrapped]); err != nil {
		return nil, bad(mdWrapped, err)
	}
	if m.PlaintextLength, err = strconv.ParseInt(get[mdLength], 10, 64); err != nil || m.PlaintextLength < 0 {
		return nil, bad(mdLength, fmt.Errorf("%q", get[mdLength]))
	}
	m.PlaintextMD5 = get[mdEtag]
	return m, nil
}
