package freelist

import (
	"fmt"
	"math"
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// Extent is a run of Span contiguous pages starting at ID.
type Extent struct {
	ID   page.ID
	Span uint32
}

// Entry is a free extent (Born == Freed == 0) or a pending page version:
// pages [ID, ID+Span) written by transaction Born and freed by Freed, still
// visible to the versions in [Born, Freed).
type Entry struct {
	ID          page.ID
	Span        uint32
	Born, Freed page.TxID
}

func (e Entry) end() page.ID { return e.ID + page.ID(e.Span) }

const (
	// firstPage is the lowest allocatable page: 0 and 1 are the meta slots.
	firstPage page.ID = 2
	// maxPages bounds every page number read from a file (2^48 pages is
	// far beyond any real file), so that id+span never overflows.
	maxPages page.ID = 1 << 48
	// maxExtent is the largest span one entry can record (a u32 on disk).
	maxExtent = math.MaxUint32
)

type opKind uint32

const (
	opAlloc opKind = 1
	opFree  opKind = 2
)

// op is one logged change of the current transaction: what a delta
// persists, and what Rollback undoes.
type op struct {
	id      page.ID
	span    uint32
	kind    opKind
	born    page.TxID // opFree only
	prevHWM page.ID   // opAlloc only: the HWM before it, to undo it (not persisted)
	// reclaimed is set on the opAlloc of a Reclaim: the pending entry it
	// took, restored by Rollback (not persisted: replay takes the range out
	// of whatever holds it, as for any alloc).
	reclaimed *Entry
}

// group holds the pending entries freed by one transaction. Sorted by
// Born, the releasable ones are always a suffix: those born after the newest
// retained txid older than freed.
type group struct {
	freed  page.TxID
	items  []groupItem
	sorted bool
}

type groupItem struct {
	id   page.ID
	born page.TxID
}

// link is one persisted run the state loads from. hi is where its segment
// ends (a run of format 1: maxPages for a checkpoint, or the first delta
// of a chain from the empty state, which describe everything; 0 for a
// later delta, which describes nothing).
type link struct {
	ref  page.Ref
	span uint32
	hi   page.ID
}

// Freelist is the free-space state of one file. It is owned by the single
// writer and is not safe for concurrent use.
type Freelist struct {
	// Buffer, if set, is where Persist gets the buffer of its run: n
	// bytes, contents undefined (a pool of recycled buffers). nil: make.
	Buffer func(n int) []byte

	hwm          page.ID
	free         tree // coalesced free extents, Born = Freed = 0
	pending      tree // pending versions, never coalesced
	freePages    int
	pendingPages int

	groups    []*group    // pending entries by freeing tx, ascending freed
	dirtyFrom int         // lowest index of a group changed since the last Release
	retained  []page.TxID // the argument of the last Release
	evals     int         // group evaluations by Release (lets tests check its cost)

	// The current transaction.
	txid     page.TxID
	beginHWM page.ID
	log      []op
	err      error // first inconsistent Free; Persist reports it

	// Placement (see Allocate): where the transaction's next allocation
	// goes if it is free (0: not placed yet), how many pages it has
	// allocated, and how many the last committed transaction allocated.
	cursor    page.ID
	allocated int
	lastAlloc int

	logFloor page.TxID // the oldest version a reader holds with its free-space log (0: none)

	// The persisted runs the state loads from, oldest first: chain[first:]
	// is the base run up to the head (persist.go). Runs are dropped from
	// the front; the slice is compacted once half of it is dropped.
	chain []link
	first int
	// The sweep: where the next segment starts (firstPage: a new sweep)
	// and the txid of the sweep's first run (0: none yet).
	sweepAt   page.ID
	sweepFrom page.TxID
	scratch   [2]cursor // ascendFrom's, reused

	// Made by Persist, adopted by Commit, dropped by Rollback.
	next     *link
	nextDrop int
	nextAt   page.ID
	nextFrom page.TxID
}

// New returns the empty state of a new file whose first hwm pages are in use
// (normally 2: the meta slots).
func New(hwm page.ID) *Freelist {
	return &Freelist{hwm: max(hwm, firstPage), beginHWM: max(hwm, firstPage), sweepAt: firstPage}
}

// HWM returns the number of pages in use: every id below it is reachable,
// free or pending.
func (f *Freelist) HWM() page.ID { return f.hwm }

// Begin starts logging the changes of write transaction txid. The previous
// transaction must have ended with Commit or Rollback.
func (f *Freelist) Begin(txid page.TxID) {
	f.txid = txid
	f.beginHWM = f.hwm
	f.endTx()
}

func (f *Freelist) endTx() {
	f.cursor, f.allocated = 0, 0
	f.log = f.log[:0]
	f.err = nil
	f.next = nil
	f.nextDrop = 0
}

// HoldLogs tells the current transaction the oldest version whose
// free-space log an open reader may still read (0: none). A checkpoint
// then frees the superseded log runs as born no later than that version,
// so they stay pending while the reader lives.
func (f *Freelist) HoldLogs(oldest page.TxID) { f.logFloor = oldest }

// Allocate returns the first page of span contiguous pages taken out of
// the free space, or placed at the end of the file. A span outside
// [1, 2^32) is a programming error and panics.
//
// Placement keeps a transaction's pages together, because a commit costs
// one write per run of adjacent pages and the disk pays for every write it
// must flush. The first allocation of a transaction starts a run at the
// lowest free extent that can hold as many pages as the last commit
// allocated (at most runCap), or, when none can and fewer than twice that
// many pages are free, at the end of the file. Later allocations continue
// the run while its pages are free (at the end of the file, for at most
// runCap pages in all); when they cannot, they take the lowest hole that
// fits (so large commits fill the holes; holes of a few pages only once a
// quarter of the file is free) and continue from there. The pages a commit
// frees were, in steady state, written together by an earlier commit, so
// they leave extents that fit the next runs: single-key commits cycle
// through a few runs of pages already written. Preferring low ids lets the
// tail of the file empty out.
func (f *Freelist) Allocate(span int) page.ID {
	if span < 1 || int64(span) > maxExtent {
		panic(fmt.Sprintf("freelist: Allocate(%d): span out of range", span))
	}
	n := uint32(span)
	prev := f.hwm
	id := f.place(n)
	f.cursor = id + page.ID(n)
	f.allocated += span
	f.log = append(f.log, op{kind: opAlloc, id: id, span: n, prevHWM: prev})
	return id
}

// AllocateAt takes page id for the current transaction, from the free
// space or as the page at the end of the file, and continues the
// transaction's run after it. It reports false, changing nothing, if id is
// neither. A commit uses it for the page its predecessor reserved for its
// commit record (NextRun): the commit's other pages then follow it.
func (f *Freelist) AllocateAt(id page.ID) bool {
	prev := f.hwm
	switch {
	case id == f.hwm && id < maxPages:
		f.hwm++
	case id >= firstPage && id < f.hwm && f.removeFree(id, 1):
	default:
		return false
	}
	f.cursor = id + 1
	f.allocated++
	f.log = append(f.log, op{kind: opAlloc, id: id, span: 1, prevHWM: prev})
	return true
}

// NextRun returns where a run of n pages would start if a transaction
// began now: the lowest free extent that holds them, else the free extent
// that ends the file, else the end of the file. The page it returns is
// free or at the end of the file, so a commit can name it as the place of
// its successor's commit record (AllocateAt).
func (f *Freelist) NextRun(n int) page.ID {
	if e, ok := f.free.firstFit(uint32(max(n, 1))); ok {
		return e.ID
	}
	if e, ok := f.free.last(); ok && e.end() == f.hwm {
		return e.ID
	}
	return f.hwm
}

// Allocated returns how many pages the current transaction has allocated.
func (f *Freelist) Allocated() int { return f.allocated }

// FreedPending returns how many pages the current transaction has freed
// that stay pending: versions written by earlier transactions.
func (f *Freelist) FreedPending() int {
	n := 0
	for _, o := range f.log {
		if o.kind == opFree && o.born != f.txid {
			n += int(o.span)
		}
	}
	return n
}

// runCap bounds the run a transaction's first allocation looks for: a run
// of 64 pages already makes the writes sequential, and asking for more
// would send large commits to the end of the file past usable extents.
const runCap = 64

// A large commit skips holes smaller than minHole pages while less than
// 1/holeShare of the file is free: the file grows a little (the holes
// coalesce as their neighbours are freed, and are used once they make up
// a quarter of the file), and the commit writes runs instead of a page
// here and a page there.
const (
	minHole   = 4
	holeShare = 4
)

// place takes n pages at the cursor if they are free, or where a new run
// starts (see Allocate).
func (f *Freelist) place(n uint32) page.ID {
	switch {
	case f.cursor == 0:
		// The first allocation: room for the whole commit.
		want := max(n, uint32(min(f.lastAlloc, runCap)))
		if e, ok := f.free.firstFit(want); ok {
			f.removeFree(e.ID, n)
			return e.ID
		}
		if f.freePages < 2*int(want) {
			// A few scattered pages, typically the last commits' pages
			// interleaved: reusing them would keep the interleaving
			// forever, while a run at the end lets them coalesce as their
			// neighbours are freed. Plenty of scattered free pages are
			// reused instead: the file must not grow while they exist.
			return f.extend(n)
		}
	case f.cursor == f.hwm && f.allocated < runCap:
		return f.extend(n)
	case f.cursor < f.hwm && f.removeFree(f.cursor, n):
		return f.cursor
	}
	// The run cannot go on (or has grown the file by runCap already): the
	// lowest hole that fits, so large commits fill holes; but not holes of
	// fewer than minHole pages while less than 1/holeShare of the file is
	// free, because each costs a write of its own.
	hole := n
	if f.freePages < int(f.hwm/holeShare) {
		hole = max(n, minHole)
	}
	if e, ok := f.free.firstFit(hole); ok {
		f.removeFree(e.ID, n)
		return e.ID
	}
	return f.extend(n)
}

// extend places a run of n pages at the end of the file. If a free extent
// ends at HWM the run starts there, so no hole is left below the tail.
func (f *Freelist) extend(n uint32) page.ID {
	id := f.hwm
	if e, ok := f.free.last(); ok && e.end() == f.hwm {
		f.removeFree(e.ID, min(e.Span, n))
		if e.Span >= n {
			return e.ID
		}
		id = e.ID
	}
	f.hwm = id + page.ID(n)
	return id
}

// Free records that the version of pages [id, id+span) written by
// transaction born is freed by the current transaction. A version born in
// the current transaction was never committed and is free at once; any
// other stays pending until Release finds no retained txid that sees it.
//
// A Free that contradicts the state (a page out of range, already free or
// pending, or born in the future) is not applied: it means the caller's
// structures disagree with the free space, so the error is kept and
// returned by Persist, and the transaction cannot commit.
func (f *Freelist) Free(id page.ID, span int, born page.TxID) {
	if err := f.checkFree(id, span, born); err != nil {
		if f.err == nil {
			f.err = err
		}
		return
	}
	n := uint32(span)
	f.log = append(f.log, op{kind: opFree, id: id, span: n, born: born})
	if born == f.txid {
		f.addFree(id, n)
		return
	}
	f.addPending(Entry{ID: id, Span: n, Born: born, Freed: f.txid})
	f.addToGroup(id, born)
}

func (f *Freelist) checkFree(id page.ID, span int, born page.TxID) error {
	switch {
	case span < 1 || int64(span) > maxExtent:
		return page.Corrupt(id, "freelist: free of %d pages", span)
	case id < firstPage || id >= f.hwm || uint64(span) > uint64(f.hwm-id):
		return page.Corrupt(id, "freelist: free of %d pages beyond the end (HWM %d)", span, f.hwm)
	case born > f.txid:
		return page.Corrupt(id, "freelist: version born in tx %d freed by earlier tx %d", born, f.txid)
	case f.overlaps(id, uint32(span)):
		return page.Corrupt(id, "freelist: free of %d pages that are already free or pending", span)
	}
	return nil
}

// overlaps reports whether any page of [id, id+span) is free or pending.
// Entries do not overlap each other, so only the last entry starting
// before the end of the range can reach into it.
func (f *Freelist) overlaps(id page.ID, span uint32) bool {
	last := id + page.ID(span) - 1
	if e, ok := f.free.floor(last); ok && e.end() > id {
		return true
	}
	if e, ok := f.pending.floor(last); ok && e.end() > id {
		return true
	}
	return false
}

// addFree adds [id, id+span) to the free set, merged with the free
// extents on either side.
func (f *Freelist) addFree(id page.ID, span uint32) {
	f.freePages += int(span)
	start, end := id, id+page.ID(span)
	if l, ok := f.free.last(); !ok || l.ID < id {
		// Above every free extent, as a load adds them: no search.
		if ok && l.end() == start && end-l.ID <= maxExtent {
			f.free.extendLast(span)
		} else {
			f.free.push(Entry{ID: start, Span: span})
		}
		return
	}
	// Merged with a neighbour, the extent takes that neighbour's place in
	// the tree (replace): one descent instead of a delete and an insert.
	p, ok := f.free.floor(id)
	before := ok && p.end() == start && end-p.ID <= maxExtent
	if before {
		start = p.ID
	}
	s, ok := f.free.get(end)
	after := ok && s.end()-start <= maxExtent
	if after {
		end = s.end()
	}
	merged := Entry{ID: start, Span: uint32(end - start)}
	switch {
	case before && after:
		f.free.delete(s.ID)
		f.free.replace(p.ID, merged)
	case before:
		f.free.replace(p.ID, merged)
	case after:
		f.free.replace(s.ID, merged)
	default:
		f.free.insert(merged)
	}
}

// removeFree takes [id, id+span) out of the free extent that holds it.
func (f *Freelist) removeFree(id page.ID, span uint32) bool {
	end := id + page.ID(span)
	e, ok := f.free.floor(id)
	if !ok || e.end() < end {
		return false
	}
	// What is left of the extent takes its place in the tree (replace):
	// a commit's run is taken page by page from the start of an extent.
	switch {
	case e.ID == id && end == e.end():
		f.free.delete(e.ID)
	case e.ID == id:
		f.free.replace(e.ID, Entry{ID: end, Span: uint32(e.end() - end)})
	default:
		f.free.replace(e.ID, Entry{ID: e.ID, Span: uint32(id - e.ID)})
		if end < e.end() {
			f.free.insert(Entry{ID: end, Span: uint32(e.end() - end)})
		}
	}
	f.freePages -= int(span)
	return true
}

func (f *Freelist) addPending(e Entry) {
	f.pending.insert(e)
	f.pendingPages += int(e.Span)
}

func (f *Freelist) deletePending(id page.ID) (Entry, bool) {
	e, ok := f.pending.delete(id)
	if ok {
		f.pendingPages -= int(e.Span)
	}
	return e, ok
}

// addToGroup files a new pending entry of the current transaction. Its
// group is the newest one: transaction ids only grow.
func (f *Freelist) addToGroup(id page.ID, born page.TxID) {
	n := len(f.groups)
	if n == 0 || f.groups[n-1].freed != f.txid {
		f.groups = append(f.groups, &group{freed: f.txid})
		n++
	}
	g := f.groups[n-1]
	g.items = append(g.items, groupItem{id: id, born: born})
	g.sorted = false
	f.dirtyFrom = min(f.dirtyFrom, n-1)
}

// Release moves to the free set every pending entry whose lifespan
// [born, freed) holds none of the retained txids (active readers,
// snapshots, and the latest commit). retained must be sorted ascending;
// it is sorted here if it is not.
//
// Cost: only groups whose verdict can have changed are looked at. For a
// group freed at f the verdict depends only on the retained txids below f,
// so if the smallest txid that differs from the previous call's set is d,
// groups with freed <= d are unchanged. Groups that gained entries since
// the last call are always looked at.
func (f *Freelist) Release(retained []page.TxID) {
	if !slices.IsSorted(retained) {
		retained = slices.Sorted(slices.Values(retained))
	}
	from := f.dirtyFrom
	if d, changed := firstChange(f.retained, retained); changed {
		i, _ := slices.BinarySearchFunc(f.groups, d+1, func(g *group, t page.TxID) int {
			return cmpTx(g.freed, t)
		})
		from = min(from, i)
		f.retained = append(f.retained[:0], retained...)
	}
	var ids []page.ID
	for _, g := range f.groups[from:] {
		ids = f.releaseGroup(g, retained, ids)
	}
	f.moveToFree(ids)
	f.dropEmptyGroups(from)
	f.dirtyFrom = len(f.groups)
}

func cmpTx(a, b page.TxID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// firstChange returns the smallest txid present in exactly one of the
// sorted lists a and b, and false if they are equal.
func firstChange(a, b []page.TxID) (page.TxID, bool) {
	for i := 0; ; i++ {
		switch {
		case i == len(a) && i == len(b):
			return 0, false
		case i == len(a):
			return b[i], true
		case i == len(b):
			return a[i], true
		case a[i] != b[i]:
			return min(a[i], b[i]), true
		}
	}
}

// releaseGroup takes out of g the entries that no retained txid can see
// and appends their ids to ids.
func (f *Freelist) releaseGroup(g *group, retained []page.TxID, ids []page.ID) []page.ID {
	f.evals++
	if !g.sorted {
		slices.SortFunc(g.items, func(a, b groupItem) int { return cmpTx(a.born, b.born) })
		g.sorted = true
	}
	// r = the newest retained txid older than g.freed. A version is seen
	// by some retained txid iff born <= r.
	i, _ := slices.BinarySearch(retained, g.freed)
	for len(g.items) > 0 {
		it := g.items[len(g.items)-1]
		if i > 0 && it.born <= retained[i-1] {
			break
		}
		g.items = g.items[:len(g.items)-1]
		ids = append(ids, it.id)
	}
	return ids
}

// moveToFree moves the pending entries with these ids to the free set.
// A few move one by one; many (a large delete released at the next
// transaction or at open) are merged in one ordered pass that rebuilds
// both trees along their right edges, O(entries) instead of a search,
// delete and insert per entry. Both ways give the same coalesced state.
func (f *Freelist) moveToFree(ids []page.ID) {
	if !mergeMoves(len(ids), f.free.len()+f.pending.len()) {
		f.moveEach(ids)
	} else {
		f.moveMerged(ids)
	}
}

// mergeMoves says whether moving this many of so many entries is done in
// one merged pass. Tests replace it to compare the two ways.
var mergeMoves = func(moves, entries int) bool { return moves >= 64 && 16*moves >= entries }

// moveEach moves the entries one by one, but adds them to the free set
// as extents: the pages one commit frees were mostly written together,
// so adjacent entries are joined before they meet the free set, which
// may hold a million extents.
func (f *Freelist) moveEach(ids []page.ID) {
	slices.Sort(ids)
	var run Entry
	for _, id := range ids {
		e, ok := f.deletePending(id)
		switch {
		case !ok:
		case run.Span > 0 && run.end() == e.ID && uint64(run.Span)+uint64(e.Span) <= maxExtent:
			run.Span += e.Span
		default:
			if run.Span > 0 {
				f.addFree(run.ID, run.Span)
			}
			run = Entry{ID: e.ID, Span: e.Span}
		}
	}
	if run.Span > 0 {
		f.addFree(run.ID, run.Span)
	}
}

func (f *Freelist) moveMerged(ids []page.ID) {
	slices.Sort(ids)
	oldPending, oldFree := f.pending, f.free
	f.pending, f.free = tree{}, tree{}
	f.pendingPages, f.freePages = 0, 0
	var moved []Entry
	oldPending.ascend(func(e Entry) bool {
		for len(ids) > 0 && ids[0] < e.ID {
			ids = ids[1:]
		}
		if len(ids) > 0 && ids[0] == e.ID {
			moved = append(moved, e)
		} else {
			f.addPending(e)
		}
		return true
	})
	oldFree.ascend(func(e Entry) bool {
		for len(moved) > 0 && moved[0].ID < e.ID {
			f.addFree(moved[0].ID, moved[0].Span)
			moved = moved[1:]
		}
		f.addFree(e.ID, e.Span)
		return true
	})
	for _, e := range moved {
		f.addFree(e.ID, e.Span)
	}
}

func (f *Freelist) dropEmptyGroups(from int) {
	keep := f.groups[:from]
	for _, g := range f.groups[from:] {
		if len(g.items) > 0 {
			keep = append(keep, g)
		}
	}
	clear(f.groups[len(keep):])
	f.groups = keep
}

// Rollback undoes every Allocate and Free since Begin, newest first, so
// each undo sees exactly the state its operation produced. Entries that
// Release moved meanwhile stay released: that never depends on the
// transaction.
func (f *Freelist) Rollback() {
	for i := len(f.log) - 1; i >= 0; i-- {
		o := f.log[i]
		switch o.kind {
		case opAlloc:
			if o.reclaimed != nil {
				f.undoReclaim(*o.reclaimed)
				continue
			}
			f.undoAlloc(o)
		case opFree:
			f.undoFree(o)
		}
	}
	// Only this transaction frees with freed == txid, so its group is the
	// newest one and holds nothing else.
	if n := len(f.groups); n > 0 && f.groups[n-1].freed == f.txid {
		f.groups[n-1] = nil
		f.groups = f.groups[:n-1]
	}
	f.dirtyFrom = min(f.dirtyFrom, len(f.groups))
	f.hwm = f.beginHWM
	f.endTx()
}

func (f *Freelist) undoAlloc(o op) {
	if o.id < o.prevHWM {
		f.addFree(o.id, uint32(min(o.id+page.ID(o.span), o.prevHWM)-o.id))
	}
	f.hwm = o.prevHWM
}

func (f *Freelist) undoFree(o op) {
	if o.born != f.txid {
		if _, ok := f.deletePending(o.id); ok {
			return
		}
	}
	// Freed at once, or released since: it is in the free set.
	f.removeFree(o.id, o.span)
}

// Commit ends the transaction: its log becomes history and the run built
// by Persist becomes the head of the chain.
func (f *Freelist) Commit() {
	if f.next != nil {
		f.first += f.nextDrop
		if f.first > len(f.chain)/2 {
			f.chain = append(f.chain[:0], f.chain[f.first:]...)
			f.first = 0
		}
		f.chain = append(f.chain, *f.next)
		f.sweepAt, f.sweepFrom = f.nextAt, f.nextFrom
	}
	f.lastAlloc = f.allocated
	f.endTx()
}

// live returns the runs the state loads from, oldest first.
func (f *Freelist) live() []link { return f.chain[f.first:] }

// Chain returns the references of the persisted runs that are live: the
// head first, back to the base.
func (f *Freelist) Chain() []page.Ref {
	live := f.live()
	refs := make([]page.Ref, len(live))
	for i, l := range live {
		refs[len(live)-1-i] = l.ref
	}
	return refs
}

func (f *Freelist) head() page.Ref {
	if len(f.chain) == f.first {
		return page.Ref{}
	}
	return f.chain[len(f.chain)-1].ref
}

// Entries calls fn for every free extent (Born = Freed = 0) and every
// pending entry until fn returns false.
func (f *Freelist) Entries(fn func(e Entry) bool) {
	if f.free.ascend(fn) {
		f.pending.ascend(fn)
	}
}

// FreeCount returns the number of free pages.
func (f *Freelist) FreeCount() int { return f.freePages }

// PendingCount returns the number of pending pages.
func (f *Freelist) PendingCount() int { return f.pendingPages }

// IsFree reports whether page id is free (reusable now).
func (f *Freelist) IsFree(id page.ID) bool {
	e, ok := f.free.floor(id)
	return ok && id < e.end()
}
