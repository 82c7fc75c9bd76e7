package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"

	ogorek "github.com/kisielk/og-rek"
)

// ErrInvalid is wrapped by every decoding error: the input is not a pickle
// of plain data.
var ErrInvalid = errors.New("pickle: invalid or unsupported pickle")

// MaxInput bounds what Decode accepts; Swift's pickles are metadata dicts
// (a few KiB) and hashes.pkl (4096 suffixes at most).
const MaxInput = 8 << 20

// Bytes marks a string to be pickled as Python bytes (protocol 2:
// _codecs.encode(latin-1 str, 'latin1'), as Python 3 writes it) rather than
// as a py2 str (SHORT_BINSTRING/BINSTRING).
type Bytes string

// Unicode marks a string to be pickled as a Python 3 str (BINUNICODE). The
// value must be valid UTF-8.
type Unicode string

// Decode reads one pickle and returns it as plain Go values: string (py2
// str, py3 str and bytes alike), int64, *big.Int for huge ints, float64,
// bool, nil, []any (lists and tuples) and map[string]any (dict keys must be
// strings or are rendered with fmt). Anything else is ErrInvalid. It never
// panics.
func Decode(data []byte) (v any, err error) {
	if len(data) > MaxInput {
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrInvalid, len(data))
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: decoder failure: %v", ErrInvalid, r)
		}
	}()
	dec := ogorek.NewDecoderWithConfig(bytes.NewReader(data), &ogorek.DecoderConfig{})
	raw, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	left := maxValues
	return normalise(raw, 0, &left)
}

const maxDepth = 32

// maxValues bounds how many values a pickle may expand to. A memo
// reference (BINGET) names one list or dict from many places; ogorek
// shares it, but the values Decode returns are copies, so a few hundred
// bytes nesting references to references would expand to hundreds of
// MiB, and 8 KiB to more than any memory: whoever can write a file's
// metadata or a partition's hashes.pkl would stop the whole server. Swift
// writes neither with shared references; its largest, a hashes.pkl of
// 4,096 suffixes, is far below this.
const maxValues = 1 << 20

// normalise converts ogorek's values to Decode's, spending one of left
// per value.
func normalise(x any, depth int, left *int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested too deeply", ErrInvalid)
	}
	if *left--; *left < 0 {
		return nil, fmt.Errorf("%w: more than %d values", ErrInvalid, maxValues)
	}
	switch v := x.(type) {
	case nil, ogorek.None:
		return nil, nil
	case string:
		return v, nil
	case ogorek.ByteString:
		return string(v), nil
	case ogorek.Bytes:
		return string(v), nil
	case []byte:
		return string(v), nil
	case bool:
		return v, nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), nil
		}
		return v, nil
	case float64:
		return v, nil
	case ogorek.Tuple:
		return normaliseList([]any(v), depth, left)
	case []any:
		return normaliseList(v, depth, left)
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			nv, err := normalise(val, depth+1, left)
			if err != nil {
				return nil, err
			}
			out[ks] = nv
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: unsupported value of type %T", ErrInvalid, x)
	}
}

