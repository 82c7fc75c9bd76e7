package objcrypt

import "fmt"

// Metadata is what a caller keeps beside an encrypted object. The stored
// file is self-describing (its header repeats the format fields and the
// wrapped key); metadata is what a caller needs without opening the file:
// the plaintext length, and the key id to fetch the project key. After a
// Rewrap the metadata's key id and wrapped key supersede the header's.
// How it is recorded is the caller's business (the object server keeps it
// in Swift sysmeta).
type Metadata struct {
	Version         int
	Algorithm       Algorithm
	SegmentSize     int
	Decorators      []Decorator
	KeyID           string
	WrappedKey      []byte
	PlaintextLength int64
	// StoredLength is the number of bytes the Writer wrote.
	StoredLength int64
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

// Validate checks metadata read back from where a caller kept it: this
// package's version, a known algorithm, a valid segment size, known
// decorators, a key id of a valid length and a length that is not
// negative. It does not authenticate anything: the wrapped key is
// authenticated (by its AEAD) when NewReader uses it, and the plaintext
// length is a fact the reader re-derives from the authenticated data.
func (m *Metadata) Validate() error {
	if m.Version != Version {
		return fmt.Errorf("%w: metadata version %d", ErrUnsupported, m.Version)
	}
	if !m.Algorithm.valid() {
		return fmt.Errorf("%w: algorithm %v", ErrInvalid, m.Algorithm)
	}
	if err := checkSegmentSize(m.SegmentSize); err != nil {
		return fmt.Errorf("%w: segment size: %w", ErrInvalid, err)
	}
	if len(m.Decorators) > maxDecorators {
		return fmt.Errorf("%w: %d decorators", ErrInvalid, len(m.Decorators))
	}
	for _, d := range m.Decorators {
		if d != Zstd {
			return fmt.Errorf("%w: decorator %v", ErrInvalid, d)
		}
	}
	if m.KeyID == "" || len(m.KeyID) > MaxKeyIDLen {
		return fmt.Errorf("%w: key id length %d", ErrInvalid, len(m.KeyID))
	}
	if m.PlaintextLength < 0 {
		return fmt.Errorf("%w: plaintext length %d", ErrInvalid, m.PlaintextLength)
	}
	return nil
}
