package freelist

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// Body layout of the runs of format 1 (types TypeFreeDelta and
// TypeFreeCheckp), which Load still reads, see docs/FORMAT.md:
//
//	0  prev   Ref (24)  delta: the previous run (zero: none); checkpoint: zero
//	24 chain  u64       delta: pages from this run back to the checkpoint
//	32 hwm    u64
//	40 count  u64       ops (delta, 24 bytes each) or entries (checkpoint, 32 each)
//	48 items
const (
	v1OffChain = page.RefSize
	v1OffCount = v1OffChain + 16
	v1Fixed    = v1OffCount + 8
)

// loaded is one run of the chain as read at open.
type loaded struct {
	ref page.Ref
	h   page.Header
	run []byte
}

// Load rebuilds the state persisted by the runs whose newest is head: it
// follows the prev references back to the base the head names, then
// applies the runs oldest first — each run's ops to the pages described so
// far, then its segment, which replaces what is known of its range and
// describes it from then on (persist.go). A head of format 1 goes back to
// its checkpoint, or to a zero reference (the empty state of a new file).
// read returns the run a reference names, verified by the caller. Cost:
// O(runs read), about one sweep: never O(file).
//
// Nothing is released: entries freed before the open stay pending until the
// caller calls Release with the txids it retains.
//
// Every inconsistency is an error wrapping page.ErrCorrupt that names the
// run; no count read from the file is trusted before it is checked against
// the length of its run.
func Load(head page.Ref, pageSize int, read func(r page.Ref) ([]byte, error)) (*Freelist, error) {
	if !page.ValidSize(pageSize) {
		return nil, fmt.Errorf("freelist: invalid page size %d", pageSize)
	}
	runs, err := readChain(head, pageSize, read)
	if err != nil {
		return nil, err
	}
	f := New(firstPage)
	f.txid = head.TxID
	l := loader{f: f}
	for i := len(runs) - 1; i >= 0; i-- {
		if err := l.apply(runs[i], i == len(runs)-1); err != nil {
			return nil, err
		}
	}
	if len(runs) == 0 {
		l.known.add(firstPage, maxPages) // a new file: the empty state
	}
	if !l.known.all() {
		return nil, page.Corrupt(head.ID, "freelist runs back to tx %d leave pages from %d undescribed", runs[len(runs)-1].h.TxID, l.known.firstGap())
	}
	if err := f.checkChainInUse(); err != nil {
		return nil, err
	}
	f.buildGroups()
	f.beginHWM = f.hwm
	return f, nil
}

// readChain reads the runs from head back to the base, newest first. Each
// prev must name an older transaction, so the walk ends even on a
// corrupted cycle, and no page is visited twice.
func readChain(head page.Ref, pageSize int, read func(page.Ref) ([]byte, error)) ([]loaded, error) {
	var runs []loaded
	var base page.TxID
	haveBase, sawV1 := false, false
	for ref := head; !ref.IsZero(); {
		run, err := read(ref)
		if err != nil {
			return nil, fmt.Errorf("freelist: reading %v: %w", ref, err)
		}
		h, err := checkRun(run, ref, pageSize)
		if err != nil {
			return nil, err
		}
		runs = append(runs, loaded{ref: ref, h: h, run: run})
		prev := page.GetRef(run[page.HeaderSize+offPrev:])
		switch h.Type {
		case page.TypeFreeSweep:
			if sawV1 {
				return nil, page.Corrupt(ref.ID, "freelist sweep run of tx %d comes before a format-1 run", h.TxID)
			}
			if !haveBase {
				base, haveBase = getSweepHead(run[page.HeaderSize:]).base, true
				if base > h.TxID {
					return nil, page.Corrupt(ref.ID, "freelist run of tx %d names a later base, tx %d", h.TxID, base)
				}
			}
			if h.TxID == base {
				return runs, nil
			}
		case page.TypeFreeCheckp:
			switch {
			case haveBase && h.TxID != base:
				return nil, page.Corrupt(ref.ID, "freelist checkpoint of tx %d is not the base, tx %d", h.TxID, base)
			case !prev.IsZero():
				return nil, page.Corrupt(ref.ID, "freelist checkpoint has a previous run (%v)", prev)
			}
			return runs, nil
		case page.TypeFreeDelta:
			sawV1 = true
			if haveBase && h.TxID == base && !prev.IsZero() {
				return nil, page.Corrupt(ref.ID, "freelist base delta of tx %d has a previous run", h.TxID)
			}
		}
		switch {
		case !prev.IsZero() && prev.TxID >= h.TxID:
			return nil, page.Corrupt(ref.ID, "freelist run of tx %d points back to tx %d, not an older one", h.TxID, prev.TxID)
		case haveBase && (prev.IsZero() || prev.TxID < base):
			return nil, page.Corrupt(ref.ID, "freelist run of tx %d points back past its base, tx %d", h.TxID, base)
		}
		ref = prev
	}
	return runs, nil
}

