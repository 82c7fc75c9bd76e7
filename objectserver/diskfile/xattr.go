package diskfile

import (
	"crypto/md5" //nolint:gosec // G501: Swift's metadata checksum is MD5 by protocol
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"opendev.org/x/arca/objectserver/pickle"
)

const (
	metadataKey         = "user.swift.metadata"
	metadataChecksumKey = "user.swift.metadata_checksum"
	// xattrChunk is Swift's xattr_size: the pickle is split into chunks of
	// this size under metadataKey, metadataKey+"1", ...
	xattrChunk = 65536
	// maxMetadataChunks bounds reading (a forged file cannot make us loop).
	maxMetadataChunks = 64
)

func xattrErr(op string, err error) error {
	switch {
	case errors.Is(err, unix.ENOTSUP):
		return fmt.Errorf("%w: %s: %w", ErrXattrNotSupported, op, err)
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("%w: %s: %w", ErrNoSpace, op, err)
	}
	return fmt.Errorf("diskfile: %s: %w", op, err)
}

// writeMetadata pickles meta into f's xattrs as Swift does, with the
// checksum xattr. Values must already be in Swift's stored form.
func writeMetadata(f *os.File, meta map[string]string) error {
	data, err := pickle.Encode(meta)
	if err != nil {
		return fmt.Errorf("diskfile: pickling metadata: %w", err)
	}
	return writePickle(f, data)
}

// writePickle stores a pickle in f's xattrs as Swift does: 64 KiB chunks,
// then the checksum xattr.
func writePickle(f *os.File, data []byte) error {
	sum := md5.Sum(data) //nolint:gosec // G401: Swift's metadata checksum
	fd := int(f.Fd())
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), xattrChunk)
		if err := unix.Fsetxattr(fd, chunkKey(i), data[:n], 0); err != nil {
			return xattrErr("writing metadata", err)
		}
		data = data[n:]
	}
	if err := unix.Fsetxattr(fd, metadataChecksumKey, []byte(hex.EncodeToString(sum[:])), 0); err != nil {
		return xattrErr("writing metadata checksum", err)
	}
	return nil
}

func chunkKey(i int) string {
	if i == 0 {
		return metadataKey
	}
	return metadataKey + strconv.Itoa(i)
}

// getxattr reads an xattr into buf when it fits, else into a new buffer.
func getxattr(fd int, key string, buf []byte) ([]byte, error) {
	if len(buf) == 0 {
		buf = make([]byte, 4096)
	}
	for {
		n, err := unix.Fgetxattr(fd, key, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Fgetxattr(fd, key, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1024)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// xattrBufPool holds the buffers metadata is read into.
var xattrBufPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// errBadMetadata: the metadata cannot be read or fails its checksum; the
// caller quarantines the file.
var errBadMetadata = errors.New("diskfile: unreadable metadata")

// readMetadata reads and checks the pickled metadata of the file fd, returning the
// values as stored (see fromStored for the raw header bytes).
func readMetadata(fd int) (map[string]string, error) {
	// Chunk 0 is read into a pooled buffer and decoded in place (the
	// decoded strings are copies); later chunks go through buf.
	firstp := xattrBufPool.Get().(*[]byte)
	defer xattrBufPool.Put(firstp)
	data, err := getxattr(fd, metadataKey, *firstp)
	if err != nil {
		return nil, metadataReadErr(err, 0)
	}
	// The checksum next: when chunk 0 alone matches it, chunk 0 is the
	// whole pickle (nearly always), and the getxattr(2) of a chunk 1
	// that is not there (ENODATA) is saved. Otherwise the chunks are read
	// until one is missing, as Swift reads them, and checked whole.
	var sumBuf [64]byte
	sum, sumErr := getxattr(fd, metadataChecksumKey, sumBuf[:])
	if sumErr != nil || len(data) >= xattrChunk || !checksumMatches(data, sum) {
		var buf [4096]byte
		for i := 1; ; i++ {
			if i >= maxMetadataChunks {
				return nil, fmt.Errorf("%w: too many metadata chunks", errBadMetadata)
			}
			// A separate variable, so that buf stays on the stack: only
			// copies of it reach data.
			more, err := getxattr(fd, chunkKey(i), buf[:])
			if err != nil {
				if errors.Is(err, unix.ENODATA) {
					break
				}
				return nil, metadataReadErr(err, i)
			}
			if i == 1 {
				data = append([]byte(nil), data...)
			}
			data = append(data, more...)
		}
		if sumErr == nil && !checksumMatches(data, sum) {
			return nil, fmt.Errorf("%w: metadata checksum mismatch", errBadMetadata)
		}
	}
	m, err := pickle.StringMap(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadMetadata, err)
	}
	return fromStoredMap(m), nil
}

// checksumMatches reports whether sum is the hex MD5 of data, as Swift
// writes metadataChecksumKey.
func checksumMatches(data, sum []byte) bool {
	want := md5.Sum(data) //nolint:gosec // G401: Swift's metadata checksum
	var hx [2 * md5.Size]byte
	hex.Encode(hx[:], want[:])
	return string(sum) == string(hx[:])
}

// metadataReadErr is the error of a failed getxattr(2) of chunk i.
func metadataReadErr(err error, i int) error {
	switch {
	case errors.Is(err, unix.ENODATA) && i == 0:
		return fmt.Errorf("%w: no metadata", errBadMetadata)
	case errors.Is(err, unix.ENOTSUP):
		return xattrErr("reading metadata", err)
	}
	return fmt.Errorf("diskfile: reading metadata: %w", err)
}

// fromStoredMap converts a stored metadata map (fromStored). When no key
// changes (non-ASCII header names are rare), values are converted in
// place and the common case costs no second map.
func fromStoredMap(m map[string]string) map[string]string {
	keysStored := true
	for k := range m {
		if k != "name" && fromStored(k) != k {
			keysStored = false
			break
		}
	}
	if keysStored {
		for k, v := range m {
			if k == "name" {
				continue
			}
			if fv := fromStored(v); fv != v {
				m[k] = fv
			}
		}
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "name" {
			out[k] = v
			continue
		}
		out[fromStored(k)] = fromStored(v)
	}
	return out
}

// toStored converts raw header bytes to what Python 3 Swift stores: the
// UTF-8 encoding of the bytes read as latin-1 (c3 bc -> c3 83 c2 bc).
func toStored(raw string) string {
	ascii := true
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return raw
	}
	out := make([]byte, 0, len(raw)*2)
	for i := 0; i < len(raw); i++ {
		out = utf8.AppendRune(out, rune(raw[i]))
	}
	return string(out)
}

// fromStored reverses toStored. Values that are not UTF-8 of latin-1 text
// (written by other software) are returned unchanged.
func fromStored(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii || !utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return s
		}
		out = append(out, byte(r))
	}
	return string(out)
}
