package freelist

import (
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// Reclaim makes the pending version [id, id+span) live again: restoring a
// snapshot brings back pages that the current state had freed but the
// snapshot kept. The entry must be pending with exactly that extent. It is
// logged as an alloc (replay takes the range out of whatever holds it) and
// undone by Rollback.
func (f *Freelist) Reclaim(id page.ID, span int) error {
	e, ok := f.pending.get(id)
	if !ok || e.Span != uint32(span) {
		return page.Corrupt(id, "freelist: reclaim of %d pages that are not one pending run", span)
	}
	f.deletePending(id)
	f.dropGroupItem(e)
	f.log = append(f.log, op{kind: opAlloc, id: id, span: e.Span, prevHWM: f.hwm, reclaimed: &e})
	return nil
}

// dropGroupItem removes e from the group of its freeing transaction, so
// that a later pending version of the same page is not released by the
// old group's verdict.
func (f *Freelist) dropGroupItem(e Entry) {
	i, found := slices.BinarySearchFunc(f.groups, e.Freed, func(g *group, t page.TxID) int { return cmpTx(g.freed, t) })
	if !found {
		return
	}
	g := f.groups[i]
	if j := slices.IndexFunc(g.items, func(it groupItem) bool { return it.id == e.ID }); j >= 0 {
		g.items = slices.Delete(g.items, j, j+1) // keeps the born order
	}
}

// undoReclaim puts a reclaimed entry back to pending, in its group.
func (f *Freelist) undoReclaim(e Entry) {
	f.addPending(e)
	i, found := slices.BinarySearchFunc(f.groups, e.Freed, func(g *group, t page.TxID) int { return cmpTx(g.freed, t) })
	if !found {
		f.groups = slices.Insert(f.groups, i, &group{freed: e.Freed})
	}
	g := f.groups[i]
	g.items = append(g.items, groupItem{id: e.ID, born: e.Born})
	g.sorted = false
	f.dirtyFrom = min(f.dirtyFrom, i)
}
