package benchwork

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Config sizes the workloads. Defaults gives the published sizes; Quick a
// smoke run of a few seconds.
type Config struct {
	Keys        int // bulk load: sequential keys
	LoadBatch   int // keys per bulk-load transaction
	Inserts     int // random inserts into a new store
	InsertBatch int // keys per random-insert transaction
	Commits     int // single-key durable commits
	Reads       int // random point reads, in all goroutines together
	ReadBatch   int // gets per read transaction
	Scans       int // short scans from random starts
	ScanLen     int // keys per short scan
	DeleteBatch int // deletes per transaction (half the loaded keys are deleted)
	Large       int // large values written, then read
	LargeSize   int // bytes per large value
	LargeBatch  int // large values per write transaction
	FloorWrites int // samples of each floor (4 KiB write+fdatasync, and the commit patterns)
	FreeEntries int // free-list workload: free pages to build (0 skips it; cowfile only)
}

// Defaults are the sizes of the published comparison.
func Defaults() Config {
	return Config{
		Keys: 1_000_000, LoadBatch: 10_000,
		Inserts: 200_000, InsertBatch: 1000,
		Commits: 1000,
		Reads:   1_000_000, ReadBatch: 1000,
		Scans: 10_000, ScanLen: 100,
		DeleteBatch: 1000,
		Large:       1000, LargeSize: 100 << 10, LargeBatch: 10,
		FloorWrites: 1000,
		FreeEntries: 1_000_000,
	}
}

// Quick is a smoke run: every workload, small.
func Quick() Config {
	return Config{
		Keys: 20_000, LoadBatch: 2000,
		Inserts: 4000, InsertBatch: 500,
		Commits: 30,
		Reads:   20_000, ReadBatch: 1000,
		Scans: 200, ScanLen: 100,
		DeleteBatch: 1000,
		Large:       20, LargeSize: 100 << 10, LargeBatch: 10,
		FloorWrites: 30,
		FreeEntries: 5000,
	}
}

// Workload ids, in the order of the report.
const (
	WFloor           = "floor"
	WFloorCommit1    = "floor-commit-1sync"
	WFloorCommit2    = "floor-commit-2sync"
	WFloorContig     = "floor-commit-contig"
	WFloorLarge1     = "floor-large-1sync"
	WFloorLarge2     = "floor-large-2sync"
	WBulkLoad        = "bulk-load"
	WInsertRand      = "insert-rand"
	WCommit          = "commit-1"
	WRead1           = "read-1g"
	WRead2           = "read-2g"
	WScanFull        = "scan-full"
	WScan100         = "scan-100"
	WDeleteRand      = "delete-rand"
	WLargeWrite      = "large-write"
	WLargeRead       = "large-read"
	WSizeLoad        = "size-load"
	WSizeDelete      = "size-delete"
	WSizeInsert      = "size-insert"
	WHeapLoad        = "heap-load"
	WFreeEmpty       = "freelist-empty"
	WFreeFull        = "freelist-full"
	WFreeEmptyNoSync = "freelist-empty-nosync"
	WFreeFullNoSync  = "freelist-full-nosync"
	WOpenFreeFull    = "open-freelist-full"
)

