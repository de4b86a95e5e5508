package main

import (
	"image/color"

	"github.com/cowfile/cowfile/internal/benchwork"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartRows are the speed workloads the chart shows, with short labels.
// target is cowfile's target ratio for the row.
var chartRows = []struct {
	workload, label string
	target          float64
}{
	{benchwork.WCommit, "1-key commit", 2.0},
	{benchwork.WBulkLoad, "bulk load", 2.0},
	{benchwork.WInsertRand, "rand insert", 1.4},
	{benchwork.WRead1, "reads 1g", 1.6},
	{benchwork.WRead2, "reads 2g", 1.6},
	{benchwork.WScanFull, "full scan", 1.0},
	{benchwork.WScan100, "100-key scans", 1.0},
	{benchwork.WDeleteRand, "rand delete", 2.0},
	{benchwork.WLargeWrite, "100K write", 1.8},
	{benchwork.WLargeRead, "100K read", 1.2},
}

var engineColors = map[string]color.Color{
	"cowfile": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"bbolt":   color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
	"lmdb":    color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// writeChart draws every engine's speed ratio to bbolt per workload as
// grouped bars (bbolt is 1.0 by definition) and saves a PNG.
func writeChart(rep *benchwork.Report, path string) error {
	p := plot.New()
	p.Title.Text = "Throughput relative to bbolt (higher is better)"
	p.Y.Label.Text = "× bbolt"
	p.Y.Min = 0
	labels := make([]string, len(chartRows))
	for i, r := range chartRows {
		labels[i] = r.label
	}
	w := vg.Points(14)
	n := len(rep.Engines)
	for ei, e := range rep.Engines {
		vals := make(plotter.Values, len(chartRows))
		for i, r := range chartRows {
			if x, ok := rep.Ratio(r.workload, e); ok {
				vals[i] = x
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		if c, ok := engineColors[e]; ok {
			bars.Color = c
		}
		bars.Offset = w * vg.Length(2*ei-(n-1)) / 2
		p.Add(bars)
		p.Legend.Add(e, bars)
	}
	// cowfile's targets, as marks over each group.
	var pts plotter.XYs
	for i, r := range chartRows {
		pts = append(pts, plotter.XY{X: float64(i), Y: r.target})
	}
	marks, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	marks.GlyphStyle.Shape = draw.PyramidGlyph{}
	marks.GlyphStyle.Radius = vg.Points(4)
	marks.GlyphStyle.Color = color.Black
	p.Add(marks)
	p.Legend.Add("cowfile target", marks)
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Color = color.Black
	one.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(one)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = -0.9
	p.X.Tick.Label.YAlign = -0.6
	return p.Save(10*vg.Inch, 5*vg.Inch, path)
}
