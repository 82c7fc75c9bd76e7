// Package soak holds what tools/soak.sh's run (functional.TestSoak) needs
// beyond the functional helpers: a line chart of samples over time written
// as a PNG with the standard library only (image, image/png), its labels in
// a small built-in bitmap font.
package soak

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// Series is one line of a chart: Y[i] at X[i] (seconds).
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart; YLabel names the unit (e.g. "RSS MIB").
type Chart struct {
	Title  string
	YLabel string
	Series []Series
	W, H   int
}

// Palette is the colour of series i (in order, repeating).
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

const (
	marginL = 60
	marginR = 20
	marginT = 40
	marginB = 50
	scale   = 2 // font pixels per glyph dot
)

// WritePNG draws the chart into w.
func (c Chart) WritePNG(w io.Writer) error {
	if c.W == 0 {
		c.W = 960
	}
	if c.H == 0 {
		c.H = 480
	}
	img := image.NewRGBA(image.Rect(0, 0, c.W, c.H))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	xmax, ymax := 0.0, 0.0
	for _, s := range c.Series {
		for i := range s.X {
			xmax = math.Max(xmax, s.X[i])
			ymax = math.Max(ymax, s.Y[i])
		}
	}
	if xmax <= 0 {
		xmax = 1
	}
	ystep := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/ystep) * ystep
	if ymax <= 0 {
		ymax = 1
	}
	xstep := niceStep(xmax / 8)
	pw, ph := c.W-marginL-marginR, c.H-marginT-marginB
	px := func(x float64) int { return marginL + int(x/xmax*float64(pw)) }
	py := func(y float64) int { return marginT + ph - int(y/ymax*float64(ph)) }

	grid := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	ink := color.RGBA{0x22, 0x22, 0x22, 0xff}
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		hline(img, marginL, marginL+pw, py(y), grid)
		label := trimFloat(y)
		text(img, marginL-6-textWidth(label), py(y)-5, label, ink)
	}
	for x := 0.0; x <= xmax+xstep/2; x += xstep {
		vline(img, px(x), marginT, marginT+ph, grid)
		label := trimFloat(x)
		text(img, px(x)-textWidth(label)/2, marginT+ph+8, label, ink)
	}
	hline(img, marginL, marginL+pw, marginT+ph, ink)
	vline(img, marginL, marginT, marginT+ph, ink)
	text(img, marginL+pw/2-textWidth("SECONDS")/2, c.H-18, "SECONDS", ink)
	text(img, 6, 8, strings.ToUpper(c.YLabel), ink)
	text(img, marginL+pw/2-textWidth(strings.ToUpper(c.Title))/2, 8, strings.ToUpper(c.Title), ink)

	lx := marginL + 10
	for i, s := range c.Series {
		col := Palette[i%len(Palette)]
		for j := 1; j < len(s.X); j++ {
			line(img, px(s.X[j-1]), py(s.Y[j-1]), px(s.X[j]), py(s.Y[j]), col)
		}
		name := strings.ToUpper(s.Name)
		fill(img, image.Rect(lx, marginT+6, lx+12, marginT+16), col)
		text(img, lx+16, marginT+6, name, ink)
		lx += 16 + textWidth(name) + 18
	}
	return png.Encode(w, img)
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return strings.TrimRight(fmt.Sprintf("%.2f", f), "0")
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

// line is Bresenham's, two pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3x5 bitmap font: five rows of three dots each.
var glyphs = map[rune]string{
	'0': "111101101101111", '1': "010110010010111", '2': "111001111100111", '3': "111001111001111",
	'4': "101101111001001", '5': "111100111001111", '6': "111100111101111", '7': "111001010010010",
	'8': "111101111101111", '9': "111101111001111", '.': "000000000000010", '-': "000000111000000",
	' ': "000000000000000", '(': "010100100100010", ')': "010001001001010", '/': "001001010100100",
	'A': "010101111101101", 'B': "110101110101110", 'C': "011100100100011", 'D': "110101101101110",
	'E': "111100110100111", 'F': "111100110100100", 'G': "011100101101011", 'H': "101101111101101",
	'I': "111010010010111", 'J': "001001001101010", 'K': "101101110101101", 'L': "100100100100111",
	'M': "101111111101101", 'N': "110101101101101", 'O': "010101101101010", 'P': "110101110100100",
	'Q': "010101101110011", 'R': "110101110101101", 'S': "011100010001110", 'T': "111010010010010",
	'U': "101101101101111", 'V': "101101101101010", 'W': "101101111111101", 'X': "101101010101101",
	'Y': "101101010010010", 'Z': "111001010100111",
}

func textWidth(s string) int { return len([]rune(s)) * 4 * scale }

func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs[' ']
		}
		for i, dot := range g {
			if dot != '1' {
				continue
			}
			fill(img, image.Rect(x+(i%3)*scale, y+(i/3)*scale, x+(i%3+1)*scale, y+(i/3+1)*scale), c)
		}
		x += 4 * scale
	}
}
