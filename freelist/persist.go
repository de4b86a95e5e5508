package freelist

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Every commit writes one sweep run (type TypeFreeSweep): the commit's ops
// (ALLOC and FREE, in order) and one segment of the state. A sweep walks
// the state in page order, a segment per commit, each segment describing
// every free and pending page of its range [lo, hi) as of that commit; the
// segment that reaches the end of the file (hi = maxPages) completes the
// sweep, and the next commit starts a new one at the first page. A state
// no larger than a commit's ops is written whole, without the ops.
//
// The state is the newest segment covering each page plus the ops that
// came after it. So the runs a file needs are the head back to the base:
// the run of the previous sweep whose range holds the current sweep's
// position (or, once a sweep completes, its first run). Each commit moves
// the position on and frees the previous sweep's runs it no longer needs,
// about as many pages as it writes: no commit rewrites the whole state,
// and opening reads about one sweep — the state plus the ops of the commits
// that wrote it.
//
// Body layout (after the page header), see docs/FORMAT.md, "Free space":
//
//	0  prev   Ref (24)  the previous run (zero: none)
//	24 base   u64       txid of the oldest run the state loads from
//	32 hwm    u64       HWM after the transaction
//	40 nops   u32       ops
//	44 nents  u32       segment entries
//	48 lo     u64       where the segment's range starts (firstPage: a new sweep)
//	56 hi     u64       where it ends (maxPages: the end of the file)
//	64 ops    nops × 24, then entries nents × 32
const (
	offPrev    = 0
	offBase    = page.RefSize
	offHWM     = offBase + 8
	offNops    = offHWM + 8
	offNents   = offNops + 4
	offLo      = offNents + 4
	offHi      = offLo + 8
	sweepFixed = offHi + 8

	opSize    = 24 // id u64, span u32, kind u32, born u64
	entrySize = 32 // id u64, span u32, reserved u32, born u64, freed u64

	// sweepFactor sets the pace of a sweep: a commit's segment holds at
	// least sweepFactor entries per op it logs (and fills its last page),
	// so a sweep takes at most 1/sweepFactor of the state in ops, which
	// bounds what open reads to about 1 + 1/sweepFactor states.
	sweepFactor = 4
)

var le = binary.LittleEndian

// Persist builds the run that persists the current transaction: its ops
// and the next segment of the sweep, after freeing the runs that the new
// head no longer needs. The cost is O(ops of the transaction): the segment
// is a constant multiple of them.
//
// alloc places the run; it must allocate through this Freelist (normally
// it is f.Allocate), because the run's own allocation belongs to the state
// it persists. Call Commit once the commit is durable, or Rollback.
func (f *Freelist) Persist(pageSize int, alloc func(span int) page.ID) ([][]byte, page.Ref, error) {
	switch {
	case f.err != nil:
		return nil, page.Ref{}, f.err
	case !page.ValidSize(pageSize):
		return nil, page.Ref{}, fmt.Errorf("freelist: invalid page size %d", pageSize)
	case f.next != nil:
		return nil, page.Ref{}, errors.New("freelist: Persist called twice in one transaction")
	}
	at, hi, from := f.sweepAt, maxPages, f.sweepFrom
	whole := f.wholeFits(pageSize)
	var entries int // in [at, hi) now
	if whole {
		at = firstPage
		entries = f.free.len() + f.pending.len()
	} else {
		hi, entries = f.segmentEnd(at, budget(len(f.log)+1, pageSize))
	}
	if at == firstPage {
		from = f.txid
	}
	drop := f.superseded(from, hi)
	f.freeRuns(drop)
	if f.err != nil {
		return nil, page.Ref{}, f.err
	}
	// Each superseded run became a pending entry, perhaps in the range. The
	// run's own allocation takes the front of an extent or extends the
	// file; continuing a run in the middle of an extent can split it, so
	// one entry more may be in the range afterwards.
	nops := len(f.log) + 1
	if whole {
		nops = 0
	}
	room := entries + drop + 1
	span := page.SpanFor(uint64(sweepFixed+opSize*nops+entrySize*room), pageSize)
	id, err := f.allocRun(alloc, span)
	if err != nil {
		return nil, page.Ref{}, err
	}
	var run []byte
	if n := int(span) * pageSize; f.Buffer != nil {
		run = f.Buffer(n)
		clear(run)
	} else {
		run = make([]byte, n)
	}
	page.PutHeader(run, page.Header{ID: id, TxID: f.txid, Type: page.TypeFreeSweep, Span: uint32(span)})
	b := run[page.HeaderSize:]
	page.PutRef(b[offPrev:], f.head())
	base := f.txid
	if live := f.live(); drop < len(live) {
		base = live[drop].ref.TxID
	}
	le.PutUint64(b[offBase:], uint64(base))
	le.PutUint64(b[offHWM:], uint64(f.hwm))
	le.PutUint64(b[offLo:], uint64(at))
	le.PutUint64(b[offHi:], uint64(hi))
	p := b[sweepFixed:]
	if !whole {
		le.PutUint32(b[offNops:], uint32(len(f.log)))
		for _, o := range f.log {
			putOp(p, o)
			p = p[opSize:]
		}
	}
	n, ok := f.putSegment(p, at, hi)
	if !ok {
		return nil, page.Ref{}, errors.New("freelist: segment outgrew its run")
	}
	le.PutUint32(b[offNents:], uint32(n))

	ref := page.Ref{ID: id, Checksum: page.Seal(run), TxID: f.txid}
	f.next = &link{ref: ref, span: uint32(span), hi: hi}
	f.nextDrop = drop
	f.nextAt, f.nextFrom = sweepAfter(at, hi, f.txid, f.sweepFrom)
	return [][]byte{run}, ref, nil
}

