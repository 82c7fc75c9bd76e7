package bufpool

import (
	"math/bits"
	"sync"
)

// The classes are the powers of two from MinSize to MaxSize: a buffer of
// n bytes has at most twice n of capacity (and MinSize for the smallest).
const (
	minShift = 12
	maxShift = 20

	// MinSize is the capacity of the smallest class.
	MinSize = 1 << minShift
	// MaxSize is the capacity of the largest class: larger buffers are
	// allocated, and dropped by Put.
	MaxSize = 1 << maxShift
)

var pools [maxShift - minShift + 1]sync.Pool

// class is the index of the smallest class holding n bytes, n ≤ MaxSize.
func class(n int) int {
	if n <= MinSize {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer of length n: from the pool of the smallest class
// that holds n bytes, or newly allocated when the pool is empty or n is
// larger than MaxSize. Its bytes are not cleared.
func Get(n int) *[]byte {
	if n < 0 {
		n = 0
	}
	if n > MaxSize {
		b := make([]byte, n)
		return &b
	}
	c := class(n)
	if bp, ok := pools[c].Get().(*[]byte); ok {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, MinSize<<c)
	return &b
}

// Put gives a buffer from Get back for reuse; the caller must not use it
// afterwards. A nil buffer, or one whose capacity is not a class (larger
// than MaxSize, or not from Get), is left to the garbage collector.
func Put(bp *[]byte) {
	if bp == nil {
		return
	}
	c := cap(*bp)
	if c < MinSize || c > MaxSize || c&(c-1) != 0 {
		return
	}
	*bp = (*bp)[:c]
	pools[bits.Len(uint(c))-1-minShift].Put(bp)
}
