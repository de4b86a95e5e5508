package freelist

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// TestTreeAgainstModel drives the B+tree with random inserts and deletes
// and compares every query with a sorted slice.
func TestTreeAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tr tree
	model := map[page.ID]uint32{}
	const keys = 5000
	for step := 0; step < 40000; step++ {
		id := page.ID(rng.IntN(keys))
		// Bias towards inserting in the first half, deleting later, so the
		// tree both grows (splits) and shrinks (merges, root collapse).
		grow := step < 20000
		if _, ok := model[id]; !ok && (grow || rng.IntN(4) == 0) {
			span := uint32(1 + rng.IntN(100))
			tr.insert(Entry{ID: id, Span: span})
			model[id] = span
		} else if ok {
			e, got := tr.delete(id)
			if !got || e.ID != id || e.Span != model[id] {
				t.Fatalf("delete(%d) = %+v, %v; want span %d", id, e, got, model[id])
			}
			delete(model, id)
		}
		if step%97 == 0 {
			checkTree(t, &tr, model, rng)
		}
	}
	for id := range model {
		tr.delete(id)
	}
	if tr.len() != 0 || tr.root.size() != 0 {
		t.Fatalf("tree not empty after deleting everything: %d", tr.len())
	}
}

func checkTree(t *testing.T, tr *tree, model map[page.ID]uint32, rng *rand.Rand) {
	t.Helper()
	if err := tr.verify(); err != nil {
		t.Fatal(err)
	}
	ids := make([]page.ID, 0, len(model))
	for id := range model {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var got []page.ID
	tr.ascend(func(e Entry) bool { got = append(got, e.ID); return true })
	if !slices.Equal(got, ids) {
		t.Fatalf("ascend gives %d ids, model has %d", len(got), len(ids))
	}
	got = got[:0]
	for c := tr.first(); c.valid(); c.next() {
		got = append(got, c.entry().ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("cursor gives %d ids, model has %d", len(got), len(ids))
	}
	for range 20 {
		q := page.ID(rng.IntN(5100))
		i, found := slices.BinarySearch(ids, q)
		// floor
		fe, fok := tr.floor(q)
		switch {
		case found:
			if !fok || fe.ID != q {
				t.Fatalf("floor(%d) = %v %v", q, fe.ID, fok)
			}
		case i == 0:
			if fok {
				t.Fatalf("floor(%d) = %v, want none", q, fe.ID)
			}
		default:
			if !fok || fe.ID != ids[i-1] {
				t.Fatalf("floor(%d) = %v %v, want %d", q, fe.ID, fok, ids[i-1])
			}
		}
		// ceil
		ce, cok := tr.ceil(q)
		if i == len(ids) {
			if cok {
				t.Fatalf("ceil(%d) = %v, want none", q, ce.ID)
			}
		} else if !cok || ce.ID != ids[i] {
			t.Fatalf("ceil(%d) = %v %v, want %d", q, ce.ID, cok, ids[i])
		}
		// firstFit
		span := uint32(1 + rng.IntN(110))
		want, wantOK := page.ID(0), false
		for _, id := range ids {
			if model[id] >= span {
				want, wantOK = id, true
				break
			}
		}
		fit, ok := tr.firstFit(span)
		if ok != wantOK || (ok && fit.ID != want) {
			t.Fatalf("firstFit(%d) = %v %v, want %v %v", span, fit.ID, ok, want, wantOK)
		}
	}
}

// TestPush builds trees of many sizes along the right edge (push), then
// changes them with the general operations: every query must match the
// model, before and after.
func TestPush(t *testing.T) {
	for _, n := range []int{0, 1, bulkFill, bulkFill + 1, bulkFill * bulkFill, bulkFill*bulkFill + 7, 100000} {
		var tr tree
		model := map[page.ID]uint32{}
		for i := range n {
			id := page.ID(10 + 3*i)
			tr.push(Entry{ID: id, Span: uint32(1 + i%50)})
			model[id] = uint32(1 + i%50)
		}
		checkTree(t, &tr, model, rand.New(rand.NewPCG(uint64(n), 9)))
		// The built tree must stay valid under later updates.
		for i := 0; i < n; i += 2 {
			id := page.ID(10 + 3*i)
			tr.delete(id)
			delete(model, id)
			tr.insert(Entry{ID: id + 1, Span: 200})
			model[id+1] = 200
		}
		checkTree(t, &tr, model, rand.New(rand.NewPCG(uint64(n), 10)))
	}
}

// TestPushMixedAgainstModel interleaves push and extendLast (at the right
// edge) with inserts and deletes anywhere, as a load replays ops between
// segments, and compares with the model throughout.
func TestPushMixedAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tr tree
	model := map[page.ID]uint32{}
	next := page.ID(0) // above every ID so far
	for step := 0; step < 60000; step++ {
		switch r := rng.IntN(10); {
		case r < 6: // push
			next += page.ID(1 + rng.IntN(3))
			span := uint32(1 + rng.IntN(100))
			tr.push(Entry{ID: next, Span: span})
			model[next] = span
		case r < 7 && tr.len() > 0: // extendLast
			e, _ := tr.last()
			if e.ID != next {
				t.Fatalf("last() = %d, want %d", e.ID, next)
			}
			add := uint32(1 + rng.IntN(200))
			tr.extendLast(add)
			model[next] += add
		case r < 8 && next > 0: // insert below the edge
			id := page.ID(rng.IntN(int(next)))
			if _, ok := model[id]; !ok {
				span := uint32(1 + rng.IntN(300))
				tr.insert(Entry{ID: id, Span: span})
				model[id] = span
			}
		default: // delete anywhere, the last entry included
			id := page.ID(rng.IntN(int(next) + 1))
			if _, ok := model[id]; ok {
				tr.delete(id)
				delete(model, id)
				if id == next {
					// The right edge moved down: push continues above
					// the new last entry.
					if e, ok := tr.last(); ok {
						next = e.ID
					}
				}
			}
		}
		if step%211 == 0 {
			checkTree(t, &tr, model, rng)
		}
	}
	checkTree(t, &tr, model, rng)
}

// TestTreeReplaceAgainstModel mixes replace, which moves an entry's ID
// anywhere between its neighbours' and changes its span, with inserts and
// deletes (which leave branch keys below the IDs they bound), and compares
// every query with the model.
func TestTreeReplaceAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tr tree
	model := map[page.ID]uint32{}
	var ids []page.ID // sorted: the model's order
	const keys = 5000
	for step := 0; step < 60000; step++ {
		id := page.ID(rng.IntN(keys))
		i, found := slices.BinarySearch(ids, id)
		switch r := rng.IntN(10); {
		case r < 5 && found: // replace within the neighbours' bounds
			lo, hi := page.ID(0), page.ID(keys) // the new ID lies in [lo, hi)
			if i > 0 {
				lo = ids[i-1] + 1
			}
			if i+1 < len(ids) {
				hi = ids[i+1]
			}
			e := Entry{ID: lo + page.ID(rng.IntN(int(hi-lo))), Span: uint32(1 + rng.IntN(100))}
			if !tr.replace(id, e) {
				t.Fatalf("replace(%d) found nothing", id)
			}
			delete(model, id)
			model[e.ID] = e.Span
			ids[i] = e.ID
		case r < 5:
			if tr.replace(id, Entry{ID: id, Span: 1}) {
				t.Fatalf("replace(%d) of a missing entry reported true", id)
			}
		case r < 8 && !found && step < 30000, r < 6 && !found:
			span := uint32(1 + rng.IntN(100))
			tr.insert(Entry{ID: id, Span: span})
			model[id] = span
			ids = slices.Insert(ids, i, id)
		case found:
			tr.delete(id)
			delete(model, id)
			ids = slices.Delete(ids, i, i+1)
		}
		if step%101 == 0 {
			checkTree(t, &tr, model, rng)
		}
	}
	checkTree(t, &tr, model, rng)
}
