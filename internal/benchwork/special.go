package benchwork

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cowfile/cowfile"
)

// A floor is a pattern of writes and fdatasyncs timed on a plain file of
// the same disk: the least a durable commit of that shape can cost. The
// file is written and synced in full first, so the timed writes overwrite
// allocated blocks (as commits that reuse free pages do).
type floorPattern struct {
	id    string
	steps []floorStep
}

// floors returns the patterns timed for c: single-key commits and
// commits of c.LargeBatch large values, each written as one run.
func floors(c Config) []floorPattern {
	large := c.LargeBatch * largeSpan(c) * 4096
	return []floorPattern{
		{WFloor, []floorStep{dataWrite(4096), datasyncStep}},
		// One-sync commit (cowfile): a 3-page run, the meta, one sync.
		{WFloorCommit1, []floorStep{dataWrite(3 * 4096), metaWrite, datasyncStep}},
		// Two-sync commit (bbolt, LMDB): the run, a sync, the meta, a sync.
		{WFloorCommit2, []floorStep{dataWrite(3 * 4096), datasyncStep, metaWrite, datasyncStep}},
		// The same bytes as one write: what a commit whose meta travels
		// with its pages would cost.
		{WFloorContig, []floorStep{dataWrite(4 * 4096), datasyncStep}},
		// The same two shapes for a commit of large values.
		{WFloorLarge1, []floorStep{dataWrite(large), metaWrite, datasyncStep}},
		{WFloorLarge2, []floorStep{dataWrite(large), datasyncStep, metaWrite, datasyncStep}},
	}
}

// largeSpan is the 4 KiB pages a large value takes with a page header (32
// bytes for cowfile, 16 for bbolt and LMDB: the same count for 100 KiB).
func largeSpan(c Config) int { return (c.LargeSize + 32 + 4095) / 4096 }

// floorStep writes bytes to the data area (rotating over its slots) or to
// the meta pages (alternating between the first two), or with 0 bytes
// calls fdatasync.
type floorStep struct {
	bytes  int
	toMeta bool
}

func dataWrite(n int) floorStep { return floorStep{bytes: n} }

var (
	metaWrite    = floorStep{bytes: 4096, toMeta: true}
	datasyncStep = floorStep{}
)

// floor times n repetitions of the steps.
func floor(dir, id string, steps []floorStep, n int) (Result, error) {
	path := filepath.Join(dir, "floor")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(path)
	defer f.Close()
	// The data area rotates over slots of the largest write: at most 256
	// of them, in about 64 MiB, and no more than the writes.
	slot := 4 * 4096
	for _, st := range steps {
		slot = max(slot, st.bytes)
	}
	slots := max(2, min(256, (64<<20)/slot, n))
	if _, err := f.WriteAt(make([]byte, 2*4096+slots*slot), 0); err != nil {
		return Result{}, err
	}
	if err := f.Sync(); err != nil {
		return Result{}, err
	}
	buf := make([]byte, slot)
	var written int64
	t := startTiming(n)
	for i := 0; i < n; i++ {
		buf[0] = byte(i)
		t0 := time.Now()
		for _, st := range steps {
			off := 2*4096 + int64(i%slots*slot)
			switch {
			case st.bytes == 0:
				if err := datasync(f); err != nil {
					return Result{}, err
				}
				continue
			case st.toMeta:
				off = int64(i%2) * 4096
			}
			if _, err := f.WriteAt(buf[:st.bytes], off); err != nil {
				return Result{}, err
			}
			written += int64(st.bytes)
		}
		t.lat = append(t.lat, time.Since(t0))
	}
	return t.result(id, "disk", "write", "write", int64(n), written), nil
}

// Free-list workload (cowfile only). It builds a file whose free space is
// about c.FreeEntries separate one-page extents — values that live in
// their own one-page runs (1 KiB pages, 600-byte values), every other one
// deleted — and a twin whose free list is nearly empty: the same keys, but
// the deleted ones held 32-byte inline values (a leaf element of the same
// size), so both trees have the same shape and only the free lists differ.
// It then times 1-key commits on both, alternating between them in rounds
// so that drift in the disk's speed hits both alike: durable commits, and
// no-sync commits (the engine's own cost, without the disk).
//
// It times freeCommits times c.Commits on each file: the two figures
// differ by a few percent, and rounds of 100 commits swing by ±7% alone.
const (
	freeCommits  = 5
	freePageSize = 1024
	freeValue    = 600 // out of line at 1 KiB pages, and one page with its header
	twinValue    = 32  // inline; its leaf element is as large as a large-value reference
)