// Describe returns a one-line description of a workload for c.
func (c Config) Describe(w string) string {
	switch w {
	case WFloor:
		return "4 KiB write + fdatasync (the disk's floor)"
	case WFloorCommit1:
		return "12 KiB + 4 KiB writes + 1 fdatasync (floor of a one-sync commit)"
	case WFloorCommit2:
		return "12 KiB write, fdatasync, 4 KiB write, fdatasync (floor of a two-sync commit)"
	case WFloorContig:
		return "16 KiB write + 1 fdatasync (the same bytes in one write)"
	case WFloorLarge1:
		return fmt.Sprintf("%d KiB + 4 KiB writes + 1 fdatasync (floor of a one-sync commit of %d values of %d KiB)", c.LargeBatch*largeSpan(c)*4, c.LargeBatch, c.LargeSize>>10)
	case WFloorLarge2:
		return fmt.Sprintf("%d KiB write, fdatasync, 4 KiB write, fdatasync (floor of a two-sync commit of %d values of %d KiB)", c.LargeBatch*largeSpan(c)*4, c.LargeBatch, c.LargeSize>>10)
	case WBulkLoad:
		return fmt.Sprintf("bulk load, %s sequential keys, %s/txn", count(c.Keys), count(c.LoadBatch))
	case WInsertRand:
		return fmt.Sprintf("random inserts, %s keys, %s/txn", count(c.Inserts), count(c.InsertBatch))
	case WCommit:
		return fmt.Sprintf("single-key durable commits, %s", count(c.Commits))
	case WRead1:
		return fmt.Sprintf("random reads, 1 goroutine, %s/txn", count(c.ReadBatch))
	case WRead2:
		return fmt.Sprintf("random reads, 2 goroutines, %s/txn", count(c.ReadBatch))
	case WScanFull:
		return fmt.Sprintf("full scan, %s keys", count(c.Keys))
	case WScan100:
		return fmt.Sprintf("scans of %d keys from random starts", c.ScanLen)
	case WDeleteRand:
		return fmt.Sprintf("random deletes, %s keys, %s/txn", count(c.Keys/2), count(c.DeleteBatch))
	case WLargeWrite:
		return fmt.Sprintf("%d KiB values written, %d/txn", c.LargeSize>>10, c.LargeBatch)
	case WLargeRead:
		return fmt.Sprintf("%d KiB values read", c.LargeSize>>10)
	case WSizeLoad:
		return "file after bulk load"
	case WSizeDelete:
		return "file after random deletes"
	case WSizeInsert:
		return "file after random inserts"
	case WHeapLoad:
		return "Go heap peak during bulk load"
	case WFreeEmpty:
		return "1-key commit, empty free list (1 KiB pages)"
	case WFreeFull:
		return fmt.Sprintf("1-key commit, ~%s-entry free list (1 KiB pages)", count(c.FreeEntries))
	case WFreeEmptyNoSync:
		return "1-key commit, empty free list, no sync (engine cost only)"
	case WFreeFullNoSync:
		return fmt.Sprintf("1-key commit, ~%s-entry free list, no sync (engine cost only)", count(c.FreeEntries))
	case WOpenFreeFull:
		return fmt.Sprintf("open a file with a ~%s-entry free list", count(c.FreeEntries))
	}
	return w
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// bulkLoad puts c.Keys sequential keys into s, c.LoadBatch per commit,
// sampling the Go heap before and after every commit.
func bulkLoad(c Config, name string, s Store, vals *values) (Result, Result, error) {
	runtime.GC()
	var peak uint64
	var ms runtime.MemStats
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	var arena keyArena
	t := startTiming(c.Keys/c.LoadBatch + 1)
	for i := 0; i < c.Keys; i += c.LoadBatch {
		t0 := time.Now()
		err := s.Update(func(w Writer) error {
			arena.reset(c.LoadBatch)
			for j := i; j < min(i+c.LoadBatch, c.Keys); j++ {
				if err := w.Put(SeqKey(arena.next(), uint64(j)), vals.get(uint64(j), ValueSize)); err != nil {
					return err
				}
			}
			sample()
			return nil
		})
		if err != nil {
			return Result{}, Result{}, fmt.Errorf("bulk load: %w", err)
		}
		t.lat = append(t.lat, time.Since(t0))
		sample()
	}
	n := int64(c.Keys)
	r := t.result(WBulkLoad, name, "key", "txn", n, n*(KeySize+ValueSize))
	h := Result{Workload: WHeapLoad, Engine: name, HeapPeak: peak}
	return r, h, nil
}

// sizeRow measures s's file against the payload it holds.
func sizeRow(workload, name string, s Store, payload int64) (Result, error) {
	size, err := s.Size()
	if err != nil {
		return Result{}, err
	}
	return Result{Workload: workload, Engine: name, FileBytes: size, PayloadBytes: payload,
		Amp: float64(size) / float64(payload)}, nil
}

// rng is a xorshift64* generator: cheap, and one per goroutine.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	return x * 2685821657736338717
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// randomReads does c.Reads gets of random loaded keys in g goroutines,
// c.ReadBatch per read transaction.
func randomReads(c Config, name, workload string, s Store, g int) (Result, error) {
	per := c.Reads / g
	var wg sync.WaitGroup
	errs := make([]error, g)
	lats := make([][]time.Duration, g)
	t := startTiming(0)
	for gi := 0; gi < g; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			r := rng(uint64(gi)*0x9e3779b97f4a7c15 + 1)
			key := make([]byte, KeySize)
			lat := make([]time.Duration, 0, per/c.ReadBatch+1)
			for done := 0; done < per; done += c.ReadBatch {
				t0 := time.Now()
				err := s.View(func(rd Reader) error {
					for j := done; j < min(done+c.ReadBatch, per); j++ {
						if v := rd.Get(SeqKey(key, uint64(r.intn(c.Keys)))); len(v) != ValueSize {
							return fmt.Errorf("key %x: value of %d bytes", key, len(v))
						}
					}
					return nil
				})
				if err != nil {
					errs[gi] = err
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[gi] = lat
		}(gi)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", workload, err)
		}
	}
	for _, l := range lats {
		t.lat = append(t.lat, l...)
	}
	n := int64(per * g)
	return t.result(workload, name, "get", "txn", n, n*(KeySize+ValueSize)), nil
}

