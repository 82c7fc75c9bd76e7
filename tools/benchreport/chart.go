package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
)

// A 3x5 pixel font, drawn at a scale: enough for axis and bar labels
// without a font package.
var glyphs = map[rune][5]string{
	'A': {"###", "#.#", "###", "#.#", "#.#"}, 'B': {"##.", "#.#", "##.", "#.#", "##."},
	'C': {"###", "#..", "#..", "#..", "###"}, 'D': {"##.", "#.#", "#.#", "#.#", "##."},
	'E': {"###", "#..", "##.", "#..", "###"}, 'F': {"###", "#..", "##.", "#..", "#.."},
	'G': {"###", "#..", "#.#", "#.#", "###"}, 'H': {"#.#", "#.#", "###", "#.#", "#.#"},
	'I': {"###", ".#.", ".#.", ".#.", "###"}, 'J': {"..#", "..#", "..#", "#.#", "###"},
	'K': {"#.#", "#.#", "##.", "#.#", "#.#"}, 'L': {"#..", "#..", "#..", "#..", "###"},
	'M': {"#.#", "###", "###", "#.#", "#.#"}, 'N': {"##.", "#.#", "#.#", "#.#", "#.#"},
	'O': {"###", "#.#", "#.#", "#.#", "###"}, 'P': {"###", "#.#", "###", "#..", "#.."},
	'Q': {"###", "#.#", "#.#", "###", "..#"}, 'R': {"##.", "#.#", "##.", "#.#", "#.#"},
	'S': {"###", "#..", "###", "..#", "###"}, 'T': {"###", ".#.", ".#.", ".#.", ".#."},
	'U': {"#.#", "#.#", "#.#", "#.#", "###"}, 'V': {"#.#", "#.#", "#.#", "#.#", ".#."},
	'W': {"#.#", "#.#", "###", "###", "#.#"}, 'X': {"#.#", "#.#", ".#.", "#.#", "#.#"},
	'Y': {"#.#", "#.#", ".#.", ".#.", ".#."}, 'Z': {"###", "..#", ".#.", "#..", "###"},
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."}, '-': {"...", "...", "###", "...", "..."},
	'/': {"..#", "..#", ".#.", "#..", "#.."}, '=': {"...", "###", "...", "###", "..."},
	'(': {".#.", "#..", "#..", "#..", ".#."}, ')': {".#.", "..#", "..#", "..#", ".#."},
	':': {"...", ".#.", "...", ".#.", "..."}, '%': {"#.#", "..#", ".#.", "#..", "#.#"},
	' ': {"...", "...", "...", "...", "..."},
}

type canvas struct{ img *image.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	for y := max(y0, 0); y < y1 && y < c.img.Rect.Dy(); y++ {
		for x := max(x0, 0); x < x1 && x < c.img.Rect.Dx(); x++ {
			c.img.Set(x, y, col)
		}
	}
}

// text draws s (upper-cased) with its top-left corner at x, y; returns the width.
func (c canvas) text(x, y, scale int, s string, col color.Color) int {
	cx := x
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs[' ']
		}
		for row := range 5 {
			for colm := range 3 {
				if g[row][colm] == '#' {
					c.rect(cx+colm*scale, y+row*scale, cx+(colm+1)*scale, y+(row+1)*scale, col)
				}
			}
		}
		cx += 4 * scale
	}
	return cx - x
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 4 * scale }

// Bar is one bar of a group.
type Bar struct {
	Series string
	Value  float64
}

// Group is a labelled cluster of bars.
type Group struct {
	Label string
	Bars  []Bar
}