// checkRun verifies what the run says about itself against the reference
// that led to it.
func checkRun(run []byte, ref page.Ref, pageSize int) (page.Header, error) {
	if ref.ID < firstPage || ref.ID >= maxPages {
		return page.Header{}, page.Corrupt(ref.ID, "freelist run at an impossible page")
	}
	h, err := page.CheckHeader(run, ref.ID, 0)
	if err != nil {
		return h, err
	}
	switch {
	case !IsRun(h.Type):
		return h, page.Corrupt(ref.ID, "type is %v, want a freelist run", h.Type)
	case h.TxID != ref.TxID:
		return h, page.Corrupt(ref.ID, "written by tx %d, reference says tx %d", h.TxID, ref.TxID)
	case uint64(len(run)) != uint64(h.Span)*uint64(pageSize):
		return h, page.Corrupt(ref.ID, "run is %d bytes, header says %d pages of %d", len(run), h.Span, pageSize)
	case len(run) < page.HeaderSize+max(sweepFixed, v1Fixed):
		return h, page.Corrupt(ref.ID, "freelist run too short")
	}
	return h, nil
}

// runTypes are the page types of free-space runs, the current one first.
var runTypes = [...]page.Type{page.TypeFreeSweep, page.TypeFreeDelta, page.TypeFreeCheckp}

// IsRun reports whether pages of type t hold free-space runs.
func IsRun(t page.Type) bool { return slices.Contains(runTypes[:], t) }

