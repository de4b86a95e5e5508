package benchwork

import (
	"path/filepath"
	"testing"

	"github.com/cowfile/cowfile"
)

// The workloads as Go benchmarks on cowfile alone, for profiling:
//
//	go test ./internal/benchwork -run X -bench BulkLoad -cpuprofile cpu.out
//
// Each iteration is one whole workload at the sizes below (a fifth of the
// published ones, so a profile takes seconds).
//
// The NoSync variants of the write workloads never fdatasync, so that a
// profile or a CPU-time comparison shows the engine rather than the disk.

func sizes() Config {
	c := Defaults()
	c.Keys, c.Inserts, c.Reads = 200_000, 100_000, 400_000
	return c
}

// noSync is the engine without fdatasync: the NoSync variants below
// measure the engine's CPU rather than the disk.
var noSync = Cowfile{Options: &cowfile.Options{Durability: cowfile.NoSync}}

func loaded(b *testing.B, c Config) Store { return loadedOn(b, c, Cowfile{}) }

func loadedOn(b *testing.B, c Config, e Cowfile) Store {
	s, err := e.Create(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, _, err := bulkLoad(c, "cowfile", s, newValues(1)); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkBulkLoad(b *testing.B) {
	c := sizes()
	for i := 0; i < b.N; i++ {
		loaded(b, c)
	}
	b.ReportMetric(float64(c.Keys*b.N)/b.Elapsed().Seconds(), "keys/s")
}

func BenchmarkRandomInserts(b *testing.B)       { benchRandomInserts(b, Cowfile{}) }
func BenchmarkRandomInsertsNoSync(b *testing.B) { benchRandomInserts(b, noSync) }

func benchRandomInserts(b *testing.B, e Cowfile) {
	c := sizes()
	for i := 0; i < b.N; i++ {
		s, err := e.Create(filepath.Join(b.TempDir(), "db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := randomInserts(c, "cowfile", s, newValues(1)); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(c.Inserts*b.N)/b.Elapsed().Seconds(), "keys/s")
}

func BenchmarkRandomDeletes(b *testing.B)       { benchRandomDeletes(b, Cowfile{}) }
func BenchmarkRandomDeletesNoSync(b *testing.B) { benchRandomDeletes(b, noSync) }

func benchRandomDeletes(b *testing.B, e Cowfile) {
	c := sizes()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := loadedOn(b, c, e)
		b.StartTimer()
		if _, err := randomDeletes(c, "cowfile", s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRandomReads(b *testing.B) {
	c := sizes()
	s := loaded(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := randomReads(c, "cowfile", WRead1, s, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.Reads*b.N)/b.Elapsed().Seconds(), "gets/s")
}

func BenchmarkScans(b *testing.B) {
	c := sizes()
	s := loaded(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fullScan(c, "cowfile", s); err != nil {
			b.Fatal(err)
		}
		if _, err := shortScans(c, "cowfile", s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSingleCommits(b *testing.B) {
	s, err := Cowfile{}.Create(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := singleCommits(WCommit, "cowfile", s, newValues(1), b.N, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFreelist builds the free-list files once per iteration and logs
// the rows (1-key commits with a full and an empty free list, open time).
func BenchmarkFreelist(b *testing.B) {
	c := sizes()
	c.FreeEntries = 100_000
	for i := 0; i < b.N; i++ {
		rs, err := freelistWorkload(c, b.TempDir(), newValues(1), b.Logf)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			b.Logf("%s: %s (%s)", r.Workload, r.Short(), r.Note)
		}
	}
}
