//go:build !amd64 || purego

package objcrypt

// Without the SHA-NI lanes, segments are MACed one at a time through
// crypto/hmac (segState.segmentMAC).
const hasSHA2Lanes = false

func sha256Blocks2(sa, sb *[8]uint32, pa, pb *byte, blocks int) {
	panic("objcrypt: sha256Blocks2 without SHA-NI lanes")
}
