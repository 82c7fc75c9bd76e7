// Package etag computes the MD5s Swift keeps for an object the object
// server encrypts: of the plaintext (the ETag clients see and container
// listings show) and, with stored_etag, of the bytes as stored (the ETag
// in the .data file's Swift metadata, which Swift's auditor checks).
//
// Sums is an objcrypt.Observer: the Writer hands it both streams, on
// another core while it encrypts when the process has one to spare. With both sums wanted, the two streams
// go through one two-lane MD5 (md5x2, assembly on amd64) in one pass, at
// about a third less CPU than two crypto/md5 passes; crypto/md5 remains
// the reference the tests compare against.
//
// What it is not: a general hash library (MD5 only, because Swift's ETag
// is MD5), and nothing here is a security measure.
package etag

import (
	"crypto/md5" //nolint:gosec // G501: Swift's ETag is the MD5 of the object
	"encoding/hex"
	"hash"
)

// Sums hashes an object's plaintext and, when asked, its stored bytes.
// Its calls must not overlap (objcrypt's Writer never overlaps them).
type Sums struct {
	plain hash.Hash
	pair  *[2]*md5d // the plaintext's and the stored bytes' digests, when both are kept
}

// New returns Sums of the plaintext and, when stored is true, of the
// stored bytes too.
func New(stored bool) *Sums {
	if stored {
		pt, ct := newMD5d(), newMD5d()
		return &Sums{plain: pt, pair: &[2]*md5d{pt, ct}}
	}
	return &Sums{plain: md5.New()} //nolint:gosec // G401: Swift's ETag
}

// Observe hashes the next plaintext and stored bytes (objcrypt.Observer).
func (s *Sums) Observe(plain, stored []byte) {
	if s.pair != nil {
		md5Pair(s.pair[0], s.pair[1], plain, stored)
		return
	}
	s.plain.Write(plain)
}

// Write hashes p as plaintext, for an object stored in the clear.
func (s *Sums) Write(p []byte) (int, error) {
	s.Observe(p, nil)
	return len(p), nil
}

// Plaintext returns the hex MD5 of the plaintext seen so far.
func (s *Sums) Plaintext() string { return hex.EncodeToString(s.plain.Sum(nil)) }

// Stored returns the hex MD5 of the stored bytes seen so far, or "" when
// New was not asked for it.
func (s *Sums) Stored() string {
	if s.pair == nil {
		return ""
	}
	return hex.EncodeToString(s.pair[1].Sum(nil))
}