// fullScan walks every key in one read transaction.
func fullScan(c Config, name string, s Store) (Result, error) {
	var n, bytes int64
	t := startTiming(1)
	err := s.View(func(rd Reader) error {
		cur := rd.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			n++
			bytes += int64(len(k) + len(v))
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("full scan: %w", err)
	}
	t.lat = append(t.lat, time.Since(t.start))
	if n != int64(c.Keys) {
		return Result{}, fmt.Errorf("full scan saw %d keys, want %d", n, c.Keys)
	}
	return t.result(WScanFull, name, "key", "scan", n, bytes), nil
}

// shortScans does c.Scans scans of c.ScanLen keys from random starts, 100
// scans per read transaction, timing each scan.
func shortScans(c Config, name string, s Store) (Result, error) {
	r := rng(7)
	key := make([]byte, KeySize)
	t := startTiming(c.Scans)
	var bytes int64
	for done := 0; done < c.Scans; done += 100 {
		err := s.View(func(rd Reader) error {
			for j := done; j < min(done+100, c.Scans); j++ {
				t0 := time.Now()
				cur := rd.Cursor()
				k, v := cur.Seek(SeqKey(key, uint64(r.intn(c.Keys-c.ScanLen))))
				for n := 0; n < c.ScanLen; n++ {
					if k == nil {
						return fmt.Errorf("scan ended after %d keys", n)
					}
					bytes += int64(len(k) + len(v))
					k, v = cur.Next()
				}
				t.lat = append(t.lat, time.Since(t0))
			}
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("short scans: %w", err)
		}
	}
	return t.result(WScan100, name, "scan", "scan", int64(c.Scans), bytes), nil
}

// permuter visits the integers [0, n) in a scattered order without
// allocating: i -> (a*i + b) mod n with a coprime to n.
type permuter struct{ a, b, n uint64 }

func newPermuter(n int) permuter {
	a := uint64(2654435761) % uint64(n)
	for gcd(a, uint64(n)) != 1 {
		a++
	}
	return permuter{a: a, b: uint64(n) / 3, n: uint64(n)}
}

func (p permuter) at(i int) uint64 { return (p.a*uint64(i) + p.b) % p.n }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// randomDeletes deletes half of the loaded keys in scattered order.
func randomDeletes(c Config, name string, s Store) (Result, error) {
	p := newPermuter(c.Keys)
	n := c.Keys / 2
	key := make([]byte, KeySize)
	t := startTiming(n/c.DeleteBatch + 1)
	for i := 0; i < n; i += c.DeleteBatch {
		t0 := time.Now()
		err := s.Update(func(w Writer) error {
			for j := i; j < min(i+c.DeleteBatch, n); j++ {
				if err := w.Delete(SeqKey(key, p.at(j))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("random deletes: %w", err)
		}
		t.lat = append(t.lat, time.Since(t0))
	}
	return t.result(WDeleteRand, name, "key", "txn", int64(n), int64(n)*KeySize), nil
}

// randomInserts puts c.Inserts random keys into a new store.
func randomInserts(c Config, name string, s Store, vals *values) (Result, error) {
	var arena keyArena
	t := startTiming(c.Inserts/c.InsertBatch + 1)
	for i := 0; i < c.Inserts; i += c.InsertBatch {
		t0 := time.Now()
		err := s.Update(func(w Writer) error {
			arena.reset(c.InsertBatch)
			for j := i; j < min(i+c.InsertBatch, c.Inserts); j++ {
				if err := w.Put(RandKey(arena.next(), uint64(j)), vals.get(uint64(j), ValueSize)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("random inserts: %w", err)
		}
		t.lat = append(t.lat, time.Since(t0))
	}
	n := int64(c.Inserts)
	return t.result(WInsertRand, name, "key", "txn", n, n*(KeySize+ValueSize)), nil
}

// singleCommits makes c.Commits commits of one new random key each.
func singleCommits(workload, name string, s Store, vals *values, n int, base uint64) (Result, error) {
	t := startTiming(n)
	for i := 0; i < n; i++ {
		key := RandKey(make([]byte, KeySize), base+uint64(i))
		t0 := time.Now()
		err := s.Update(func(w Writer) error { return w.Put(key, vals.get(uint64(i), ValueSize)) })
		if err != nil {
			return Result{}, fmt.Errorf("single commits: %w", err)
		}
		t.lat = append(t.lat, time.Since(t0))
	}
	return t.result(workload, name, "commit", "commit", int64(n), int64(n)*(KeySize+ValueSize)), nil
}

// largeValues writes c.Large values of c.LargeSize bytes, c.LargeBatch per
// commit, then reads them all back in scattered order (100 per read
// transaction), touching every 4 KiB of each value.
func largeValues(c Config, name string, s Store, vals *values) (Result, Result, error) {
	var arena keyArena
	tw := startTiming(c.Large/c.LargeBatch + 1)
	for i := 0; i < c.Large; i += c.LargeBatch {
		t0 := time.Now()
		err := s.Update(func(w Writer) error {
			arena.reset(c.LargeBatch)
			for j := i; j < min(i+c.LargeBatch, c.Large); j++ {
				if err := w.Put(SeqKey(arena.next(), uint64(j)), vals.get(uint64(j), c.LargeSize)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{}, Result{}, fmt.Errorf("large writes: %w", err)
		}
		tw.lat = append(tw.lat, time.Since(t0))
	}
	n := int64(c.Large)
	per := int64(KeySize + c.LargeSize)
	wr := tw.result(WLargeWrite, name, "value", "txn", n, n*per)

	p := newPermuter(c.Large)
	key := make([]byte, KeySize)
	var sink byte
	tr := startTiming(c.Large/100 + 1)
	for i := 0; i < c.Large; i += 100 {
		t0 := time.Now()
		err := s.View(func(rd Reader) error {
			for j := i; j < min(i+100, c.Large); j++ {
				v := rd.Get(SeqKey(key, p.at(j)))
				if len(v) != c.LargeSize {
					return fmt.Errorf("large value %d: %d bytes", p.at(j), len(v))
				}
				for o := 0; o < len(v); o += 4096 {
					sink ^= v[o]
				}
				sink ^= v[len(v)-1]
			}
			return nil
		})
		if err != nil {
			return Result{}, Result{}, fmt.Errorf("large reads: %w", err)
		}
		tr.lat = append(tr.lat, time.Since(t0))
	}
	_ = sink
	rr := tr.result(WLargeRead, name, "value", "txn", n, n*per)
	return wr, rr, nil
}
