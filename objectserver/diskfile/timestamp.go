package diskfile

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Timestamp is Swift's timestamp: seconds with 10 µs precision (stored in
// units of 10 µs) and an optional offset that orders writes made at the
// same instant (the internal form "1700000000.12345_000000000000000a").
type Timestamp struct {
	Raw    int64 // units of 10 µs since the epoch
	Offset int64
}

// ErrBadTimestamp: a timestamp that Swift would not accept.
var ErrBadTimestamp = errors.New("diskfile: invalid timestamp")

// maxRaw keeps timestamps within Swift's 10-digit seconds field.
const maxRaw = 9999999999_99999

// ParseTimestamp reads the normal, internal or float forms Swift accepts.
func ParseTimestamp(s string) (Timestamp, error) {
	var t Timestamp
	s = strings.TrimSpace(s)
	base, off, hasOff := strings.Cut(s, "_")
	if hasOff {
		o, err := strconv.ParseUint(off, 16, 63)
		if err != nil || off == "" || len(off) > 16 {
			return t, fmt.Errorf("%w: %q", ErrBadTimestamp, s)
		}
		t.Offset = int64(o)
	}
	if base == "" || len(base) > 32 {
		return t, fmt.Errorf("%w: %q", ErrBadTimestamp, s)
	}
	f, err := strconv.ParseFloat(base, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return t, fmt.Errorf("%w: %q", ErrBadTimestamp, s)
	}
	raw := math.Round(f * 100000)
	if raw > maxRaw {
		return t, fmt.Errorf("%w: %q out of range", ErrBadTimestamp, s)
	}
	t.Raw = int64(raw)
	return t, nil
}

// FromTime converts a time (rounded to 10 µs).
func FromTime(tm time.Time) Timestamp {
	return Timestamp{Raw: (tm.UnixNano() + 5000) / 10000}
}

// Normal is "%016.05f".
//
// The forms are built with strconv rather than fmt: every request formats
// several timestamps, and fmt's allocations and reflection showed in a
// small object's profile. Negative values, which no parsed timestamp has,
// keep fmt's spelling.
func (t Timestamp) Normal() string {
	if t.Raw < 0 {
		return fmt.Sprintf("%010d.%05d", t.Raw/100000, t.Raw%100000)
	}
	var b [32]byte
	return string(t.appendNormal(b[:0]))
}

func (t Timestamp) appendNormal(b []byte) []byte {
	b = appendPadded(b, uint64(t.Raw/100000), 10, 10)
	b = append(b, '.')
	return appendPadded(b, uint64(t.Raw%100000), 10, 5)
}

// appendPadded appends v in base, zero-padded to width digits.
func appendPadded(b []byte, v uint64, base, width int) []byte {
	var d [24]byte
	digits := strconv.AppendUint(d[:0], v, base)
	for i := len(digits); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// Internal is Normal plus "_%016x" when there is an offset.
func (t Timestamp) Internal() string {
	return t.withOffset(16)
}

// Short is Normal plus "_%x" when there is an offset.
func (t Timestamp) Short() string {
	return t.withOffset(0)
}

// withOffset is Normal plus, with an offset, "_" and the offset in hex
// zero-padded to width digits.
func (t Timestamp) withOffset(width int) string {
	if t.Offset == 0 {
		return t.Normal()
	}
	if t.Raw < 0 || t.Offset < 0 {
		if width == 16 {
			return fmt.Sprintf("%s_%016x", t.Normal(), t.Offset)
		}
		return fmt.Sprintf("%s_%x", t.Normal(), t.Offset)
	}
	var b [48]byte
	out := append(t.appendNormal(b[:0]), '_')
	return string(appendPadded(out, uint64(t.Offset), 16, width))
}

// Seconds is the timestamp as float seconds.
func (t Timestamp) Seconds() float64 { return float64(t.Raw) / 100000 }

// Time is the timestamp as a time.Time.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Raw*10000) }

// Ceil is the timestamp rounded up to whole seconds (Last-Modified).
func (t Timestamp) Ceil() int64 { return (t.Raw + 99999) / 100000 }

// Compare orders timestamps by time, then offset.
func (t Timestamp) Compare(o Timestamp) int {
	switch {
	case t.Raw < o.Raw:
		return -1
	case t.Raw > o.Raw:
		return 1
	case t.Offset < o.Offset:
		return -1
	case t.Offset > o.Offset:
		return 1
	}
	return 0
}

// After reports t > o.
func (t Timestamp) After(o Timestamp) bool { return t.Compare(o) > 0 }

// IsZero reports the zero timestamp.
func (t Timestamp) IsZero() bool { return t.Raw == 0 && t.Offset == 0 }

// MetaName is the base name of a .meta file: the metadata timestamp and,
// when the content type was set, "+<hex delta>" to the content-type
// timestamp (Swift's encode_timestamps with explicit=True).
func MetaName(meta Timestamp, ctype *Timestamp) string {
	if ctype == nil {
		return meta.Short()
	}
	d := ctype.Raw - meta.Raw
	if d < 0 {
		return fmt.Sprintf("%s-%x", meta.Short(), -d)
	}
	return fmt.Sprintf("%s+%x", meta.Short(), d)
}

// parseMetaName is the inverse of MetaName.
func parseMetaName(s string) (Timestamp, *Timestamp, error) {
	i := strings.LastIndexAny(s, "+-")
	if i <= 0 {
		t, err := ParseTimestamp(s)
		return t, nil, err
	}
	t, err := ParseTimestamp(s[:i])
	if err != nil {
		return t, nil, err
	}
	d, err := strconv.ParseInt(s[i+1:], 16, 64)
	if err != nil || s[i+1:] == "" || d > maxRaw {
		return t, nil, fmt.Errorf("%w: %q", ErrBadTimestamp, s)
	}
	if s[i] == '-' {
		d = -d
	}
	c := Timestamp{Raw: t.Raw + d}
	if c.Raw < 0 {
		return t, nil, fmt.Errorf("%w: %q", ErrBadTimestamp, s)
	}
	return t, &c, nil
}

// WithDelta is t moved by delta units of 10 µs, its offset kept (Swift's
// Timestamp(t, delta=...), which SSYNC's missing check uses).
func (t Timestamp) WithDelta(delta int64) Timestamp {
	t.Raw += delta
	return t
}
