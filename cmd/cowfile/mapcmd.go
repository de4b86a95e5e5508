package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"

	"github.com/cowfile/cowfile/inspect"
	"github.com/cowfile/cowfile/pager/page"
	"github.com/spf13/cobra"
)

// The classes a map cell is coloured by, in legend order.
type mapClass int

const (
	clsMeta mapClass = iota
	clsBranch
	clsLeaf
	clsValue
	clsLog
	clsPending
	clsFree
	clsLeaked
	clsDamaged
	clsUnused
	clsUnknown
	numClasses
)

var classInfo = [numClasses]struct {
	name  string
	color color.RGBA
	aged  bool // shaded by the txid that wrote the page
}{
	clsMeta:    {"meta", rgb(0x37, 0x47, 0x4f), false},
	clsBranch:  {"branch", rgb(0x15, 0x65, 0xc0), true},
	clsLeaf:    {"leaf", rgb(0x2e, 0x9d, 0x3a), true},
	clsValue:   {"value run", rgb(0x00, 0x83, 0x8f), true},
	clsLog:     {"free-space log", rgb(0xef, 0x6c, 0x00), true},
	clsPending: {"pending", rgb(0xf9, 0xb8, 0x00), true},
	clsFree:    {"free", rgb(0xff, 0xff, 0xff), false},
	clsLeaked:  {"leaked", rgb(0xe5, 0x39, 0x35), false},
	clsDamaged: {"damaged", rgb(0xc2, 0x18, 0x8b), false},
	clsUnused:  {"past hwm", rgb(0xcf, 0xd8, 0xdc), false},
	clsUnknown: {"unknown", rgb(0x9e, 0x9e, 0x9e), false},
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 0xff} }

func classOf(p *inspect.PageInfo) mapClass {
	switch p.Status {
	case inspect.StatusLive:
		if p.Problem != "" {
			return clsDamaged
		}
		switch p.Kind {
		case inspect.KindMeta:
			return clsMeta
		case inspect.KindBranch:
			return clsBranch
		case inspect.KindLeaf:
			return clsLeaf
		case inspect.KindValue:
			return clsValue
		case inspect.KindFreeDelta, inspect.KindFreeCheckpoint, inspect.KindFreeSweep:
			return clsLog
		}
		return clsDamaged
	case inspect.StatusPending:
		return clsPending
	case inspect.StatusFree:
		return clsFree
	case inspect.StatusUnreachable:
		return clsLeaked
	case inspect.StatusUnused:
		return clsUnused
	}
	return clsUnknown
}

var (
	mapOut      string
	mapMaxCells int
	mapCell     int
	mapJSON     bool
)

var mapCmd = &cobra.Command{
	Use:   "map FILE -o map.png",
	Short: "Draw the file's pages as a PNG picture",
	Long: `map draws every page of FILE as one cell of a grid, in page order, left to
right and top to bottom, coloured by what the page holds and its status:
meta, branch, leaf, value run and free-space log pages are live; pending
pages are freed but kept for a snapshot's version; free pages may be
reused by the next commit; leaked pages are neither live nor free;
damaged pages are reachable but fail their checks; past hwm is
preallocated space. Live and pending pages are shaded by the transaction
that wrote them: the darker, the newer. A dark bar marks where the free
tail of the file starts: the part a compaction would give back.

Files with more pages than --max-cells are drawn with several pages per
cell: a cell takes the class most of its pages have, except that a cell
with any damaged or leaked page shows that. The title gives the totals.

Like inspect, map decodes the bytes directly and works on damaged files.`,
	Example: `  cowfile map app.cow -o app.png
  cowfile map --max-cells 1024 big.cow -o big.png`,
	Args: nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		if mapOut == "" {
			return usagef("map needs -o FILE.png")
		}
		if mapMaxCells < 16 || mapCell < 2 || mapCell > 64 {
			return usagef("--max-cells must be at least 16 and --cell from 2 to 64")
		}
		f, err := inspect.Open(args[0], 0)
		if err != nil {
			return err
		}
		defer f.Close()
		a, err := f.Analyze(-1)
		if err != nil {
			return err
		}
		m := buildMap(a, mapMaxCells)
		img := m.draw(filepath.Base(args[0]), mapCell)
		out, err := os.Create(mapOut)
		if err != nil {
			return err
		}
		if err := png.Encode(out, img); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if mapJSON {
			counts := map[string]int{}
			for c := mapClass(0); c < numClasses; c++ {
				counts[classInfo[c].name] = m.counts[c]
			}
			return writeJSON(w, map[string]any{"file": args[0], "png": mapOut, "pages": len(a.Pages),
				"pages_per_cell": m.perCell, "tail_free_pages": m.tail, "counts": counts,
				"width": img.Bounds().Dx(), "height": img.Bounds().Dy()})
		}
		fmt.Fprintf(w, "wrote %s: %d pages, %d per cell, %dx%d pixels\n", mapOut, len(a.Pages), m.perCell, img.Bounds().Dx(), img.Bounds().Dy())
		return nil
	},
}

