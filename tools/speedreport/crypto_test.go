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

// TestMedianRatio: a comparison is judged on the median of its rounds'
// ratios, so one round that met a burst of other work (the pipeline's
// side slowed, or the bound's) does not decide the verdict.
func TestMedianRatio(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, base []float64
		want      float64
	}{
		{"one round", []float64{450}, []float64{500}, 0.9},
		{"the pipeline's side hit by a burst once", []float64{480, 250, 470}, []float64{500, 500, 500}, 0.94},
		{"the bound's side hit once", []float64{480, 470, 490}, []float64{500, 900, 490}, 0.96},
	} {
		if got := medianRatio(tc.got, tc.base); got != tc.want {
			t.Errorf("%s: medianRatio = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := encryptBound(600, 750, 1500); got != 500 {
		t.Errorf("encryptBound(MD5 600, AES 750, HMAC 1500) = %v, want 500 (AES then HMAC on one core)", got)
	}
	if got := encryptBound(400, 750, 1500); got != 400 {
		t.Errorf("encryptBound(MD5 400, ...) = %v, want 400 (the MD5 core)", got)
	}
}
