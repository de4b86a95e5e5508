package freelist

import (
	"math/rand"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// A branch's keys[0] can end up above keys[1] (its first child emptied and
// was dropped, then small ids split that child again). Routing must not
// binary-search it: that lost entries, so a free extent stayed in the tree
// after being allocated and a live page was handed out twice.
func TestTreeRandomInsertDelete(t *testing.T) {
	for seed := int64(0); seed < 40; seed++ {
		r := rand.New(rand.NewSource(seed))
		var tr tree
		model := map[page.ID]bool{}
		for step := 0; step < 20000; step++ {
			id := page.ID(r.Intn(3000))
			if r.Intn(2) == 0 {
				if !model[id] {
					tr.insert(Entry{ID: id, Span: 1})
					model[id] = true
				}
				continue
			}
			if _, ok := tr.delete(id); ok != model[id] {
				t.Fatalf("seed %d step %d: delete(%d) found %v, model has it: %v", seed, step, id, ok, model[id])
			}
			delete(model, id)
		}
		n := 0
		tr.ascend(func(e Entry) bool {
			if !model[e.ID] {
				t.Fatalf("seed %d: entry %d not in the model", seed, e.ID)
			}
			n++
			return true
		})
		if n != len(model) || tr.len() != len(model) {
			t.Fatalf("seed %d: tree holds %d (len %d), model %d", seed, n, tr.len(), len(model))
		}
	}
}