func init() {
	mapCmd.Flags().StringVarP(&mapOut, "output", "o", "", "the PNG file to write (required)")
	mapCmd.Flags().IntVar(&mapMaxCells, "max-cells", 4096, "most cells to draw; larger files get several pages per cell")
	mapCmd.Flags().IntVar(&mapCell, "cell", 12, "cell size in pixels")
	mapCmd.Flags().BoolVar(&mapJSON, "json", false, "write the totals as JSON")
	rootCmd.AddCommand(mapCmd)
}

// pageMap is what the picture shows.
type pageMap struct {
	a       *inspect.Analysis
	perCell int
	cells   []cell
	counts  [numClasses]int
	tail    int // free or unused pages at the end of the file
	tailAt  int // the cell where the tail starts (len(cells): none)
	minTx   page.TxID
	maxTx   page.TxID
}

type cell struct {
	class mapClass
	txid  page.TxID
}

func buildMap(a *inspect.Analysis, maxCells int) *pageMap {
	n := len(a.Pages)
	m := &pageMap{a: a, perCell: max(1, (n+maxCells-1)/maxCells)}
	first := true
	for i := range a.Pages {
		p := &a.Pages[i]
		c := classOf(p)
		m.counts[c]++
		if classInfo[c].aged && p.TxID != 0 {
			if first || p.TxID < m.minTx {
				m.minTx = p.TxID
			}
			if first || p.TxID > m.maxTx {
				m.maxTx = p.TxID
			}
			first = false
		}
	}
	end := n
	for end > 0 {
		if c := classOf(&a.Pages[end-1]); c != clsFree && c != clsUnused {
			break
		}
		end--
	}
	m.tail = n - end
	m.tailAt = (end + m.perCell - 1) / m.perCell
	for start := 0; start < n; start += m.perCell {
		var votes [numClasses]int
		var txsum [numClasses]uint64
		for i := start; i < min(n, start+m.perCell); i++ {
			c := classOf(&a.Pages[i])
			votes[c]++
			txsum[c] += uint64(a.Pages[i].TxID)
		}
		best := clsUnknown
		switch {
		case votes[clsDamaged] > 0:
			best = clsDamaged
		case votes[clsLeaked] > 0:
			best = clsLeaked
		default:
			for c := mapClass(0); c < numClasses; c++ {
				if votes[c] > votes[best] {
					best = c
				}
			}
		}
		m.cells = append(m.cells, cell{class: best, txid: page.TxID(txsum[best] / uint64(max(1, votes[best])))})
	}
	return m
}

// shade returns a cell's colour: its class's, lightened toward white the
// older the txid that wrote it.
func (m *pageMap) shade(c cell) color.RGBA {
	col := classInfo[c.class].color
	if !classInfo[c.class].aged || m.maxTx == m.minTx || c.txid == 0 {
		return col
	}
	age := float64(m.maxTx-min(c.txid, m.maxTx)) / float64(m.maxTx-m.minTx)
	t := 0.6 * age
	mix := func(v uint8) uint8 { return uint8(float64(v) + (255-float64(v))*t + 0.5) }
	return color.RGBA{mix(col.R), mix(col.G), mix(col.B), 0xff}
}

