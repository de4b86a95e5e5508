package main

import (
	"fmt"
	"os"

	"github.com/cowfile/cowfile/internal/benchwork"
	"github.com/spf13/cobra"
)

// benchOptions are the flags of `cowfile bench`.
var benchOptions struct {
	dir     string
	quick   bool
	runs    int
	keys    int
	inserts int
	commits int
	reads   int
	free    int
	jsonOut string
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Measure cowfile on this machine's disk",
	Long: `bench runs cowfile's benchmark workloads on fresh files in a temporary
directory (under --dir, so put it on the disk you care about) and prints a
table: operations per second, MB/s, p50 and p99 latency, file size against
the bytes stored, and the disk's floors to read commit latency against:
one 4 KiB write plus fdatasync, and the shapes of a commit — a 12 KiB run
and a 4 KiB meta with one fdatasync (as cowfile commits) or with an
fdatasync after each (as bbolt and LMDB commit).

Workloads: bulk load of sequential keys (10k per commit), random inserts
(1k per commit), single-key durable commits, random point reads with one
and two goroutines, a full scan, 100-key scans, random deletes of half the
keys, and 100 KiB values written and read. Keys are 16 bytes, values 100
random bytes. Every commit uses the default durability (one fdatasync).
--free N adds the free-list workload: 1-key commits on a file whose free
list holds about N one-page extents against one whose list is empty (it
writes about 3 KiB per entry).

The comparison with bbolt and LMDB lives in the source tree's bench/
directory: cd bench && go run .`,
	Example: `  cowfile bench --dir /data
  cowfile bench --quick
  cowfile bench --keys 200000 --json out.json`,
	Args: nargs(0, 0),
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := benchOptions
		cfg := benchwork.Defaults()
		if o.quick {
			cfg = benchwork.Quick()
		}
		cfg.FreeEntries = 0 // opt-in: it writes gigabytes at the default size
		for _, f := range []struct {
			v   int
			dst *int
		}{{o.keys, &cfg.Keys}, {o.inserts, &cfg.Inserts}, {o.commits, &cfg.Commits}, {o.reads, &cfg.Reads}} {
			if f.v < 0 {
				return usagef("sizes must not be negative")
			}
			if f.v > 0 {
				*f.dst = f.v
			}
		}
		if cmd.Flags().Changed("free") {
			cfg.FreeEntries = o.free
		}
		if cfg.Keys < 2*cfg.ScanLen {
			return usagef("--keys must be at least %d", 2*cfg.ScanLen)
		}
		rn := &benchwork.Runner{Config: cfg, Engines: []benchwork.Engine{benchwork.Cowfile{}}, Runs: o.runs, Dir: o.dir}
		if !quiet {
			rn.Log = cmd.ErrOrStderr()
		}
		rep, err := rn.Run()
		if err != nil {
			return err
		}
		m := rep.Machine
		fmt.Fprintf(cmd.OutOrStdout(), "%s, %s CPUs, %s, %s; median of %d run(s), %.0f s\n\n",
			m["model"], m["cpus"], m["os"], m["go"], rep.Runs, rep.Duration)
		if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
			return err
		}
		if o.jsonOut != "" {
			return rep.WriteJSON(o.jsonOut)
		}
		return nil
	},
}

func init() {
	f := benchCmd.Flags()
	f.StringVar(&benchOptions.dir, "dir", os.TempDir(), "directory for the temporary files (the disk to measure)")
	f.BoolVar(&benchOptions.quick, "quick", false, "small sizes: a smoke run of a few seconds")
	f.IntVar(&benchOptions.runs, "runs", 1, "runs of the whole suite; each row reports the median run")
	f.IntVar(&benchOptions.keys, "keys", 0, "keys in the bulk load (default 1000000)")
	f.IntVar(&benchOptions.inserts, "inserts", 0, "random inserts (default 200000)")
	f.IntVar(&benchOptions.commits, "commits", 0, "single-key commits (default 1000)")
	f.IntVar(&benchOptions.reads, "reads", 0, "random point reads (default 1000000)")
	f.IntVar(&benchOptions.free, "free", 0, "free-list workload: free extents to build (0 skips it)")
	f.StringVar(&benchOptions.jsonOut, "json", "", "also write the results as JSON to this file")
	rootCmd.AddCommand(benchCmd)
}
