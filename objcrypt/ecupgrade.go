package objcrypt

import (
	"crypto/md5" //nolint:gosec // G501: the archive's MD5, Swift's ETag
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ECUpgrade is the result of UpgradeToEC: the archive's record in the EC
// layout (its key id and wrapped key are the stream's: the data key is
// the same) and the MD5s of its plaintext and of the new stored bytes.
type ECUpgrade struct {
	EC ECMetadata
	// PlainMD5 is the hex MD5 of the fragment archive (the plaintext of
	// the stream, the ETag Arca sealed for it); StoredMD5 the hex MD5 of
	// the bytes written (Swift's ETag of the new file).
	PlainMD5, StoredMD5 string
	// FragIndex is the fragment index the archive's headers carry, -1 for
	// an empty archive.
	FragIndex int
	// ETagKeys are the archive's ETag keys: the stream's (same data key),
	// so every value sealed under them stays valid.
	ETagKeys *ETagKeys
}

// UpgradeToEC rewrites a fragment archive stored as an objcrypt stream
// (an archive written before the EC layout; size stored bytes behind src,
// m its metadata) into the EC layout, writing the new stored bytes to out
// (SPEC.md, "Erasure coding": upgrading an archive). The stream is read
// and authenticated whole (every segment, the trailer, hence its length)
// as it is converted; the caller replaces the old file only once this
// returns nil and it has checked PlainMD5 against the ETag it recorded.
//
// The archive keeps its data key: the EC layout's cipher and MAC keys are
// derived from it under labels of their own, unrelated to the stream's
// segment keys, so no keystream is used twice, and the ETag keys (one
// derivation for both layouts) stay, with every value sealed under them.
// A stream whose plaintext is not a fragment archive the EC layout takes
// fails with ErrInvalid (such an archive stays a stream).
func UpgradeToEC(out io.Writer, src io.ReaderAt, size int64, key ProjectKey, path string, m *Metadata) (*ECUpgrade, error) {
	r, err := NewReader(src, size, key, path, &ReaderOptions{KeyID: m.KeyID, WrappedKey: m.WrappedKey, ETagKeys: true, Parallelism: 1})
	if err != nil {
		return nil, err
	}
	dk, err := unwrapKey(key, m.KeyID, path, m.WrappedKey)
	if err != nil {
		return nil, err
	}
	keys, err := newECKeys(dk)
	clear(dk)
	if err != nil {
		return nil, err
	}
	plain, stored := md5.New(), md5.New() //nolint:gosec // G401: Swift's ETags
	w := &ECWriter{out: io.MultiWriter(out, stored), keys: keys, keyID: m.KeyID, wrapped: m.WrappedKey}
	w.sp.check = func(h []byte) error {
		if !IsECFragmentHeader(h) {
			return errors.New("not a liberasurecode fragment without checksum")
		}
		return nil
	}
	w.sp.emit = w.seal
	if _, err := r.WriteTo(io.MultiWriter(plain, w)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if w.sp.length != r.Size() {
		return nil, fmt.Errorf("%w: converted %d bytes of %d", ErrTruncated, w.sp.length, r.Size())
	}
	fi := -1
	if w.sp.count > 0 {
		fi = int(w.sp.index)
	}
	return &ECUpgrade{
		EC: w.Metadata(), PlainMD5: hex.EncodeToString(plain.Sum(nil)), StoredMD5: hex.EncodeToString(stored.Sum(nil)),
		FragIndex: fi, ETagKeys: r.ETagKeys(),
	}, nil
}
