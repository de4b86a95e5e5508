package benchwork

import (
	"path/filepath"
	"testing"
)

// The workloads as Go benchmarks on cowfile alone, for profiling:
//
//	go test ./internal/benchwork -run X -bench BulkLoad -cpuprofile cpu.out
//
// Each iteration is one whole workload at the sizes below (a fifth of the
// published ones, so a profile takes seconds).

func sizes() Config {
	c := Defaults()
	c.Keys, c.Inserts, c.Reads = 200_000, 100_000, 400_000
	return c
}

func loaded(b *testing.B, c Config) Store {
	s, err := Cowfile{}.Create(filepath.Join(b.TempDir(), "db"))
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

func BenchmarkRandomInserts(b *testing.B) {
	c := sizes()
	for i := 0; i < b.N; i++ {
		s, err := Cowfile{}.Create(filepath.Join(b.TempDir(), "db"))
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

func BenchmarkRandomDeletes(b *testing.B) {
	c := sizes()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := loaded(b, c)
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
