package objcrypt

import (
	"encoding/base64"
	"errors"
	"strings"
)

// errLineBreak refuses a sealed value with a line break in its base64.
var errLineBreak = errors.New("line break in base64")

// decodeBase64 decodes s with enc, strictly: a sealed value has one
// spelling, so no other spelling of it opens. Strict mode refuses
// non-zero padding bits, but Go's decoder skips '\r' and '\n' even then,
// so those are refused here.
func decodeBase64(enc *base64.Encoding, dst []byte, s string) (int, error) {
	if strings.ContainsAny(s, "\r\n") {
		return 0, errLineBreak
	}
	return enc.Strict().Decode(dst, []byte(s))
}

// decodeBase64String is decodeBase64 into a new slice.
func decodeBase64String(enc *base64.Encoding, s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errLineBreak
	}
	return enc.Strict().DecodeString(s)
}
