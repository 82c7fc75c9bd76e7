// Package pickle reads and writes the few Python pickles a Swift object
// server exchanges with Swift's Python daemons: the object metadata dict in
// user.swift.metadata xattrs, hashes.pkl, REPLICATE answers and
// async_pending updates.
//
// Decoding is done by github.com/kisielk/og-rek and then normalised to Go
// values (string, int64, float64, bool, nil, map[string]any, []any), with
// Python 3's protocol-2 bytes (_codecs.encode(..., 'latin1')) read as
// strings. Encoding is a small deterministic writer (sorted dict keys) for
// exactly those value types.
//
// What it is not: a general pickle library. It refuses anything but plain
// data (no classes other than the few Swift pickles contain), and it never
// executes anything.
package pickle