func normaliseList(v []any, depth int, left *int) (any, error) {
	if len(v) > *left {
		return nil, fmt.Errorf("%w: more than %d values", ErrInvalid, maxValues)
	}
	out := make([]any, len(v))
	for i, e := range v {
		n, err := normalise(e, depth+1, left)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func keyString(k any) (string, error) {
	switch v := k.(type) {
	case string:
		return v, nil
	case ogorek.ByteString:
		return string(v), nil
	case ogorek.Bytes:
		return string(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case nil, ogorek.None:
		// EC suffix hashes key the hash of everything but data files by
		// None (FragHashes)
		return NoneKey, nil
	default:
		return "", fmt.Errorf("%w: dict key of type %T", ErrInvalid, k)
	}
}

// StringMap decodes a pickled dict whose keys and values are strings (or
// numbers, rendered in decimal), which is what Swift's object metadata is.
func StringMap(data []byte) (map[string]string, error) {
	if m, ok := stringMapFast(data); ok {
		return m, nil
	}
	return stringMapSlow(data)
}

// stringMapFast decodes exactly the shape Encode gives a map[string]string
// (PROTO 2, EMPTY_DICT, MARK, SHORT_BINSTRING or BINSTRING pairs,
// SETITEMS, STOP: the metadata Arca writes) without the general decoder,
// whose reflection and interface values cost more than the rest of
// reading an object's metadata. Anything else, including every pickle
// Python writes, reports false and goes the general way, which gives the
// same map for this shape.
func stringMapFast(data []byte) (map[string]string, bool) {
	if len(data) > MaxInput || len(data) < 4 || data[0] != 0x80 || data[1] != 2 || data[2] != '}' {
		return nil, false
	}
	p := data[3:]
	if len(p) == 1 && p[0] == '.' {
		return map[string]string{}, true
	}
	if p[0] != '(' {
		return nil, false
	}
	p = p[1:]
	n, ok := countPairs(p)
	if !ok {
		return nil, false
	}
	// One string holds the pairs, and the values (and the names not in
	// commonKeys) are its substrings: one allocation for all of them
	// instead of one each, for a map that lives as long as they do.
	all := string(p)
	out := make(map[string]string, n)
	for at := 0; len(all)-at != 2; {
		ks, ke, next, ok := binSpan(all, at)
		if !ok {
			return nil, false
		}
		k, common := commonKeys[all[ks:ke]]
		if !common {
			k = all[ks:ke]
		}
		vs, ve, next, ok := binSpan(all, next)
		if !ok {
			return nil, false
		}
		out[k] = all[vs:ve]
		at = next
	}
	return out, true
}

// countPairs checks that p is the rest of the shape stringMapFast decodes
// (string pairs, then SETITEMS and STOP) and counts the pairs.
func countPairs(p []byte) (int, bool) {
	n := 0
	for {
		if len(p) == 2 && p[0] == 'u' && p[1] == '.' {
			return n, true
		}
		_, rest, ok := binBytes(p)
		if !ok {
			return 0, false
		}
		if _, rest, ok = binBytes(rest); !ok {
			return 0, false
		}
		n++
		p = rest
	}
}

// binSpan is binBytes on s from offset at: the string's bytes are
// s[start:end] and the next item starts at next.
func binSpan(s string, at int) (start, end, next int, ok bool) {
	switch {
	case len(s)-at >= 2 && s[at] == 'U':
		start = at + 2
		end = start + int(s[at+1])
	case len(s)-at >= 5 && s[at] == 'T':
		start = at + 5
		// BINSTRING's length: a signed 32-bit little-endian integer
		end = start + int(int32(uint32(s[at+1])|uint32(s[at+2])<<8|uint32(s[at+3])<<16|uint32(s[at+4])<<24))
	default:
		return 0, 0, 0, false
	}
	if end < start || end > len(s) {
		return 0, 0, 0, false
	}
	return start, end, end, true
}

// commonKeys are the metadata names of nearly every object Arca stores:
// stringMapFast returns these shared strings instead of a new copy of
// each name for every object opened.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"name", "Content-Type", "X-Timestamp", "ETag", "Content-Length",
		"X-Object-Sysmeta-Arca-Version", "X-Object-Sysmeta-Arca-Algorithm", "X-Object-Sysmeta-Arca-Segment-Size",
		"X-Object-Sysmeta-Arca-Decorators", "X-Object-Sysmeta-Arca-Key-Id", "X-Object-Sysmeta-Arca-Wrapped-Key",
		"X-Object-Sysmeta-Arca-Plaintext-Length", "X-Object-Sysmeta-Arca-Plaintext-Etag",
	} {
		m[k] = k
	}
	return m
}()

// binBytes reads a SHORT_BINSTRING or BINSTRING, returning its bytes in p.
func binBytes(p []byte) ([]byte, []byte, bool) {
	switch {
	case len(p) >= 2 && p[0] == 'U':
		n := int(p[1])
		if len(p)-2 < n {
			return nil, nil, false
		}
		return p[2 : 2+n], p[2+n:], true
	case len(p) >= 5 && p[0] == 'T':
		n := int64(int32(binary.LittleEndian.Uint32(p[1:5])))
		if n < 0 || int64(len(p)-5) < n {
			return nil, nil, false
		}
		return p[5 : 5+n], p[5+n:], true
	}
	return nil, nil, false
}

func stringMapSlow(data []byte) (map[string]string, error) {
	v, err := Decode(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a dict but %T", ErrInvalid, v)
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		switch x := val.(type) {
		case string:
			out[k] = x
		case int64:
			out[k] = strconv.FormatInt(x, 10)
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			if x {
				out[k] = "True"
			} else {
				out[k] = "False"
			}
		default:
			return nil, fmt.Errorf("%w: value of %q is %T", ErrInvalid, k, val)
		}
	}
	return out, nil
}

// Encode writes v as a protocol-2 pickle. Supported: nil, bool, int,
// int64, float64, string (py2 str, which Python 3 reads as bytes with
// encoding='bytes' or as str with the default ASCII encoding), Bytes,
// Unicode, []any, map[string]any, map[string]string. Dict keys are written
// in sorted order, so the output is deterministic.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(256)
	b.Write([]byte{0x80, 2}) // PROTO 2
	if err := encode(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteByte('.') // STOP
	return b.Bytes(), nil
}

// MustEncode is Encode for values known to be encodable.
func MustEncode(v any) []byte {
	out, err := Encode(v)
	if err != nil {
		panic(err)
	}
	return out
}

func encode(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("pickle: nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		b.WriteByte('N')
	case bool:
		if x {
			b.WriteByte(0x88)
		} else {
			b.WriteByte(0x89)
		}
	case int:
		encodeInt(b, int64(x))
	case int64:
		encodeInt(b, x)
	case float64:
		b.WriteByte('G') // BINFLOAT, big-endian
		var f [8]byte
		binary.BigEndian.PutUint64(f[:], math.Float64bits(x))
		b.Write(f[:])
	case string:
		encodeByteString(b, x)
	case Unicode:
		b.WriteByte('X') // BINUNICODE
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(x)))
		b.Write(n[:])
		b.WriteString(string(x))
	case Bytes:
		return encodeBytes(b, x, depth)
	case []any:
		return encodeList(b, x, depth)
	case map[string]string:
		encodeStringMap(b, x)
	case map[string]any:
		return encodeMap(b, x, depth)
	case map[Unicode]any:
		return encodeUnicodeMap(b, x, depth)
	case FragHashes:
		encodeFragHashes(b, x)
	default:
		return fmt.Errorf("pickle: cannot encode %T", v)
	}
	return nil
}