// freelistWorkload returns the rows of the empty and the full free list,
// durable and no-sync, and the time to open the file with the full list.
func freelistWorkload(c Config, dir string, vals *values, logf func(string, ...any)) ([]Result, error) {
	// Every deleted key frees one page; a few of them are taken again by
	// the leaves the deletes rewrite, so build a little more than asked.
	keys := c.FreeEntries * 2 * 11 / 10
	full := filepath.Join(dir, "freelist-full.cow")
	empty := filepath.Join(dir, "freelist-empty.cow")
	start := time.Now()
	err := buildFreelistFile(full, keys, vals, freeValue)
	if err == nil {
		err = buildFreelistFile(empty, keys, vals, twinValue)
	}
	if err != nil {
		return nil, fmt.Errorf("free-list build: %w", err)
	}
	logf("  free-list files built in %v", time.Since(start).Round(time.Millisecond))

	var out []Result
	for _, mode := range []cowfile.Durability{cowfile.Sync, cowfile.NoSync} {
		t0 := time.Now()
		fs, err := openCowfile(full, &cowfile.Options{Durability: mode})
		if err != nil {
			return nil, err
		}
		openTime := time.Since(t0)
		es, err := openCowfile(empty, &cowfile.Options{Durability: mode})
		if err != nil {
			fs.Close()
			return nil, err
		}
		fullStats, emptyStats := fs.db.Stats(), es.db.Stats()
		const rounds = 10
		per := max(freeCommits*c.Commits/rounds, 1)
		var fr, er []Result
		for r := 0; r < rounds && err == nil; r++ {
			base := uint64(1)<<40 + uint64(mode)<<32 + uint64(r*per)
			var res Result
			if res, err = singleCommits(WFreeFull, "cowfile", fs, vals, per, base); err == nil {
				fr = append(fr, res)
				res, err = singleCommits(WFreeEmpty, "cowfile", es, vals, per, base)
				er = append(er, res)
			}
		}
		fs.Close()
		es.Close()
		if err != nil {
			return nil, err
		}
		f, e := merge(fr), merge(er)
		f.Note = fmt.Sprintf("%d free pages, file %d MB", fullStats.FreePages, fullStats.FileSize>>20)
		e.Note = fmt.Sprintf("%d free pages, file %d MB", emptyStats.FreePages, emptyStats.FileSize>>20)
		if mode == cowfile.NoSync {
			f.Workload, e.Workload = WFreeFullNoSync, WFreeEmptyNoSync
			out = append(out, e, f)
			continue
		}
		o := Result{Workload: WOpenFreeFull, Engine: "cowfile", Ops: 1, Unit: "open", Seconds: openTime.Seconds(),
			OpsPerSec: 1 / openTime.Seconds(), P50: float64(openTime) / float64(time.Microsecond), LatencyOf: "open",
			Note: fmt.Sprintf("file %d MB, %d free pages", fullStats.FileSize>>20, fullStats.FreePages)}
		out = append(out, e, f, o)
	}
	return out, nil
}

// merge joins rounds of the same workload into one result; percentiles
// are taken as the median of the rounds' percentiles.
func merge(rs []Result) Result {
	out := rs[0]
	out.Ops, out.Seconds = 0, 0
	var p50, p99 []float64
	for _, r := range rs {
		out.Ops += r.Ops
		out.Seconds += r.Seconds
		p50, p99 = append(p50, r.P50), append(p99, r.P99)
	}
	out.OpsPerSec = float64(out.Ops) / out.Seconds
	out.MBPerSec = float64(out.Ops*(KeySize+ValueSize)) / out.Seconds / 1e6
	out.P50, out.P99 = median(p50), median(p99)
	return out
}

// buildFreelistFile loads n sequential keys at 1 KiB pages without syncs,
// the odd ones with 600-byte values (out of line, one page each) and the
// even ones with evenSize-byte values; then deletes the even keys, makes
// one more commit so the pages the last deletes freed are released, and
// syncs the file so the timed commits do not pay for the build's writes.
func buildFreelistFile(path string, n int, vals *values, evenSize int) error {
	s, err := openCowfile(path, &cowfile.Options{PageSize: freePageSize, Durability: cowfile.NoSync})
	if err != nil {
		return err
	}
	var arena keyArena
	const batch = 20_000
	for i := 0; i < n && err == nil; i += batch {
		err = s.Update(func(w Writer) error {
			arena.reset(batch)
			for j := i; j < min(i+batch, n); j++ {
				size := freeValue
				if j%2 == 0 {
					size = evenSize
				}
				if err := w.Put(SeqKey(arena.next(), uint64(j)), vals.get(uint64(j), size)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	key := make([]byte, KeySize)
	const delBatch = 50_000
	for i := 0; i < n && err == nil; i += 2 * delBatch {
		err = s.Update(func(w Writer) error {
			for j := i; j < min(i+2*delBatch, n); j += 2 {
				if err := w.Delete(SeqKey(key, uint64(j))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err == nil {
		err = s.Update(func(w Writer) error { return w.Put([]byte("release"), []byte("x")) })
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
