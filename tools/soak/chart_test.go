package soak

import (
	"bytes"
	"image/png"
	"testing"
)

func TestChartPNG(t *testing.T) {
	c := Chart{Title: "rss", YLabel: "MIB", Series: []Series{
		{Name: "arca-api", X: []float64{0, 5, 10}, Y: []float64{20, 25, 24}},
		{Name: "obj1", X: []float64{0, 5, 10}, Y: []float64{30, 31, 30.5}},
	}}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 480 {
		t.Fatalf("size %v", b)
	}
	// An empty chart still draws.
	if err := (Chart{}).WritePNG(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}
