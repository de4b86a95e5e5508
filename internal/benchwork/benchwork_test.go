package benchwork

import (
	"bytes"
	"strings"
	"testing"
)

func TestPermuterVisitsEachIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000, 4096, 20_000} {
		p := newPermuter(n)
		seen := make([]bool, n)
		for i := 0; i < n; i++ {
			j := p.at(i)
			if j >= uint64(n) || seen[j] {
				t.Fatalf("n=%d: index %d maps to %d twice or out of range", n, i, j)
			}
			seen[j] = true
		}
	}
}

func TestKeys(t *testing.T) {
	a, b := make([]byte, KeySize), make([]byte, KeySize)
	for i := uint64(0); i < 1000; i++ {
		if bytes.Compare(SeqKey(a, i), SeqKey(b, i+1)) >= 0 {
			t.Fatalf("sequential keys %d and %d out of order", i, i+1)
		}
	}
	seen := map[string]bool{}
	for i := uint64(0); i < 10_000; i++ {
		k := string(RandKey(a, i))
		if seen[k] {
			t.Fatalf("random key %d repeats", i)
		}
		seen[k] = true
	}
}

// A smoke run of every workload on cowfile (under the race detector in
// CI: the two-goroutine reads share the DB). It checks that rows come
// out, never how fast.
func TestQuickRunCowfile(t *testing.T) {
	c := Quick()
	c.FreeEntries = 500
	rn := &Runner{Config: c, Engines: []Engine{Cowfile{}}, Runs: 1, Dir: t.TempDir()}
	rep, err := rn.Run()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range append(append([]string{WFloor, WFloorCommit1, WFloorCommit2, WFloorContig, WFloorLarge1, WFloorLarge2, WHeapLoad, WFreeEmpty, WFreeFull, WOpenFreeFull}, SpeedWorkloads...), SizeWorkloads...) {
		e := "cowfile"
		if strings.HasPrefix(w, "floor") {
			e = "disk"
		}
		if _, ok := rep.Find(w, e); !ok {
			t.Errorf("no %s row", w)
		}
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "× bbolt") {
		t.Error("ratio column without a bbolt run")
	}
}
