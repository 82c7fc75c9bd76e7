// Package objcrypt is Arca's encrypted object format: it turns the
// plaintext of a Swift object into the bytes stored on disk and back.
//
// Each object gets a fresh random data key, wrapped with AES-256-GCM under
// a key derived from the project key and bound to the project key id and
// the object path. The plaintext is cut into segments (64 KiB by default);
// each segment is encrypted with AES-CBC under its own random IV and
// authenticated with HMAC-SHA256 (encrypt-then-MAC) over the header, its
// index and whether it is the last, so any change, reordering, truncation,
// extension or splicing fails to decrypt. SPEC.md describes the format byte
// by byte and the threat model.
//
// The API follows io: a Writer encrypts a stream (and hands the plaintext
// and the stored bytes to an Observer, for the caller's hashes: on another
// core while the process has one to spare), a Reader decrypts an io.ReaderAt, the whole object or any range
// of it, touching only the segments that cover the range and decrypting
// them on several cores. Layout computes sizes and segment positions
// without I/O. Metadata is what a caller keeps beside an object (the
// object server: in Swift sysmeta, package objectserver/sysmeta).
//
// The AES-CBC layer is AES-NI assembly on amd64 (cbc_amd64.s, and the
// generated cbclanes_amd64.s): decryption keeps eight blocks in flight
// (32, four to a 512-bit register, with AVX-512 VAES), and encryption, a
// chain within a segment, interleaves the chains of
// several segments, so that a Writer seals its full segments four at a
// time at AESENC's throughput rather than its latency. Elsewhere, or
// built with the purego tag, it is crypto/cipher's CBC, one segment at a
// time. The stored bytes are the same either way (the known-answer and
// cross-check tests hold every path to crypto/cipher). Likewise the
// Writer MACs two full segments at a time with SHA-NI (the generated
// sha2lanes_amd64.s, macpair.go: two SHA-256 chains interleaved) where
// the CPU has it, and through crypto/hmac otherwise; the tests and
// FuzzMACPair hold the tags to crypto/hmac's. The Reader verifies the
// same way two consecutive segments of a read window whose frames are of
// the same length (segState.openPair: sequential reads of large objects),
// and any other segment alone (an odd or short last one, a range of one
// segment); either way a segment is decrypted only after its own tag
// compared equal in constant time, and a bad segment in a pair does not
// change what the other yields. Decryption is MAC-bound: CBC decryption
// has no chain, and costs a fraction of the MAC.
//
// bench.go and benchmem.go export the loops its benchmarks time (BenchLoop,
// StreamMemory, StreamBounds), so that make bench's speed report
// (tools/speedreport crypto) measures the same code without a copy of it.
//
// What it is not: it knows nothing of HTTP, Swift or Keystone, does not
// fetch or cache project keys (callers pass raw key bytes and an id), and
// does not hide object names, sizes or metadata. It does not detect the
// rollback of an object to an older version of itself at the same path
// and under the same key; the object server's metadata must.
package objcrypt