// encodeBytes writes Python 3's bytes: _codecs.encode(<str of the bytes
// as latin-1>, 'latin1').
func encodeBytes(b *bytes.Buffer, x Bytes, depth int) error {
	b.WriteString("c_codecs\nencode\n")
	latin := make([]rune, 0, len(x))
	for i := 0; i < len(x); i++ {
		latin = append(latin, rune(x[i]))
	}
	if err := encode(b, Unicode(string(latin)), depth+1); err != nil {
		return err
	}
	if err := encode(b, Unicode("latin1"), depth+1); err != nil {
		return err
	}
	b.WriteByte(0x86) // TUPLE2
	b.WriteByte('R')  // REDUCE
	return nil
}

func encodeList(b *bytes.Buffer, x []any, depth int) error {
	b.WriteByte(']') // EMPTY_LIST
	if len(x) == 0 {
		return nil
	}
	b.WriteByte('(') // MARK
	for _, e := range x {
		if err := encode(b, e, depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('e') // APPENDS
	return nil
}

// encodeStringMap writes a dict of byte strings, keys sorted.
func encodeStringMap(b *bytes.Buffer, x map[string]string) {
	keys := sortedKeys(x)
	b.WriteByte('}') // EMPTY_DICT
	if len(keys) == 0 {
		return
	}
	b.WriteByte('(') // MARK
	for _, k := range keys {
		encodeByteString(b, k)
		encodeByteString(b, x[k])
	}
	b.WriteByte('u') // SETITEMS
}

// encodeMap writes a dict with byte-string keys, sorted.
func encodeMap(b *bytes.Buffer, x map[string]any, depth int) error {
	keys := sortedKeys(x)
	b.WriteByte('}')
	if len(keys) == 0 {
		return nil
	}
	b.WriteByte('(')
	for _, k := range keys {
		encodeByteString(b, k)
		if err := encode(b, x[k], depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('u')
	return nil
}

// encodeUnicodeMap writes a dict with str keys, sorted.
func encodeUnicodeMap(b *bytes.Buffer, x map[Unicode]any, depth int) error {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	b.WriteByte('}')
	if len(keys) == 0 {
		return nil
	}
	b.WriteByte('(')
	for _, k := range keys {
		if err := encode(b, Unicode(k), depth+1); err != nil {
			return err
		}
		if err := encode(b, x[Unicode(k)], depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('u')
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func encodeInt(b *bytes.Buffer, v int64) {
	switch {
	case v >= 0 && v < 256:
		b.WriteByte('K') // BININT1
		b.WriteByte(byte(v))
	case v >= 0 && v < 65536:
		b.WriteByte('M') // BININT2
		b.WriteByte(byte(v))
		b.WriteByte(byte(v >> 8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		b.WriteByte('J') // BININT
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		b.Write(n[:])
	default:
		// LONG1: little-endian two's complement, minimal length
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		l := 8
		for l > 1 {
			top, next := n[l-1], n[l-2]
			if (top == 0 && next&0x80 == 0) || (top == 0xff && next&0x80 != 0) {
				l--
				continue
			}
			break
		}
		b.WriteByte(0x8a)
		b.WriteByte(byte(l))
		b.Write(n[:l])
	}
}

func encodeByteString(b *bytes.Buffer, s string) {
	if len(s) < 256 {
		b.WriteByte('U') // SHORT_BINSTRING
		b.WriteByte(byte(len(s)))
	} else {
		b.WriteByte('T') // BINSTRING
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		b.Write(n[:])
	}
	b.WriteString(s)
}

// NoneKey is what Decode makes of a dict key None.
const NoneKey = "None"

// FragHashes is an erasure-coded suffix's hashes as Swift's
// ECDiskFileManager pickles them: {None: md5 of the non-data files,
// <fragment index>: md5 of that fragment's timestamps}. The key -1 stands
// for None.
type FragHashes map[int]string

// encodeFragHashes writes the dict, None first, then the indexes in order.
func encodeFragHashes(b *bytes.Buffer, x FragHashes) {
	keys := make([]int, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.WriteByte('}')
	if len(keys) == 0 {
		return
	}
	b.WriteByte('(')
	for _, k := range keys {
		if k < 0 {
			b.WriteByte('N')
		} else {
			encodeInt(b, int64(k))
		}
		encodeByteString(b, x[k])
	}
	b.WriteByte('u')
}

// AsFragHashes reads a decoded dict back as FragHashes (ok false when it
// is not one).
func AsFragHashes(v any) (FragHashes, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make(FragHashes, len(m))
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			return nil, false
		}
		if k == NoneKey {
			out[-1] = s
			continue
		}
		fi, err := strconv.Atoi(k)
		if err != nil || fi < 0 {
			return nil, false
		}
		out[fi] = s
	}
	return out, true
}
