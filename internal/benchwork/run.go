package benchwork

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// Runner runs the suite.
type Runner struct {
	Config  Config
	Engines []Engine
	Runs    int       // full runs of the suite; results are the median run per row
	Dir     string    // parent of the temporary directory ("" = os.TempDir())
	Log     io.Writer // progress; nil discards it
}

// Report is the outcome of a Runner: every run's rows and the medians.
type Report struct {
	Config   Config            `json:"config"`
	Engines  []string          `json:"engines"`
	Runs     int               `json:"runs"`
	Machine  map[string]string `json:"machine"`
	Started  time.Time         `json:"started"`
	Duration float64           `json:"duration_seconds"`
	Median   []Result          `json:"median"`
	All      []Result          `json:"all"`
}

func (rn *Runner) logf(format string, args ...any) {
	if rn.Log != nil {
		fmt.Fprintf(rn.Log, format+"\n", args...)
	}
}

// Run runs the suite rn.Runs times. Within a run, each workload runs on
// every engine before the next workload starts (engine after engine, on
// fresh files in one temporary directory), and the engines' order rotates
// from run to run, so that the disk's drift spreads over all of them.
func (rn *Runner) Run() (*Report, error) {
	runs := max(rn.Runs, 1)
	rep := &Report{Config: rn.Config, Runs: runs, Machine: Machine(), Started: time.Now()}
	for _, e := range rn.Engines {
		rep.Engines = append(rep.Engines, e.Name())
	}
	for r := 0; r < runs; r++ {
		n := len(rn.Engines)
		order := make([]Engine, n)
		for i := range order {
			order[i] = rn.Engines[(i+r)%n]
		}
		rn.logf("run %d of %d", r+1, runs)
		res, err := rn.runOnce(order)
		for i := range res {
			res[i].Run = r
		}
		rep.All = append(rep.All, res...)
		if err != nil {
			return rep, err
		}
	}
	rep.Median = medians(rep.All)
	rep.Duration = time.Since(rep.Started).Seconds()
	return rep, nil
}

func (rn *Runner) runOnce(order []Engine) (out []Result, err error) {
	c := rn.Config
	dir, err := os.MkdirTemp(rn.Dir, "cowfile-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	vals := newValues(1)
	add := func(rs ...Result) {
		for _, r := range rs {
			rn.logf("  %-20s %-8s %s", r.Workload, r.Engine, r.Short())
		}
		out = append(out, rs...)
	}
	path := func(e Engine, what string) string { return filepath.Join(dir, e.Name()+"-"+what) }
	// each runs fn on every engine in order, each on a fresh store when
	// fresh is set, after a GC so one engine's garbage is not another's
	// pause.
	each := func(fn func(e Engine) error) error {
		for _, e := range order {
			runtime.GC()
			if err := fn(e); err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
		}
		return nil
	}

	for _, fl := range floors(c) {
		r, err := floor(dir, fl.id, fl.steps, c.FloorWrites)
		if err != nil {
			return out, fmt.Errorf("floor: %w", err)
		}
		add(r)
	}

	// The loaded stores stay open through the read, scan and delete
	// workloads.
	loaded := map[string]Store{}
	defer func() {
		for _, s := range loaded {
			s.Close()
		}
	}()
	payload := int64(c.Keys) * (KeySize + ValueSize)
	err = each(func(e Engine) error {
		s, err := e.Create(path(e, "load"))
		if err != nil {
			return err
		}
		loaded[e.Name()] = s
		r, h, err := bulkLoad(c, e.Name(), s, vals)
		if err != nil {
			return err
		}
		sz, err := sizeRow(WSizeLoad, e.Name(), s, payload)
		if err != nil {
			return err
		}
		add(r, h, sz)
		return nil
	})
	if err != nil {
		return out, err
	}
	steps := []func(e Engine, s Store) (Result, error){
		func(e Engine, s Store) (Result, error) { return randomReads(c, e.Name(), WRead1, s, 1) },
		func(e Engine, s Store) (Result, error) { return randomReads(c, e.Name(), WRead2, s, 2) },
		func(e Engine, s Store) (Result, error) { return fullScan(c, e.Name(), s) },
		func(e Engine, s Store) (Result, error) { return shortScans(c, e.Name(), s) },
		func(e Engine, s Store) (Result, error) { return randomDeletes(c, e.Name(), s) },
	}
	for _, step := range steps {
		if err := each(func(e Engine) error {
			r, err := step(e, loaded[e.Name()])
			add(r)
			return err
		}); err != nil {
			return out, err
		}
	}
	if err := each(func(e Engine) error {
		r, err := sizeRow(WSizeDelete, e.Name(), loaded[e.Name()], payload-payload/2)
		add(r)
		return err
	}); err != nil {
		return out, err
	}
	for name, s := range loaded {
		s.Close()
		delete(loaded, name)
	}

	// fresh runs a workload on a new store of each engine.
	fresh := func(what string, fn func(e Engine, s Store) error) error {
		return each(func(e Engine) error {
			s, err := e.Create(path(e, what))
			if err != nil {
				return err
			}
			err = fn(e, s)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			return err
		})
	}
	err = fresh("insert", func(e Engine, s Store) error {
		r, err := randomInserts(c, e.Name(), s, vals)
		if err != nil {
			return err
		}
		sz, err := sizeRow(WSizeInsert, e.Name(), s, int64(c.Inserts)*(KeySize+ValueSize))
		add(r, sz)
		return err
	})
	if err == nil {
		err = fresh("commit", func(e Engine, s Store) error {
			r, err := singleCommits(WCommit, e.Name(), s, vals, c.Commits, 0)
			add(r)
			return err
		})
	}
	if err == nil {
		err = fresh("large", func(e Engine, s Store) error {
			w, r, err := largeValues(c, e.Name(), s, vals)
			add(w, r)
			return err
		})
	}
	if err != nil {
		return out, err
	}
	for _, e := range order {
		if _, ok := e.(Cowfile); ok && c.FreeEntries > 0 {
			rs, err := freelistWorkload(c, dir, vals, rn.logf)
			add(rs...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// Short is a one-line summary of r for progress logs.
func (r Result) Short() string {
	switch {
	case r.OpsPerSec > 0:
		return fmt.Sprintf("%s %s/s  p50 %s  p99 %s", fnum(r.OpsPerSec), r.Unit, fdur(r.P50), fdur(r.P99))
	case r.Amp > 0:
		return fmt.Sprintf("%s bytes, %.2fx payload", fnum(float64(r.FileBytes)), r.Amp)
	}
	return fmt.Sprintf("%.1f MiB", float64(r.HeapPeak)/(1<<20))
}

// medians picks, for every workload and engine, the run whose figure is
// the median of all runs (the lower middle one for an even count).
func medians(all []Result) []Result {
	type key struct{ w, e string }
	groups := map[key][]Result{}
	var order []key
	for _, r := range all {
		k := key{r.Workload, r.Engine}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Result
	for _, k := range order {
		g := groups[k]
		sort.Slice(g, func(i, j int) bool { return g[i].Value() < g[j].Value() })
		m := g[(len(g)-1)/2]
		m.Run = -1
		out = append(out, m)
	}
	return out
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[(len(s)-1)/2]
}
