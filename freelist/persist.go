package freelist

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Body layout of both run types (after the page header), see
// docs/FORMAT.md, "Free space":
//
//	0  prev      Ref (24)  delta: the previous head (zero: none); checkpoint: zero
//	24 chain     u64       delta: pages in the chain from this run back to and
//	                       including the checkpoint; checkpoint: reserved (0)
//	32 hwm       u64       HWM after the transaction
//	40 count     u64       ops (delta) or entries (checkpoint)
//	48 items
const (
	offPrev   = 0
	offChain  = page.RefSize
	offHWM    = offChain + 8
	offCount  = offHWM + 8
	fixedSize = offCount + 8

	opSize    = 24 // id u64, span u32, kind u32, born u64
	entrySize = 32 // id u64, span u32, reserved u32, born u64, freed u64

	// minCheckpointChain is the fewest delta pages worth replacing by a
	// checkpoint; below it, replaying the chain at open costs nothing.
	minCheckpointChain = 64
)

var le = binary.LittleEndian

// Persist builds the run that persists the current transaction: normally
// one delta holding the transaction's ops. When the deltas since the last
// checkpoint hold more pages than a checkpoint of the whole state would
// (and at least minCheckpointChain), it writes a checkpoint instead and
// frees the old chain. Either way the cost is amortized O(ops of the
// transaction): a checkpoint is only written after as many pages of deltas.
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
	if f.wantCheckpoint(pageSize) {
		return f.persistCheckpoint(pageSize, alloc)
	}
	return f.persistDelta(pageSize, alloc)
}

func (f *Freelist) wantCheckpoint(pageSize int) bool {
	// Upper bound of the entries: the old chain runs become pending too.
	entries := uint64(f.free.len() + f.pending.len() + len(f.chain))
	ckpt := page.SpanFor(fixedSize+entrySize*entries, pageSize)
	if len(f.chain) > 0 && ckpt <= page.SpanFor(fixedSize+opSize*(uint64(len(f.log))+1), pageSize) {
		// No larger than this commit's delta, and it frees the old chain:
		// the pages of a small commit are then all freed by the next one,
		// leaving one extent for the commit after (see Allocate).
		return true
	}
	deltas := f.chainPages - f.ckptPages
	return deltas >= minCheckpointChain && deltas > ckpt
}

func (f *Freelist) persistDelta(pageSize int, alloc func(int) page.ID) ([][]byte, page.Ref, error) {
	nops := uint64(len(f.log)) + 1 // the run's own allocation is logged too
	span := page.SpanFor(fixedSize+opSize*nops, pageSize)
	id, err := f.allocRun(alloc, span)
	if err != nil {
		return nil, page.Ref{}, err
	}
	run := f.newRun(id, span, pageSize, page.TypeFreeDelta)
	b := run[page.HeaderSize:]
	page.PutRef(b[offPrev:], f.head())
	le.PutUint64(b[offChain:], f.chainPages+span)
	le.PutUint64(b[offHWM:], uint64(f.hwm))
	le.PutUint64(b[offCount:], uint64(len(f.log)))
	p := b[fixedSize:]
	for _, o := range f.log {
		putOp(p, o)
		p = p[opSize:]
	}
	return f.finish(run, id, span, false)
}

func putOp(b []byte, o op) {
	le.PutUint64(b[0:], uint64(o.id))
	le.PutUint32(b[8:], o.span)
	le.PutUint32(b[12:], uint32(o.kind))
	le.PutUint64(b[16:], uint64(o.born))
}

func (f *Freelist) persistCheckpoint(pageSize int, alloc func(int) page.ID) ([][]byte, page.Ref, error) {
	// The old chain is superseded: its runs are versions freed by this tx.
	// They are read when a file is opened at the latest version or at its
	// fallback, and copied by a reader's WriteTo — never read through a
	// snapshot — so they are freed as if born by the previous commit, or
	// by the oldest version a reader holds with its log (HoldLogs) if that
	// is older: the fallback and the readers keep them, and a snapshot of
	// an old version does not pin every chain run that was live at its time.
	born := f.txid - 1
	if f.logFloor != 0 && f.logFloor < born {
		born = f.logFloor
	}
	for _, l := range f.chain {
		f.Free(l.ref.ID, int(l.span), max(l.ref.TxID, born))
	}
	if f.err != nil {
		return nil, page.Ref{}, f.err
	}
	// The run's own allocation takes pages from the front of an extent or
	// from the end of the file: it never adds an entry, so n is enough.
	n := uint64(f.free.len() + f.pending.len())
	span := page.SpanFor(fixedSize+entrySize*n, pageSize)
	id, err := f.allocRun(alloc, span)
	if err != nil {
		return nil, page.Ref{}, err
	}
	run := f.newRun(id, span, pageSize, page.TypeFreeCheckp)
	b := run[page.HeaderSize:]
	le.PutUint64(b[offHWM:], uint64(f.hwm))
	count, ok := f.putEntries(b[fixedSize:])
	if !ok {
		return nil, page.Ref{}, errors.New("freelist: checkpoint entries outgrew their run")
	}
	le.PutUint64(b[offCount:], count)
	return f.finish(run, id, span, true)
}

// putEntries writes every free extent and pending entry into b in
// increasing ID order (which lets Load check overlaps in one pass and
// build its trees in O(n)). It reports false if b is too small.
func (f *Freelist) putEntries(b []byte) (uint64, bool) {
	fc, pc := f.free.first(), f.pending.first()
	var n uint64
	for fc.valid() || pc.valid() {
		var e Entry
		if !pc.valid() || (fc.valid() && fc.entry().ID < pc.entry().ID) {
			e = fc.entry()
			fc.next()
		} else {
			e = pc.entry()
			pc.next()
		}
		if len(b) < entrySize {
			return n, false
		}
		putEntry(b, e)
		b = b[entrySize:]
		n++
	}
	return n, true
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

func (f *Freelist) newRun(id page.ID, span uint64, pageSize int, t page.Type) []byte {
	run := make([]byte, span*uint64(pageSize))
	page.PutHeader(run, page.Header{ID: id, TxID: f.txid, Type: t, Span: uint32(span)})
	return run
}

// finish seals the run and remembers it as the head for Commit.
func (f *Freelist) finish(run []byte, id page.ID, span uint64, checkpoint bool) ([][]byte, page.Ref, error) {
	ref := page.Ref{ID: id, Checksum: page.Seal(run), TxID: f.txid}
	f.next = &link{ref: ref, span: uint32(span)}
	f.nextCheckpoint = checkpoint
	return [][]byte{run}, ref, nil
}