// ReadRun reads the free-space run ref names with read, which checks the
// page type it is given: a run may be of any run type. The error is that
// of the current type.
func ReadRun(ref page.Ref, read func(page.Ref, page.Type) ([]byte, error)) ([]byte, error) {
	var first error
	for _, t := range runTypes {
		run, err := read(ref, t)
		if err == nil {
			return run, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// loader applies runs oldest first and remembers which pages they have
// described so far.
type loader struct {
	f       *Freelist
	known   known
	v1Pages uint64 // format 1: pages from the checkpoint (or first delta) on
}

// apply adds one run, oldest first, to the state.
func (l *loader) apply(r loaded, oldest bool) error {
	f := l.f
	lk := link{ref: r.ref, span: r.h.Span}
	switch r.h.Type {
	case page.TypeFreeSweep:
		if err := l.applySweep(r, &lk); err != nil {
			return err
		}
	case page.TypeFreeCheckp:
		if err := f.loadCheckpoint(r); err != nil {
			return err
		}
		l.known.add(firstPage, maxPages)
		lk.hi = maxPages
		l.v1Pages = uint64(r.h.Span)
	case page.TypeFreeDelta:
		if oldest {
			// The first delta of a chain from the empty state.
			l.known.add(firstPage, maxPages)
			lk.hi = maxPages
		}
		if err := f.replayDelta(r); err != nil {
			return err
		}
		l.v1Pages += uint64(r.h.Span)
		if got := le.Uint64(r.run[page.HeaderSize+v1OffChain:]); got != l.v1Pages {
			return page.Corrupt(r.ref.ID, "freelist delta counts %d chain pages, the chain has %d", got, l.v1Pages)
		}
	}
	f.chain = append(f.chain, lk)
	return nil
}

// applySweep applies a sweep run's ops to the pages known so far, then its
// segment, if the state does not describe every page yet.
func (l *loader) applySweep(r loaded, lk *link) error {
	f := l.f
	b := r.run[page.HeaderSize:]
	sh := getSweepHead(b)
	nops, nents, lo, hi := sh.nops, sh.nents, sh.lo, sh.hi
	if room := uint64(len(b) - sweepFixed); nops*opSize+nents*entrySize > room {
		return page.Corrupt(r.ref.ID, "freelist run claims %d ops and %d entries, room for %d bytes", nops, nents, room)
	}
	if lo < firstPage || lo >= hi || hi > maxPages {
		return page.Corrupt(r.ref.ID, "freelist segment [%d, %d) is not a range of pages", lo, hi)
	}
	// Every run after the base continues the sweep (after format-1 runs,
	// a sweep starts at firstPage, as in a new Freelist).
	if len(f.chain) > 0 && lo != f.sweepAt {
		return page.Corrupt(r.ref.ID, "freelist segment starts at page %d, the sweep is at page %d", lo, f.sweepAt)
	}
	hwm, err := storedHWM(r.run, r.ref.ID)
	if err != nil {
		return err
	}
	ops := b[sweepFixed:]
	for i := uint64(0); i < nops; i++ {
		o := getOp(ops[i*opSize:])
		if err := l.replay(o, r.h.TxID); err != nil {
			return page.Corrupt(r.ref.ID, "freelist run of tx %d, op %d: %v", r.h.TxID, i, err)
		}
	}
	switch {
	case l.known.all() && f.hwm != hwm:
		return page.Corrupt(r.ref.ID, "freelist run stores HWM %d, its ops give %d", hwm, f.hwm)
	case hwm < f.hwm:
		return page.Corrupt(r.ref.ID, "freelist run stores HWM %d, below the previous %d", hwm, f.hwm)
	}
	f.hwm = hwm
	if !l.known.all() {
		if err := l.replaceRange(r, lo, hi, ops[nops*opSize:], nents, hwm); err != nil {
			return err
		}
	}
	lk.hi = hi
	f.sweepAt, f.sweepFrom = sweepAfter(lo, hi, r.h.TxID, f.sweepFrom)
	return nil
}

// replay applies op o of transaction tx to the pages known so far: while
// the state is partial, pages no segment has described yet are left to the
// segment that will.
func (l *loader) replay(o op, tx page.TxID) error {
	if l.known.all() {
		return l.f.replayOp(o, tx)
	}
	if o.span == 0 || o.id < firstPage || o.id >= maxPages {
		return l.f.replayOp(o, tx) // reports the bad op
	}
	end := o.id + page.ID(o.span)
	for _, iv := range l.known {
		lo, hi := max(iv.lo, o.id), min(iv.hi, end)
		if lo >= hi {
			continue
		}
		piece := o
		piece.id, piece.span = lo, uint32(hi-lo)
		if err := l.f.replayOp(piece, tx); err != nil {
			return err
		}
	}
	return nil
}

// replaceRange makes a segment the state of its range: what the earlier
// runs said of it goes, the segment's entries come in. The segment's first
// entry may begin before lo (it holds page lo), the others lie in [lo, hi).
func (l *loader) replaceRange(r loaded, lo, hi page.ID, items []byte, n uint64, hwm page.ID) error {
	f := l.f
	start := lo
	if n > 0 {
		if e := getEntry(items); e.ID < lo {
			start = e.ID
		}
	}
	for _, t := range []*tree{&f.free, &f.pending} {
		if e, ok := t.floor(start); ok && e.ID < start && e.end() > start {
			return page.Corrupt(r.ref.ID, "freelist segment from page %d cuts pages %d+%d the earlier runs give", start, e.ID, e.Span)
		}
		var ids []page.ID
		for c := t.seek(start); c.valid() && c.entry().ID < hi; c.next() {
			ids = append(ids, c.entry().ID)
		}
		for _, id := range ids {
			if t == &f.free {
				e, _ := f.free.get(id)
				f.removeFree(id, e.Span)
			} else {
				f.deletePending(id)
			}
		}
	}
	prevEnd := firstPage
	for i := uint64(0); i < n; i++ {
		e := getEntry(items[i*entrySize:])
		err := checkEntry(e, prevEnd, hwm, r.h.TxID)
		switch {
		case err != nil:
		case e.ID < lo && (i > 0 || e.end() <= lo):
			err = fmt.Errorf("pages %d+%d lie before the segment's first page %d", e.ID, e.Span, lo)
		case hi != maxPages && e.end() > hi:
			err = fmt.Errorf("pages %d+%d reach beyond the segment's end %d", e.ID, e.Span, hi)
		}
		if err != nil {
			return page.Corrupt(r.ref.ID, "freelist segment entry %d: %v", i, err)
		}
		prevEnd = e.end()
		if e.Freed != 0 {
			f.addPending(e)
		} else {
			f.addFree(e.ID, e.Span)
		}
	}
	l.known.add(start, hi)
	return nil
}

// known is the set of pages the runs applied so far describe: sorted,
// disjoint, non-adjacent ranges. Segments arrive in sweep order, so it
// holds at most a few.
type known []pageRange

type pageRange struct{ lo, hi page.ID }

func (k known) all() bool { return len(k) == 1 && k[0].lo <= firstPage && k[0].hi == maxPages }

func (k *known) add(lo, hi page.ID) {
	out := (*k)[:0:0]
	for _, s := range *k {
		if s.hi < lo || s.lo > hi {
			out = append(out, s)
			continue
		}
		lo, hi = min(lo, s.lo), max(hi, s.hi)
	}
	i, _ := slices.BinarySearchFunc(out, lo, func(s pageRange, id page.ID) int { return cmp.Compare(s.lo, id) })
	*k = slices.Insert(out, i, pageRange{lo, hi})
}

// firstGap returns the lowest page not described.
func (k known) firstGap() page.ID {
	if len(k) == 0 || k[0].lo > firstPage {
		return firstPage
	}
	return k[0].hi
}

// counted returns the items of a run after checking that count of them,
// size bytes each, fit in it.
func counted(r loaded, size int) ([]byte, uint64, error) {
	b := r.run[page.HeaderSize:]
	count := le.Uint64(b[v1OffCount:])
	items := b[v1Fixed:]
	if count > uint64(len(items)/size) {
		return nil, 0, page.Corrupt(r.ref.ID, "freelist run claims %d items, room for %d", count, len(items)/size)
	}
	return items, count, nil
}

// storedHWM reads the HWM a run stores (at the same offset in every run
// type).
func storedHWM(run []byte, id page.ID) (page.ID, error) {
	hwm := page.ID(le.Uint64(run[page.HeaderSize+offHWM:]))
	if hwm < firstPage || hwm > maxPages {
		return 0, page.Corrupt(id, "freelist HWM %d out of range", hwm)
	}
	return hwm, nil
}

// loadCheckpoint sets the state from a checkpoint run. Entries must come in
// increasing ID order without overlap; adjacent free extents are merged, so
// the free set is in the canonical, coalesced form.
func (f *Freelist) loadCheckpoint(r loaded) error {
	items, count, err := counted(r, entrySize)
	if err != nil {
		return err
	}
	hwm, err := storedHWM(r.run, r.ref.ID)
	if err != nil {
		return err
	}
	prevEnd := firstPage
	for i := uint64(0); i < count; i++ {
		e := getEntry(items[i*entrySize:])
		if err := checkEntry(e, prevEnd, hwm, r.h.TxID); err != nil {
			return page.Corrupt(r.ref.ID, "freelist checkpoint entry %d: %v", i, err)
		}
		prevEnd = e.end()
		// Entries come in increasing order: both add along the trees'
		// right edges (push), without a search.
		if e.Freed != 0 {
			f.addPending(e)
		} else {
			f.addFree(e.ID, e.Span)
		}
	}
	f.hwm = hwm
	return nil
}

func getEntry(b []byte) Entry {
	return Entry{
		ID:    page.ID(le.Uint64(b[0:])),
		Span:  le.Uint32(b[8:]),
		Born:  page.TxID(le.Uint64(b[16:])),
		Freed: page.TxID(le.Uint64(b[24:])),
	}
}

// checkEntry validates one checkpoint entry of transaction tx, given the end
// of the previous one.
func checkEntry(e Entry, prevEnd, hwm page.ID, tx page.TxID) error {
	switch {
	case e.Span == 0:
		return fmt.Errorf("empty extent at page %d", e.ID)
	case e.ID < prevEnd:
		return fmt.Errorf("pages %d+%d overlap the previous entry, are out of order or below page %d", e.ID, e.Span, firstPage)
	case e.ID >= hwm || uint64(e.Span) > uint64(hwm-e.ID):
		return fmt.Errorf("pages %d+%d reach beyond HWM %d", e.ID, e.Span, hwm)
	case e.Freed == 0 && e.Born != 0:
		return fmt.Errorf("free extent %d+%d has a birth txid", e.ID, e.Span)
	case e.Freed != 0 && (e.Born >= e.Freed || e.Freed > tx):
		return fmt.Errorf("pending %d+%d has lifespan [%d, %d) in the checkpoint of tx %d", e.ID, e.Span, e.Born, e.Freed, tx)
	}
	return nil
}

// replayDelta applies a delta's ops in order, as the live Freelist did.
func (f *Freelist) replayDelta(r loaded) error {
	items, count, err := counted(r, opSize)
	if err != nil {
		return err
	}
	hwm, err := storedHWM(r.run, r.ref.ID)
	if err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		if err := f.replayOp(getOp(items[i*opSize:]), r.h.TxID); err != nil {
			return page.Corrupt(r.ref.ID, "freelist delta of tx %d, op %d: %v", r.h.TxID, i, err)
		}
	}
	if f.hwm != hwm {
		return page.Corrupt(r.ref.ID, "freelist delta stores HWM %d, its ops give %d", hwm, f.hwm)
	}
	return nil
}

func getOp(b []byte) op {
	return op{
		id:   page.ID(le.Uint64(b[0:])),
		span: le.Uint32(b[8:]),
		kind: opKind(le.Uint32(b[12:])),
		born: page.TxID(le.Uint64(b[16:])),
	}
}

func (f *Freelist) replayOp(o op, tx page.TxID) error {
	switch {
	case o.span == 0:
		return fmt.Errorf("empty extent at page %d", o.id)
	case o.id < firstPage || o.id >= maxPages:
		return fmt.Errorf("page %d out of range", o.id)
	}
	switch o.kind {
	case opAlloc:
		return f.replayAlloc(o)
	case opFree:
		return f.replayFree(o, tx)
	}
	return fmt.Errorf("unknown op kind %d", o.kind)
}

// replayAlloc takes [id, id+span) out of whatever holds it. At run time the
// range was free, but a pending entry that Release had freed is still
// pending here (nothing is released during replay); once a page is reused
// its old lifespan no longer matters. Pages at or beyond HWM extend it.
func (f *Freelist) replayAlloc(o op) error {
	if o.id > f.hwm {
		return fmt.Errorf("alloc of pages %d+%d leaves a gap after HWM %d", o.id, o.span, f.hwm)
	}
	end := o.id + page.ID(o.span)
	for pos := o.id; pos < end; {
		if pos == f.hwm {
			f.hwm = end
			break
		}
		n, err := f.takeForReplay(pos, end)
		if err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// takeForReplay removes pages from pos (below HWM) up to at most end from
// the free extent or pending entry holding pos, and returns how many.
func (f *Freelist) takeForReplay(pos, end page.ID) (page.ID, error) {
	if e, ok := f.free.floor(pos); ok && pos < e.end() {
		n := min(end, e.end()) - pos
		f.removeFree(pos, uint32(n))
		return n, nil
	}
	// A live allocation starts at the start of a free extent, so it
	// reaches a pending entry only at the entry's first page.
	e, ok := f.pending.get(pos)
	if !ok {
		return 0, fmt.Errorf("alloc of page %d, which is neither free nor pending", pos)
	}
	f.deletePending(e.ID)
	n := min(end-pos, page.ID(e.Span))
	if rest := e.Span - uint32(n); rest > 0 {
		f.addPending(Entry{ID: pos + n, Span: rest, Born: e.Born, Freed: e.Freed})
	}
	return n, nil
}

func (f *Freelist) replayFree(o op, tx page.TxID) error {
	switch {
	case o.id >= f.hwm || uint64(o.span) > uint64(f.hwm-o.id):
		return fmt.Errorf("free of pages %d+%d beyond HWM %d", o.id, o.span, f.hwm)
	case o.born > tx:
		return fmt.Errorf("free of pages %d+%d born in a later tx %d", o.id, o.span, o.born)
	case f.overlaps(o.id, o.span):
		return fmt.Errorf("free of pages %d+%d that are already free or pending", o.id, o.span)
	}
	if o.born == tx {
		f.addFree(o.id, o.span)
	} else {
		f.addPending(Entry{ID: o.id, Span: o.span, Born: o.born, Freed: tx})
	}
	return nil
}

// checkChainInUse verifies that the live chain's own pages are in use:
// a freelist that lists them as free would hand them out and destroy
// itself.
func (f *Freelist) checkChainInUse() error {
	for _, l := range f.chain {
		id, span := l.ref.ID, l.span
		if id >= f.hwm || uint64(span) > uint64(f.hwm-id) {
			return page.Corrupt(id, "freelist run of %d pages lies beyond HWM %d", span, f.hwm)
		}
		if f.overlaps(id, span) {
			return page.Corrupt(id, "freelist run of %d pages is itself listed as free or pending", span)
		}
	}
	return nil
}

// buildGroups files every pending entry under its freeing transaction.
// Every group starts unevaluated, so the first Release looks at all.
func (f *Freelist) buildGroups() {
	byFreed := map[page.TxID]*group{}
	f.pending.ascend(func(e Entry) bool {
		g := byFreed[e.Freed]
		if g == nil {
			g = &group{freed: e.Freed}
			byFreed[e.Freed] = g
			f.groups = append(f.groups, g)
		}
		g.items = append(g.items, groupItem{id: e.ID, born: e.Born})
		return true
	})
	slices.SortFunc(f.groups, func(a, b *group) int { return cmpTx(a.freed, b.freed) })
	f.dirtyFrom = 0
}
