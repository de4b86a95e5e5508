package benchwork

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Baseline is the engine the ratios are taken against.
const Baseline = "bbolt"

// SpeedWorkloads are the rows judged by ops/s, in report order.
var SpeedWorkloads = []string{WCommit, WBulkLoad, WInsertRand, WRead1, WRead2, WScanFull, WScan100,
	WDeleteRand, WLargeWrite, WLargeRead}

// SizeWorkloads are the rows judged by file bytes against payload bytes.
var SizeWorkloads = []string{WSizeLoad, WSizeDelete, WSizeInsert}

// Find returns the median row of a workload on an engine.
func (rep *Report) Find(workload, engine string) (Result, bool) {
	for _, r := range rep.Median {
		if r.Workload == workload && r.Engine == engine {
			return r, true
		}
	}
	return Result{}, false
}

// Ratio is engine's figure over the baseline's for a workload: for speed
// rows higher is better, for size and heap rows lower is better.
func (rep *Report) Ratio(workload, engine string) (float64, bool) {
	r, ok := rep.Find(workload, engine)
	b, okb := rep.Find(workload, Baseline)
	if !ok || !okb || b.Value() == 0 {
		return 0, false
	}
	return r.Value() / b.Value(), true
}

// WriteTable prints the report as Markdown tables.
func (rep *Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	c := rep.Config
	_, haveBase := rep.Find(WBulkLoad, Baseline)
	ratioHead := ""
	if haveBase {
		ratioHead = " × " + Baseline + " |"
	}
	fmt.Fprintf(bw, "| workload | engine | ops/s | MB/s | p50 | p99 | latency of |%s\n", ratioHead)
	fmt.Fprintf(bw, "| --- | --- | ---: | ---: | ---: | ---: | --- |%s\n", strings.Repeat(" ---: |", boolInt(haveBase)))
	rows := append([]string{WFloor, WFloorCommit1, WFloorCommit2, WFloorContig, WFloorLarge1, WFloorLarge2}, SpeedWorkloads...)
	for _, wl := range rows {
		for _, r := range rep.rowsOf(wl) {
			ratio := ""
			if haveBase {
				ratio = " |"
				if x, ok := rep.Ratio(wl, r.Engine); ok && r.Engine != "disk" {
					ratio = fmt.Sprintf(" %.2f× |", x)
				}
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %.1f | %s | %s | %s |%s\n", c.Describe(wl), r.Engine,
				fnum(r.OpsPerSec), r.MBPerSec, fdur(r.P50), fdur(r.P99), r.LatencyOf, ratio)
		}
	}
	if f, ok := rep.Find(WFloor, "disk"); ok {
		fmt.Fprintln(bw)
		f1, ok1 := rep.Find(WFloorCommit1, "disk")
		f2, ok2 := rep.Find(WFloorCommit2, "disk")
		for _, r := range rep.rowsOf(WCommit) {
			fmt.Fprintf(bw, "- %s: single-commit p50 is %.2f× the floor's p50", r.Engine, r.P50/f.P50)
			if ok1 && ok2 {
				fmt.Fprintf(bw, " (%.2f× the one-sync commit floor, %.2f× the two-sync one)", r.P50/f1.P50, r.P50/f2.P50)
			}
			fmt.Fprintln(bw, ".")
		}
		if ok1 && ok2 && f1.P50 > 0 {
			fmt.Fprintf(bw, "- The disk's own limit on commits/s, one-sync floor against two-sync floor: %.2f×.\n", f2.P50/f1.P50)
		}
		if fc, ok := rep.Find(WFloorContig, "disk"); ok && ok1 {
			fmt.Fprintf(bw, "- The same 16 KiB in one write: p50 %.2f× the 4 KiB floor's, against %.2f× as two writes: a second region, not the bytes, is what a one-sync commit pays for.\n", fc.P50/f.P50, f1.P50/f.P50)
		}
	}
	if f1, ok := rep.Find(WFloorLarge1, "disk"); ok && f1.P50 > 0 {
		f2, ok2 := rep.Find(WFloorLarge2, "disk")
		for _, r := range rep.rowsOf(WLargeWrite) {
			fmt.Fprintf(bw, "- %s: large-value commit p50 is %.2f× the one-sync floor of that commit", r.Engine, r.P50/f1.P50)
			if ok2 && f2.P50 > 0 {
				fmt.Fprintf(bw, " (%.2f× the two-sync one)", r.P50/f2.P50)
			}
			fmt.Fprintln(bw, ".")
		}
		if ok2 {
			fmt.Fprintf(bw, "- The disk's own limit on large-value commits/s, one-sync floor against two-sync floor: %.2f×.\n", f2.P50/f1.P50)
		}
	}

	fmt.Fprintf(bw, "\n| file | engine | bytes | × payload |%s\n", ratioHead)
	fmt.Fprintf(bw, "| --- | --- | ---: | ---: |%s\n", strings.Repeat(" ---: |", boolInt(haveBase)))
	for _, wl := range SizeWorkloads {
		for _, r := range rep.rowsOf(wl) {
			ratio := ""
			if haveBase {
				ratio = " |"
				if x, ok := rep.Ratio(wl, r.Engine); ok {
					ratio = fmt.Sprintf(" %.2f× |", x)
				}
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %.2f× |%s\n", c.Describe(wl), r.Engine, fnum(float64(r.FileBytes)), r.Amp, ratio)
		}
	}

	fmt.Fprintf(bw, "\n| %s | engine | MiB |\n| --- | --- | ---: |\n", c.Describe(WHeapLoad))
	for _, r := range rep.rowsOf(WHeapLoad) {
		v := fmt.Sprintf("%.1f", float64(r.HeapPeak)/(1<<20))
		if r.Note != "" {
			v += " (" + r.Note + ")"
		}
		fmt.Fprintf(bw, "| | %s | %s |\n", r.Engine, v)
	}

	if e, ok := rep.Find(WFreeEmpty, "cowfile"); ok {
		f, _ := rep.Find(WFreeFull, "cowfile")
		fmt.Fprintf(bw, "\n| free-list workload (cowfile) | commits/s | p50 | p99 | note |\n| --- | ---: | ---: | ---: | --- |\n")
		for _, w := range []string{WFreeEmpty, WFreeFull, WFreeEmptyNoSync, WFreeFullNoSync} {
			if r, ok := rep.Find(w, "cowfile"); ok {
				fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", c.Describe(r.Workload), fnum(r.OpsPerSec), fdur(r.P50), fdur(r.P99), r.Note)
			}
		}
		if o, ok := rep.Find(WOpenFreeFull, "cowfile"); ok {
			fmt.Fprintf(bw, "| %s | | %s | | %s |\n", c.Describe(WOpenFreeFull), fdur(o.P50), o.Note)
		}
		if e.OpsPerSec > 0 {
			fmt.Fprintf(bw, "\nFull free list against empty: durable %.2f× commits/s, %.2f× p50", f.OpsPerSec/e.OpsPerSec, f.P50/e.P50)
			en, ok1 := rep.Find(WFreeEmptyNoSync, "cowfile")
			fn, ok2 := rep.Find(WFreeFullNoSync, "cowfile")
			if ok1 && ok2 && en.OpsPerSec > 0 {
				fmt.Fprintf(bw, "; no sync %.2f× commits/s, %.2f× p50", fn.OpsPerSec/en.OpsPerSec, fn.P50/en.P50)
			}
			fmt.Fprintln(bw, ".")
		}
	}
	return bw.Flush()
}

// rowsOf returns the median rows of a workload in engine order.
func (rep *Report) rowsOf(workload string) []Result {
	var out []Result
	for _, e := range append([]string{"disk"}, rep.Engines...) {
		if r, ok := rep.Find(workload, e); ok {
			out = append(out, r)
		}
	}
	return out
}

// WriteJSON writes the whole report, every run included.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Machine describes where the suite ran.
func Machine() map[string]string {
	m := map[string]string{
		"go":    runtime.Version(),
		"os":    runtime.GOOS + "/" + runtime.GOARCH,
		"cpus":  fmt.Sprint(runtime.NumCPU()),
		"model": cpuModel(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			m["dep "+d.Path] = d.Version
		}
	}
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fnum formats a count with a k/M/G suffix.
func fnum(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// fdur formats microseconds.
func fdur(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	}
	return fmt.Sprintf("%.0f µs", us)
}
