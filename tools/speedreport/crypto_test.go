package main

import "testing"

// TestMiddleIndex: the decryption comparison reports a round it measured,
// the median's: with an even number of rounds the lower middle one, not
// the first round (as when the mean of the two middle values was looked
// for among the rounds and matched none).
func TestMiddleIndex(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want int
	}{
		{nil, 0},
		{[]float64{7}, 0},
		{[]float64{3000, 2800}, 1},
		{[]float64{2900, 3100, 2700, 3000}, 0},
		{[]float64{5, 1, 4, 2, 3}, 4},
		{[]float64{2, 2, 1}, 0},
	} {
		if got := middleIndex(tc.xs); got != tc.want {
			t.Errorf("middleIndex(%v) = %d, want %d", tc.xs, got, tc.want)
		}
	}
}
