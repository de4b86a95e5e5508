package freelist

import (
	"fmt"
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// loaded is one run of the chain as read at open.
type loaded struct {
	ref page.Ref
	h   page.Header
	run []byte
}

// Load rebuilds the state persisted by the chain whose newest run is head:
// it follows the prev references back to a checkpoint (or to a zero
// reference: the empty state of a new file), then replays the deltas oldest
// first. read returns the run a reference names, verified by the caller.
// Cost: O(chain + checkpoint), never O(file).
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
	for i := len(runs) - 1; i >= 0; i-- {
		if err := f.apply(runs[i]); err != nil {
			return nil, err
		}
	}
	if err := f.checkChainInUse(); err != nil {
		return nil, err
	}
	f.buildGroups()
	f.beginHWM = f.hwm
	return f, nil
}

// readChain reads the runs from head back to the checkpoint or the first
// delta, newest first. Each prev must name an older transaction, so the
// walk ends even on a corrupted cycle, and no page is visited twice.
func readChain(head page.Ref, pageSize int, read func(page.Ref) ([]byte, error)) ([]loaded, error) {
	var runs []loaded
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
		if h.Type == page.TypeFreeCheckp {
			if !prev.IsZero() {
				return nil, page.Corrupt(ref.ID, "freelist checkpoint has a previous run (%v)", prev)
			}
			break
		}
		if !prev.IsZero() && prev.TxID >= h.TxID {
			return nil, page.Corrupt(ref.ID, "freelist delta of tx %d points back to tx %d, not an older one", h.TxID, prev.TxID)
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
	case h.Type != page.TypeFreeDelta && h.Type != page.TypeFreeCheckp:
		return h, page.Corrupt(ref.ID, "type is %v, want a freelist run", h.Type)
	case h.TxID != ref.TxID:
		return h, page.Corrupt(ref.ID, "written by tx %d, reference says tx %d", h.TxID, ref.TxID)
	case uint64(len(run)) != uint64(h.Span)*uint64(pageSize):
		return h, page.Corrupt(ref.ID, "run is %d bytes, header says %d pages of %d", len(run), h.Span, pageSize)
	case len(run) < page.HeaderSize+fixedSize:
		return h, page.Corrupt(ref.ID, "freelist run too short")
	}
	return h, nil
}

// apply adds one run, oldest first, to the state.
func (f *Freelist) apply(r loaded) error {
	if r.h.Type == page.TypeFreeCheckp {
		if err := f.loadCheckpoint(r); err != nil {
			return err
		}
		f.chain = append(f.chain, link{ref: r.ref, span: r.h.Span})
		f.chainPages = uint64(r.h.Span)
		f.ckptPages = uint64(r.h.Span)
		return nil
	}
	if err := f.replayDelta(r); err != nil {
		return err
	}
	f.chain = append(f.chain, link{ref: r.ref, span: r.h.Span})
	f.chainPages += uint64(r.h.Span)
	if got := le.Uint64(r.run[page.HeaderSize+offChain:]); got != f.chainPages {
		return page.Corrupt(r.ref.ID, "freelist delta counts %d chain pages, the chain has %d", got, f.chainPages)
	}
	return nil
}

// counted returns the items of a run after checking that count of them,
// size bytes each, fit in it.
func counted(r loaded, size int) ([]byte, uint64, error) {
	b := r.run[page.HeaderSize:]
	count := le.Uint64(b[offCount:])
	items := b[fixedSize:]
	if count > uint64(len(items)/size) {
		return nil, 0, page.Corrupt(r.ref.ID, "freelist run claims %d items, room for %d", count, len(items)/size)
	}
	return items, count, nil
}

func storedHWM(r loaded) (page.ID, error) {
	hwm := page.ID(le.Uint64(r.run[page.HeaderSize+offHWM:]))
	if hwm < firstPage || hwm > maxPages {
		return 0, page.Corrupt(r.ref.ID, "freelist HWM %d out of range", hwm)
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
	hwm, err := storedHWM(r)
	if err != nil {
		return err
	}
	var free, pending builder
	prevEnd := firstPage
	for i := uint64(0); i < count; i++ {
		e := getEntry(items[i*entrySize:])
		if err := checkEntry(e, prevEnd, hwm, r.h.TxID); err != nil {
			return page.Corrupt(r.ref.ID, "freelist checkpoint entry %d: %v", i, err)
		}
		prevEnd = e.end()
		if e.Freed != 0 {
			pending.add(e)
			f.pendingPages += int(e.Span)
			continue
		}
		f.freePages += int(e.Span)
		if last := free.lastEntry(); last != nil && last.end() == e.ID && uint64(last.Span)+uint64(e.Span) <= maxExtent {
			last.Span += e.Span
			continue
		}
		free.add(e)
	}
	f.hwm = hwm
	f.free = free.build()
	f.pending = pending.build()
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
	hwm, err := storedHWM(r)
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