// sweepAfter returns where the sweep stands after transaction tx wrote the
// segment [lo, hi), when the sweep's first run was from: where the next
// segment starts, and the sweep's first run (firstPage and 0 once the
// segment reaches the end of the file).
func sweepAfter(lo, hi page.ID, tx, from page.TxID) (page.ID, page.TxID) {
	switch {
	case hi == maxPages:
		return firstPage, 0
	case lo == firstPage:
		return hi, tx
	}
	return hi, from
}

// sweepHead is the fixed part of a sweep run's body.
type sweepHead struct {
	base        page.TxID
	nops, nents uint64
	lo, hi      page.ID
}

// getSweepHead decodes the fixed part of the body b of a sweep run.
func getSweepHead(b []byte) sweepHead {
	return sweepHead{
		base:  page.TxID(le.Uint64(b[offBase:])),
		nops:  uint64(le.Uint32(b[offNops:])),
		nents: uint64(le.Uint32(b[offNents:])),
		lo:    page.ID(le.Uint64(b[offLo:])),
		hi:    page.ID(le.Uint64(b[offHi:])),
	}
}

// wholeFits reports whether the whole state, in one segment, takes no more
// pages than the transaction's ops would. Such a run is a sweep by itself
// and the base of the state: it needs no ops (Load applies a base's
// segment only), and every older run is superseded. Small states are
// written this way every commit, so a commit frees every page the one
// before it wrote, and the next reuses them as one extent (see Allocate).
func (f *Freelist) wholeFits(pageSize int) bool {
	live := len(f.live())
	entries := f.free.len() + f.pending.len() + live + 1 // the superseded runs become pending
	ops := len(f.log) + 1 + live
	return page.SpanFor(uint64(sweepFixed+entrySize*entries), pageSize) <= page.SpanFor(uint64(sweepFixed+opSize*ops), pageSize)
}

// budget is the number of segment entries a run with nops ops carries: at
// least sweepFactor per op, and as many as fill its last page.
func budget(nops, pageSize int) int {
	used := sweepFixed + opSize*nops
	span := page.SpanFor(uint64(used+entrySize*(sweepFactor*nops+1)), pageSize)
	return (int(span)*pageSize-used)/entrySize - 1
}

// segmentStart is where a segment from at begins: at, or the start of the
// entry that holds page at, so that no entry is cut in two.
func (f *Freelist) segmentStart(at page.ID) page.ID {
	start := at
	for _, t := range []*tree{&f.free, &f.pending} {
		if e, ok := t.floor(at); ok && e.end() > at {
			start = min(start, e.ID)
		}
	}
	return start
}

