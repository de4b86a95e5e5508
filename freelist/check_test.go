package freelist

import (
	"fmt"
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// verify checks every structural invariant of f. Tests call it after each
// step; it is independent of the code paths it checks.
func (f *Freelist) verify() error {
	if err := f.free.verify(); err != nil {
		return fmt.Errorf("free tree: %w", err)
	}
	if err := f.pending.verify(); err != nil {
		return fmt.Errorf("pending tree: %w", err)
	}
	var all []Entry
	freePages, pendingPages := 0, 0
	var prevFree Entry
	coalesced := true
	f.free.ascend(func(e Entry) bool {
		all = append(all, e)
		freePages += int(e.Span)
		if prevFree.Span != 0 && prevFree.end() == e.ID && uint64(prevFree.Span)+uint64(e.Span) <= maxExtent {
			coalesced = false
		}
		prevFree = e
		return true
	})
	if !coalesced {
		return fmt.Errorf("adjacent free extents not coalesced")
	}
	f.pending.ascend(func(e Entry) bool {
		all = append(all, e)
		pendingPages += int(e.Span)
		return true
	})
	for _, e := range all {
		switch {
		case e.Span == 0:
			return fmt.Errorf("empty entry at %d", e.ID)
		case e.ID < firstPage || e.end() > f.hwm:
			return fmt.Errorf("entry %+v outside [2, HWM %d)", e, f.hwm)
		case e.Freed == 0 && e.Born != 0:
			return fmt.Errorf("free entry %+v has a birth", e)
		case e.Freed != 0 && e.Born >= e.Freed:
			return fmt.Errorf("pending entry %+v has an empty lifespan", e)
		}
	}
	slices.SortFunc(all, func(a, b Entry) int { return cmpTx(page.TxID(a.ID), page.TxID(b.ID)) })
	for i := 1; i < len(all); i++ {
		if all[i-1].end() > all[i].ID {
			return fmt.Errorf("entries %+v and %+v overlap", all[i-1], all[i])
		}
	}
	if freePages != f.freePages || pendingPages != f.pendingPages {
		return fmt.Errorf("counts free %d pending %d, entries say %d and %d", f.freePages, f.pendingPages, freePages, pendingPages)
	}
	return f.verifyGroups()
}

func (f *Freelist) verifyGroups() error {
	items := 0
	for i, g := range f.groups {
		if i > 0 && f.groups[i-1].freed >= g.freed {
			return fmt.Errorf("groups out of order")
		}
		if len(g.items) == 0 && i < f.dirtyFrom {
			return fmt.Errorf("empty group %d kept", g.freed)
		}
		for _, it := range g.items {
			e, ok := f.pending.get(it.id)
			if !ok || e.Born != it.born || e.Freed != g.freed {
				return fmt.Errorf("group %d item %+v has no pending entry (%+v)", g.freed, it, e)
			}
			items++
		}
	}
	if items != f.pending.len() {
		return fmt.Errorf("groups hold %d items, %d pending entries", items, f.pending.len())
	}
	return nil
}

// verify checks the B+tree: order, bounds of the separator keys, exact
// maxima, no empty non-root node, uniform depth and the entry count.
func (t *tree) verify() error {
	if t.root == nil {
		if t.n != 0 {
			return fmt.Errorf("nil root with %d entries", t.n)
		}
		return nil
	}
	var prev *page.ID
	n, _, err := t.root.verify(0, ^page.ID(0), true, &prev)
	if err != nil {
		return err
	}
	if n != t.n {
		return fmt.Errorf("tree holds %d entries, counts %d", n, t.n)
	}
	return nil
}

// verify checks the subtree, whose IDs must lie in [lo, hi), and returns
// its entry count and depth.
func (n *node) verify(lo, hi page.ID, root bool, prev **page.ID) (int, int, error) {
	if !root && n.size() == 0 {
		return 0, 0, fmt.Errorf("empty non-root node")
	}
	if n.leaf() {
		var m uint32
		for i := range n.items {
			e := n.items[i]
			if e.ID < lo || e.ID >= hi {
				return 0, 0, fmt.Errorf("id %d outside [%d, %d)", e.ID, lo, hi)
			}
			if *prev != nil && **prev >= e.ID {
				return 0, 0, fmt.Errorf("ids out of order at %d", e.ID)
			}
			id := e.ID
			*prev = &id
			m = max(m, e.Span)
		}
		if m != n.max {
			return 0, 0, fmt.Errorf("leaf max %d, items say %d", n.max, m)
		}
		return len(n.items), 1, nil
	}
	if len(n.keys) != len(n.kids) || len(n.kmax) != len(n.kids) {
		return 0, 0, fmt.Errorf("branch slices disagree")
	}
	total, depth := 0, -1
	var m uint32
	for i, kid := range n.kids {
		klo, khi := lo, hi
		if i > 0 {
			klo = max(lo, n.keys[i])
		}
		if i+1 < len(n.kids) {
			khi = min(hi, n.keys[i+1])
		}
		c, d, err := kid.verify(klo, khi, false, prev)
		if err != nil {
			return 0, 0, err
		}
		if depth >= 0 && d != depth {
			return 0, 0, fmt.Errorf("uneven depth")
		}
		depth = d
		if n.kmax[i] != kid.max {
			return 0, 0, fmt.Errorf("kmax %d, kid max %d", n.kmax[i], kid.max)
		}
		m = max(m, kid.max)
		total += c
	}
	if m != n.max {
		return 0, 0, fmt.Errorf("branch max %d, kids say %d", n.max, m)
	}
	return total, depth + 1, nil
}
