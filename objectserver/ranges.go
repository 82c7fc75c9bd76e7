package objectserver

import (
	"strconv"
	"strings"
)

// Swift's limits on ranges (swob.MAX_RANGES, ...).
const (
	maxRanges             = 50
	maxRangeOverlaps      = 2
	maxNonAscendingRanges = 8
)

// byteRange is [Start, End) in the plaintext.
type byteRange struct{ Start, End int64 }

// rangeSpec is one syntactically valid byte-range-spec; -1 stands for an
// absent bound.
type rangeSpec struct{ first, last int64 }

// parseRange reads a Range header as Swift's swob.Range does. ok is false
// for a syntactically invalid header, which must be ignored (200).
func parseRange(h string) (specs []rangeSpec, ok bool) {
	h = strings.ReplaceAll(h, " ", "")
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return nil, false
	}
	for rng := range strings.SplitSeq(h[6:], ",") {
		first, last, found := strings.Cut(rng, "-")
		if !found {
			return nil, false
		}
		s := rangeSpec{first: -1, last: -1}
		if first != "" {
			n, ok := parseDigits(first)
			if !ok {
				return nil, false
			}
			s.first = n
		}
		if last != "" {
			n, ok := parseDigits(last)
			if !ok || (s.first >= 0 && n < s.first) {
				return nil, false
			}
			s.last = n
		} else if s.first < 0 {
			return nil, false
		}
		specs = append(specs, s)
		if len(specs) > 10*maxRanges {
			// Far beyond what Swift serves; the answer is 416 anyway.
			return specs, true
		}
	}
	return specs, true
}

func parseDigits(s string) (int64, bool) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 18 {
		if len(s) > 18 && strings.Trim(s, "0123456789") == "" {
			// a huge but valid number: past any object's end
			return 1<<62 - 1, true
		}
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// rangesForLength resolves the specs against an object of length bytes as
// swob.Range.ranges_for_length: nil with satisfiable false means 416.
func rangesForLength(specs []rangeSpec, length int64) (out []byteRange, satisfiable bool) {
	for _, s := range specs {
		switch {
		case s.first < 0: // suffix
			if s.last == 0 {
				continue
			}
			if s.last > length {
				out = append(out, byteRange{0, length})
			} else {
				out = append(out, byteRange{length - s.last, length})
			}
		case s.last < 0:
			if s.first < length {
				out = append(out, byteRange{s.first, length})
			}
		case s.first < length:
			out = append(out, byteRange{s.first, min(s.last+1, length)})
		}
	}
	if len(out) == 0 || len(out) > maxRanges {
		return nil, false
	}
	overlaps := 0
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			a, b := out[i], out[j]
			if (a.Start < b.Start && b.Start < a.End) || (a.Start < b.End && b.End < a.End) ||
				(b.Start < a.Start && a.Start < b.End) || (b.Start < a.End && a.End < b.End) {
				overlaps++
				if overlaps > maxRangeOverlaps {
					return nil, false
				}
			}
		}
	}
	ascending := true
	for i := 1; i < len(out); i++ {
		p, c := out[i-1], out[i]
		if p.Start > c.Start || (p.Start == c.Start && p.End > c.End) {
			ascending = false
			break
		}
	}
	if !ascending && len(out) >= maxNonAscendingRanges {
		return nil, false
	}
	return out, true
}
