// Command bench compares cowfile with bbolt and LMDB: every workload on
// every engine in one process, engine after engine, on fresh files in one
// temporary directory; it prints Markdown tables with ratios to bbolt,
// checks the targets, and writes the full results as JSON.
//
//	cd bench && go run . [-quick] [-runs 3] [-engines cowfile,bbolt,lmdb] [-json out.json] [-chart out.png]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/cowfile/cowfile/internal/benchwork"
)

var allEngines = []benchwork.Engine{benchwork.Cowfile{}, bboltEngine{}, lmdbEngine{}}

// options are the command's flags.
type options struct {
	quick      bool
	runs       int
	engines    string
	dir        string
	jsonOut    string
	mdOut      string
	chartOut   string
	cpuprofile string
	keys       int
	inserts    int
	commits    int
	reads      int
	free       int
	quiet      bool
	from       string
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke run: every workload, small sizes, one run")
	flag.IntVar(&o.runs, "runs", 3, "full runs of the suite; each row reports the median run")
	flag.StringVar(&o.engines, "engines", "cowfile,bbolt,lmdb", "comma-separated engines to run")
	flag.StringVar(&o.dir, "dir", "", "directory for the temporary files (default: the system temp dir)")
	flag.StringVar(&o.jsonOut, "json", "bench.json", "write the results as JSON to this file (\"\" = none)")
	flag.StringVar(&o.mdOut, "md", "", "also write the Markdown tables to this file")
	flag.StringVar(&o.chartOut, "chart", "", "write a PNG bar chart of the ratios to bbolt to this file")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.IntVar(&o.keys, "keys", 0, "keys in the bulk load (default 1M; quick 20k)")
	flag.IntVar(&o.inserts, "inserts", 0, "random inserts (default 200k)")
	flag.IntVar(&o.commits, "commits", 0, "single-key commits (default 1000)")
	flag.IntVar(&o.reads, "reads", 0, "random point reads (default 1M)")
	flag.IntVar(&o.free, "free", -1, "free-list workload: free pages to build, 0 to skip (default 1M)")
	flag.BoolVar(&o.quiet, "q", false, "no progress output")
	flag.StringVar(&o.from, "from", "", "run nothing: print the tables and draw the chart of a saved JSON report")
	flag.Parse()
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options, stdout, stderr io.Writer) error {
	cfg := benchwork.Defaults()
	if o.quick {
		cfg = benchwork.Quick()
		o.runs = 1
	}
	for _, f := range []struct {
		v   int
		dst *int
	}{{o.keys, &cfg.Keys}, {o.inserts, &cfg.Inserts}, {o.commits, &cfg.Commits}, {o.reads, &cfg.Reads}} {
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	if o.free >= 0 {
		cfg.FreeEntries = o.free
	}
	var engines []benchwork.Engine
	for _, name := range strings.Split(o.engines, ",") {
		found := false
		for _, e := range allEngines {
			if e.Name() == strings.TrimSpace(name) {
				engines, found = append(engines, e), true
			}
		}
		if !found {
			return fmt.Errorf("unknown engine %q", name)
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var rep *benchwork.Report
	if o.from != "" {
		b, err := os.ReadFile(o.from)
		if err != nil {
			return err
		}
		rep = new(benchwork.Report)
		if err := json.Unmarshal(b, rep); err != nil {
			return fmt.Errorf("%s: %w", o.from, err)
		}
		o.jsonOut = ""
	} else {
		rn := &benchwork.Runner{Config: cfg, Engines: engines, Runs: o.runs, Dir: o.dir, Log: stderr}
		if o.quiet {
			rn.Log = nil
		}
		var err error
		if rep, err = rn.Run(); err != nil {
			return err
		}
	}
	for i, r := range rep.Median {
		if r.Workload == benchwork.WHeapLoad && r.Engine == "lmdb" {
			rep.Median[i].Note = "Go heap only: LMDB allocates in C"
		}
	}
	var md strings.Builder
	writeHeader(&md, rep)
	if err := rep.WriteTable(&md); err != nil {
		return err
	}
	md.WriteString("\n")
	writeTargets(&md, rep)
	fmt.Fprint(stdout, md.String())
	if o.mdOut != "" {
		if err := os.WriteFile(o.mdOut, []byte(md.String()), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		if err := rep.WriteJSON(o.jsonOut); err != nil {
			return err
		}
	}
	if o.chartOut != "" {
		if err := writeChart(rep, o.chartOut); err != nil {
			return err
		}
	}
	return nil
}

// writeHeader says where and how the figures were made.
func writeHeader(w io.Writer, rep *benchwork.Report) {
	m := rep.Machine
	fmt.Fprintf(w, "Machine: %s, %s CPUs, %s, %s. ", m["model"], m["cpus"], m["os"], m["go"])
	var deps []string
	for _, d := range []string{"go.etcd.io/bbolt", "github.com/PowerDNS/lmdb-go"} {
		if v := m["dep "+d]; v != "" {
			deps = append(deps, d+" "+v)
		}
	}
	if len(deps) > 0 {
		fmt.Fprintf(w, "Versions: %s. ", strings.Join(deps, ", "))
	}
	fmt.Fprintf(w, "Median of %d run(s), %s started %s, took %.0f s.\n\n", rep.Runs, strings.Join(rep.Engines, ", "),
		rep.Started.Format("2006-01-02 15:04"), rep.Duration)
}
