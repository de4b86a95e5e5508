package main

import (
	"fmt"
	"io"

	"github.com/cowfile/cowfile/internal/benchwork"
)

// target is one row of the targets in DESIGN.md §8 and the bench issue.
type target struct {
	what  string
	check func(rep *benchwork.Report) (figure string, met, known bool)
}

// atLeast is a target on cowfile's ratio to bbolt for a speed row.
func atLeast(workload string, min float64) target {
	return target{
		what: fmt.Sprintf("%s ≥ %.1f× bbolt", workload, min),
		check: func(rep *benchwork.Report) (string, bool, bool) {
			x, ok := rep.Ratio(workload, "cowfile")
			return fmt.Sprintf("%.2f×", x), x >= min, ok
		},
	}
}

var targets = []target{
	atLeast(benchwork.WCommit, 2.0),
	{
		what: "commit-1 p50 ≤ 1.3× the 4 KiB write+fdatasync floor",
		check: func(rep *benchwork.Report) (string, bool, bool) {
			c, ok1 := rep.Find(benchwork.WCommit, "cowfile")
			f, ok2 := rep.Find(benchwork.WFloor, "disk")
			if !ok1 || !ok2 || f.P50 == 0 {
				return "", false, false
			}
			x := c.P50 / f.P50
			return fmt.Sprintf("%.2f× (%.0f µs vs %.0f µs)", x, c.P50, f.P50), x <= 1.3, true
		},
	},
	atLeast(benchwork.WBulkLoad, 2.0),
	atLeast(benchwork.WInsertRand, 1.4),
	atLeast(benchwork.WRead1, 1.6),
	atLeast(benchwork.WRead2, 1.6),
	atLeast(benchwork.WScanFull, 1.0),
	atLeast(benchwork.WScan100, 1.0),
	atLeast(benchwork.WDeleteRand, 2.0),
	atLeast(benchwork.WLargeWrite, 1.8),
	atLeast(benchwork.WLargeRead, 1.2),
	{
		what: "file after bulk load ≤ 1.15× payload",
		check: func(rep *benchwork.Report) (string, bool, bool) {
			r, ok := rep.Find(benchwork.WSizeLoad, "cowfile")
			return fmt.Sprintf("%.3f×", r.Amp), r.Amp <= 1.15, ok
		},
	},
	{
		what: "1-key commit with a full free list within 10% of an empty one",
		check: func(rep *benchwork.Report) (string, bool, bool) {
			e, ok1 := rep.Find(benchwork.WFreeEmpty, "cowfile")
			f, ok2 := rep.Find(benchwork.WFreeFull, "cowfile")
			if !ok1 || !ok2 || e.OpsPerSec == 0 {
				return "", false, false
			}
			x := f.OpsPerSec / e.OpsPerSec
			return fmt.Sprintf("%.2f× commits/s, p50 %.2f×", x, f.P50/e.P50), x >= 0.9, true
		},
	},
	{
		what: "Go heap during bulk load ≤ 64 MiB",
		check: func(rep *benchwork.Report) (string, bool, bool) {
			r, ok := rep.Find(benchwork.WHeapLoad, "cowfile")
			mib := float64(r.HeapPeak) / (1 << 20)
			return fmt.Sprintf("%.1f MiB", mib), mib <= 64, ok
		},
	},
}

// writeTargets prints which targets the report meets.
func writeTargets(w io.Writer, rep *benchwork.Report) {
	fmt.Fprintf(w, "| target (cowfile) | figure | met |\n| --- | --- | --- |\n")
	for _, t := range targets {
		fig, met, known := t.check(rep)
		verdict := "no"
		switch {
		case !known:
			fig, verdict = "not measured", "-"
		case met:
			verdict = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, fig, verdict)
	}
}
