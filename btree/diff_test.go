package btree

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// spillKeep spills tr and opens the result in a new transaction, keeping
// every page (old versions stay readable, as for a snapshot).
func spillKeep(t *testing.T, s *MemStore, tr *Tree) *Tree {
	t.Helper()
	root, err := tr.Spill()
	if err != nil {
		t.Fatal(err)
	}
	s.Freed = map[page.ID]page.TxID{}
	s.Tx++
	return Open(s, root)
}

func modelDiff(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("-%s", k))
		} else if w != v {
			out = append(out, fmt.Sprintf("~%s", k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("+%s", k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1:] < out[j][1:] })
	return out
}

func runDiff(t *testing.T, s *MemStore, a, b page.Ref) ([]string, int) {
	t.Helper()
	var got []string
	df := Differ{A: s, B: s, Key: func(path [][]byte, k, old, new []byte) error {
		switch {
		case old == nil:
			got = append(got, "+"+string(k))
		case new == nil:
			got = append(got, "-"+string(k))
		default:
			got = append(got, "~"+string(k))
		}
		return nil
	}}
	if err := df.Diff(nil, a, b); err != nil {
		t.Fatal(err)
	}
	return got, df.Reads
}

func TestDiffAgainstModel(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewSource(seed))
		s := NewMemStore(1024)
		tr := Open(s, page.Ref{})
		model := map[string]string{}
		var versions []page.Ref
		var models []map[string]string
		for v := 0; v < 12; v++ {
			for i := 0; i < 1+r.Intn(300); i++ {
				k := fmt.Sprintf("k%05d", r.Intn(3000))
				if r.Intn(3) == 0 {
					tr.Delete([]byte(k), KindValue)
					delete(model, k)
					continue
				}
				val := randValue(r, 1024)
				tr.Put([]byte(k), val)
				model[k] = string(val)
			}
			tr = spillKeep(t, s, tr)
			versions = append(versions, tr.Root())
			snap := map[string]string{}
			for k, v := range model {
				snap[k] = v
			}
			models = append(models, snap)
		}
		for i := range versions {
			for j := range versions {
				got, _ := runDiff(t, s, versions[i], versions[j])
				want := modelDiff(models[i], models[j])
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("seed %d: diff(v%d, v%d):\n got  %v\n want %v", seed, i, j, got, want)
				}
			}
		}
	}
}

// Diff must not read the parts of the trees that are the same.
func TestDiffCostIsProportionalToChanges(t *testing.T) {
	s := NewMemStore(4096)
	tr := Open(s, page.Ref{})
	const n = 200000
	for i := 0; i < n; i++ {
		tr.Put([]byte(fmt.Sprintf("key%08d", i)), []byte("value-value-value"))
	}
	tr = spillKeep(t, s, tr)
	before := tr.Root()
	for i := 0; i < 10; i++ {
		tr.Put([]byte(fmt.Sprintf("key%08d", i*(n/10)+7)), []byte("changed"))
	}
	tr = spillKeep(t, s, tr)
	got, reads := runDiff(t, s, before, tr.Root())
	if len(got) != 10 {
		t.Fatalf("%d changes, want 10: %v", len(got), got)
	}
	total := len(s.Pages)
	// 10 changed leaves, each on a path of depth 3, on both sides, plus
	// neighbours opened while aligning the two sides.
	t.Logf("diff of 10 changes in %d keys (%d pages) read %d pages", n, total, reads)
	if reads > 10*3*2*4 {
		t.Fatalf("diff read %d of %d pages for 10 changes", reads, total)
	}
}