// Panel is one bar chart.
type Panel struct {
	Title  string
	Unit   string
	Log    bool
	Groups []Group
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

// Sizes of the chart, in pixels: width, height of a panel, text scale.
const chartW, panelH, textScale = 1100, 300, 2

var (
	ink  = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// drawChart writes the panels one under the other as a PNG.
func drawChart(path string, panels []Panel) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, panelH*len(panels)))
	c := canvas{img}
	c.rect(0, 0, chartW, panelH*len(panels), color.White)
	for pi, p := range panels {
		c.panel(pi*panelH, p)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel draws p with its top at y = top: title, legend, then (when any
// bar has a value) the axis, the bars and their labels.
func (c canvas) panel(top int, p Panel) {
	c.text(10, top+8, textScale, p.Title, ink)
	series := c.legend(top, p)
	x0, x1, y0, y1 := 70, chartW-10, top+50, top+panelH-40 // plot area
	scaleY, ok := c.axis(p, x0, x1, y0, y1)
	if !ok {
		return
	}
	gw := (x1 - x0) / len(p.Groups)
	for gi, g := range p.Groups {
		gx := x0 + gi*gw
		bw := (gw - 16) / max(len(g.Bars), 1)
		for bi, b := range g.Bars {
			si := indexOf(series, b.Series)
			bx := gx + 8 + bi*bw
			c.rect(bx, scaleY(b.Value), bx+bw-2, y1, palette[si%len(palette)])
		}
		lbl, ls := g.Label, textScale
		if textWidth(lbl, ls) > gw-4 {
			ls = 1
		}
		for textWidth(lbl, ls) > gw-4 && len(lbl) > 1 {
			lbl = lbl[:len(lbl)-1]
		}
		c.text(gx+(gw-textWidth(lbl, ls))/2, y1+8, ls, lbl, ink)
	}
	c.rect(x0, y1, x1, y1+1, ink)
}

// legend draws the panel's series in order of first appearance and
// returns them: a series' index picks its colour.
func (c canvas) legend(top int, p Panel) []string {
	var series []string
	for _, g := range p.Groups {
		for _, b := range g.Bars {
			if !contains(series, b.Series) {
				series = append(series, b.Series)
			}
		}
	}
	lx := 10
	for i, s := range series {
		c.rect(lx, top+26, lx+10, top+36, palette[i%len(palette)])
		lx += 14 + c.text(lx+14, top+27, textScale, s, ink) + 16
	}
	return series
}

// axis draws the value axis's grid lines and labels in the plot area
// (x0, y0)-(x1, y1), logarithmic when p.Log, and returns the value to y
// mapping; ok is false when no bar has a positive value.
func (c canvas) axis(p Panel, x0, x1, y0, y1 int) (scaleY func(v float64) int, ok bool) {
	maxV, minV := 0.0, math.Inf(1)
	for _, g := range p.Groups {
		for _, b := range g.Bars {
			maxV = math.Max(maxV, b.Value)
			if b.Value > 0 {
				minV = math.Min(minV, b.Value)
			}
		}
	}
	if maxV <= 0 {
		return nil, false
	}
	if p.Log {
		lo, hi := math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
		if hi == lo {
			hi++
		}
		scaleY = func(v float64) int {
			if v <= 0 {
				return y1
			}
			return y1 - int(float64(y1-y0)*(math.Log10(v)-lo)/(hi-lo))
		}
		for e := lo; e <= hi; e++ {
			y := scaleY(math.Pow(10, e))
			c.rect(x0, y, x1, y+1, grid)
			c.text(4, y-5, textScale, fmtNum(math.Pow(10, e)), ink)
		}
		return scaleY, true
	}
	step := math.Pow(10, math.Floor(math.Log10(maxV)))
	if maxV/step < 3 {
		step /= 2
	}
	hi := math.Ceil(maxV/step) * step
	scaleY = func(v float64) int { return y1 - int(float64(y1-y0)*v/hi) }
	for v := 0.0; v <= hi+step/2; v += step {
		y := scaleY(v)
		c.rect(x0, y, x1, y+1, grid)
		c.text(4, y-5, textScale, fmtNum(v), ink)
	}
	return scaleY, true
}

func contains(s []string, v string) bool { return indexOf(s, v) >= 0 }

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gK", v/1e3)
	case v >= 1 || v == 0:
		return fmt.Sprintf("%g", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}