var (
	inkColor  = rgb(0x21, 0x21, 0x21)
	gridColor = rgb(0xb0, 0xbe, 0xc5)
	bgColor   = rgb(0xfa, 0xfa, 0xfa)
)

func (m *pageMap) draw(name string, cs int) *image.RGBA {
	const margin, scale = 12, 2
	lineH := (glyphH+descender)*scale + 6
	a := m.a
	ncells := len(m.cells)
	cols := 16
	for cols*cols < 2*ncells && cols < 64 {
		cols *= 2
	}
	rows := max(1, (ncells+cols-1)/cols)

	live := 0
	for _, c := range []mapClass{clsMeta, clsBranch, clsLeaf, clsValue, clsLog} {
		live += m.counts[c]
	}
	title := fmt.Sprintf("%s: %d pages of %d bytes", name, len(a.Pages), a.File.PageSize())
	if a.Slot >= 0 {
		title += fmt.Sprintf(", tx %d", a.Meta.TxID)
	}
	sub := fmt.Sprintf("live %d  pending %d  free %d  leaked %d  damaged %d  free tail %d pages",
		live, m.counts[clsPending], m.counts[clsFree], m.counts[clsLeaked], m.counts[clsDamaged], m.tail)
	note := fmt.Sprintf("1 cell = %d page(s), left to right from page 0; darker = newer txid", m.perCell)
	if a.Slot < 0 {
		note = "no usable meta: pages are classified by their headers only"
	}

	gridW := cols*(cs+1) + 1
	// Legend entries: swatch and label, laid out in rows.
	type entry struct {
		label string
		col   color.RGBA
	}
	var legend []entry
	for c := mapClass(0); c < numClasses; c++ {
		if m.counts[c] == 0 && c != clsFree && c != clsPending {
			continue
		}
		legend = append(legend, entry{fmt.Sprintf("%s %d", classInfo[c].name, m.counts[c]), classInfo[c].color})
	}
	entryW := 0
	for _, e := range legend {
		entryW = max(entryW, lineH+textWidth(e.label, scale)+2*margin)
	}
	width := max(gridW, textWidth(title, scale), textWidth(sub, scale), textWidth(note, scale), 3*entryW) + 2*margin
	perRow := max(1, (width-2*margin)/entryW)
	legendRows := (len(legend) + perRow - 1) / perRow
	gridY := margin + 3*lineH + 4
	legendY := gridY + rows*(cs+1) + 1 + margin
	height := legendY + legendRows*lineH + margin

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), bgColor)
	drawText(img, margin, margin, title, scale, inkColor)
	drawText(img, margin, margin+lineH, sub, scale, inkColor)
	drawText(img, margin, margin+2*lineH, note, scale, rgb(0x61, 0x61, 0x61))

	for i, c := range m.cells {
		x := margin + 1 + (i%cols)*(cs+1)
		y := gridY + 1 + (i/cols)*(cs+1)
		fill(img, image.Rect(x-1, y-1, x+cs+1, y+cs+1), gridColor)
		fill(img, image.Rect(x, y, x+cs, y+cs), m.shade(c))
	}
	if m.tail > 0 && m.tailAt < ncells {
		// A bar on the left edge of the first cell of the free tail.
		x := margin + (m.tailAt%cols)*(cs+1)
		y := gridY + (m.tailAt/cols)*(cs+1)
		fill(img, image.Rect(x-1, y-1, x+3, y+cs+3), inkColor)
	}
	for i, e := range legend {
		x := margin + (i%perRow)*entryW
		y := legendY + (i/perRow)*lineH
		sw := glyphH * scale
		fill(img, image.Rect(x, y, x+sw, y+sw), gridColor)
		fill(img, image.Rect(x+1, y+1, x+sw-1, y+sw-1), e.col)
		drawText(img, x+sw+8, y, e.label, scale, inkColor)
	}
	return img
}
