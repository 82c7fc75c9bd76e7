package objcrypt

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Per-segment decorator tags: the first byte of a decorated body says
// whether the transform was applied. A transform that does not pay off
// (incompressible data) costs one byte, never a larger segment.
const (
	tagStored     = 0
	tagCompressed = 1
)

// The zstd encoder and decoder are shared by all streams: EncodeAll and
// DecodeAll are safe for concurrent use, and one set per process keeps
// memory bounded no matter how many objects are in flight.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(n),
			zstd.WithEncoderCRC(false), // the segment MAC already covers it
			zstd.WithWindowSize(MaxSegmentSize))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderMaxMemory(MaxSegmentSize),
			zstd.WithDecoderMaxWindow(MaxSegmentSize),
			zstd.IgnoreChecksum(true))
	})
	return zstdEnc, zstdDec, zstdErr
}

// decorate applies the chain to one plaintext segment. scratch holds one
// buffer per decorator (reused across segments); the result aliases one of
// them or src itself.
func decorate(chain []Decorator, scratch [][]byte, src []byte) ([]byte, error) {
	for i, d := range chain {
		switch d {
		case Zstd:
			enc, _, err := zstdCodec()
			if err != nil {
				return nil, err
			}
			out := append(scratch[i][:0], tagCompressed)
			out = enc.EncodeAll(src, out)
			if len(out) >= len(src)+1 || !framesContentSize(out[1:], len(src)) {
				out = append(out[:0], tagStored)
				out = append(out, src...)
			}
			scratch[i] = out[:0] // keep the grown buffer
			src = out
		default:
			return nil, fmt.Errorf("%w: decorator %v", ErrUnsupported, d)
		}
	}
	return src, nil
}

// framesContentSize reports whether a zstd frame's header states its
// content size, as n. The format requires it (readers refuse a frame that
// does not: it bounds what a segment inflates to before decoding), and
// the encoder leaves it out of a frame of fewer than 256 bytes that is
// not a single segment: such a segment is stored as it is instead.
func framesContentSize(frame []byte, n int) bool {
	var h zstd.Header
	return h.Decode(frame) == nil && h.HasFCS && h.FrameContentSize == uint64(n)
}

// undecorate undoes the chain in reverse order. want is the plaintext
// length of the segment: no stage may produce more (the bound that keeps a
// forged segment from inflating), and the last stage must produce exactly
// that. Bodies reach here only after their MAC verified, so a failure here
// means the writer and reader disagree on the format.
func undecorate(chain []Decorator, scratch [][]byte, src []byte, want int) ([]byte, error) {
	for i := len(chain) - 1; i >= 0; i-- {
		if len(src) < 1 {
			return nil, fmt.Errorf("%w: empty decorated body", ErrTampered)
		}
		switch chain[i] {
		case Zstd:
			switch src[0] {
			case tagStored:
				src = src[1:]
			case tagCompressed:
				_, dec, err := zstdCodec()
				if err != nil {
					return nil, err
				}
				var h zstd.Header
				if err := h.Decode(src[1:]); err != nil || !h.HasFCS || h.FrameContentSize > uint64(want) {
					return nil, fmt.Errorf("%w: zstd frame header", ErrTampered)
				}
				out, err := dec.DecodeAll(src[1:], scratch[i][:0])
				if err != nil {
					return nil, fmt.Errorf("%w: zstd: %w", ErrTampered, err)
				}
				scratch[i] = out[:0]
				src = out
			default:
				return nil, fmt.Errorf("%w: decorator tag %d", ErrTampered, src[0])
			}
		default:
			return nil, fmt.Errorf("%w: decorator %v", ErrUnsupported, chain[i])
		}
		if len(src) > want {
			return nil, fmt.Errorf("%w: decorated segment grew to %d bytes", ErrTampered, len(src))
		}
	}
	if len(src) != want {
		return nil, fmt.Errorf("%w: segment is %d bytes, want %d", ErrTampered, len(src), want)
	}
	return src, nil
}