// ascendFrom calls fn for every free extent and pending entry that ends
// after id, in increasing ID order, until fn returns false.
func (f *Freelist) ascendFrom(id page.ID, fn func(Entry) bool) {
	start := f.segmentStart(id)
	fc, pc := &f.scratch[0], &f.scratch[1]
	f.free.seekInto(fc, start)
	f.pending.seekInto(pc, start)
	for fc.valid() || pc.valid() {
		var e Entry
		if !pc.valid() || (fc.valid() && fc.entry().ID < pc.entry().ID) {
			e = fc.entry()
			fc.next()
		} else {
			e = pc.entry()
			pc.next()
		}
		if !fn(e) {
			return
		}
	}
}

// segmentEnd returns where a segment from at with room for n entries
// ends — the start of the (n+1)-th entry, or maxPages if there are at most
// n — and how many entries it holds.
func (f *Freelist) segmentEnd(at page.ID, n int) (page.ID, int) {
	hi, seen := maxPages, 0
	f.ascendFrom(at, func(e Entry) bool {
		if seen == n {
			hi = e.ID
			return false
		}
		seen++
		return true
	})
	return hi, seen
}

// putSegment writes the entries of [at, hi) into b in increasing ID order
// (which lets Load check overlaps in one pass). It reports false if b is
// too small.
func (f *Freelist) putSegment(b []byte, at, hi page.ID) (int, bool) {
	n, ok := 0, true
	f.ascendFrom(at, func(e Entry) bool {
		if e.ID >= hi {
			return false
		}
		if len(b) < entrySize {
			ok = false
			return false
		}
		putEntry(b, e)
		b = b[entrySize:]
		n++
		return true
	})
	return n, ok
}

// superseded returns how many of the oldest live runs the state no longer
// needs once a run whose segment ends at hi, in the sweep whose first run
// is from, is the head: those whose range ends at or before hi, up to the
// first run of that sweep. (A segment that ends the file ends the sweep:
// every run before the sweep's first is superseded.)
func (f *Freelist) superseded(from page.TxID, hi page.ID) int {
	live := f.live()
	n := 0
	for n < len(live) && live[n].ref.TxID != from && live[n].hi <= hi {
		n++
	}
	return n
}

// freeRuns frees the n oldest live runs. They are read when a file is
// opened at the latest version or at its fallback, and copied by a
// reader's WriteTo — never read through a snapshot — so they are freed as
// if born by the previous commit, or by the oldest version a reader holds
// with its log (HoldLogs) if that is older: the fallback and the readers
// keep them, and a snapshot of an old version does not pin every run that
// was live at its time.
func (f *Freelist) freeRuns(n int) {
	born := f.txid - 1
	if f.logFloor != 0 && f.logFloor < born {
		born = f.logFloor
	}
	for _, l := range f.live()[:n] {
		f.Free(l.ref.ID, int(l.span), max(l.ref.TxID, born))
	}
}

func putOp(b []byte, o op) {
	le.PutUint64(b[0:], uint64(o.id))
	le.PutUint32(b[8:], o.span)
	le.PutUint32(b[12:], uint32(o.kind))
	le.PutUint64(b[16:], uint64(o.born))
}

func putEntry(b []byte, e Entry) {
	le.PutUint64(b[0:], uint64(e.ID))
	le.PutUint32(b[8:], e.Span)
	le.PutUint32(b[12:], 0)
	le.PutUint64(b[16:], uint64(e.Born))
	le.PutUint64(b[24:], uint64(e.Freed))
}

// allocRun places a run of span pages with alloc and checks that the
// allocation was logged here, exactly once, so the state records it.
func (f *Freelist) allocRun(alloc func(int) page.ID, span uint64) (page.ID, error) {
	if span > maxExtent {
		return 0, fmt.Errorf("freelist: run of %d pages is too large", span)
	}
	mark := len(f.log)
	id := alloc(int(span))
	if len(f.log) != mark+1 {
		return 0, errors.New("freelist: Persist's alloc must call Allocate of this Freelist exactly once")
	}
	if o := f.log[mark]; o.kind != opAlloc || o.id != id || uint64(o.span) != span {
		return 0, fmt.Errorf("freelist: Persist's alloc returned page %d, Allocate gave page %d", id, o.id)
	}
	return id, nil
}
