package freelist

import (
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Decoding for inspection tools (cowfile inspect, page). Load checks a run
// against the chain it belongs to; tools must also show a single run on
// its own, damaged or not, so DecodeRun checks every bound itself and
// never panics.

// Op is one logged change in a delta run.
type Op struct {
	ID   page.ID
	Span uint32
	Kind string // "alloc", "free", or "op(N)" for an unknown kind
	Born page.TxID
}

// RunInfo is a free-space run (a sweep run, or a delta or a checkpoint of
// format 1) as stored.
type RunInfo struct {
	Type page.Type
	// Prev is the previous run (sweep runs and deltas; zero: none).
	Prev page.Ref
	// Base is the txid of the oldest run the state loads from (sweep runs).
	Base page.TxID
	// ChainPages counts the pages of the chain from this run back to and
	// including the checkpoint (deltas of format 1).
	ChainPages uint64
	HWM        page.ID
	// Lo and Hi bound the range a sweep run's segment describes (Hi is
	// 2^48 for the end of the file).
	Lo, Hi page.ID
	// Count is the number of items: ops plus entries.
	Count   uint64
	Ops     []Op    // sweep runs and deltas
	Entries []Entry // sweep runs and checkpoints: free extents (Freed 0) and pending entries
	// UsedBytes is the part of the run its contents occupy.
	UsedBytes int
}

// DecodeRun decodes the free-space run run (header included). The error,
// wrapping page.ErrCorrupt, says what does not fit; the fields decoded
// before it are returned.
func DecodeRun(run []byte) (RunInfo, error) {
	var ri RunInfo
	if len(run) < page.HeaderSize+max(sweepFixed, v1Fixed) {
		return ri, page.Corrupt(0, "freelist run too short (%d bytes)", len(run))
	}
	h := page.GetHeader(run)
	ri.Type = h.Type
	if !IsRun(h.Type) {
		return ri, page.Corrupt(h.ID, "type is %v, want a freelist run", h.Type)
	}
	b := run[page.HeaderSize:]
	ri.Prev = page.GetRef(b[offPrev:])
	ri.HWM = page.ID(le.Uint64(b[offHWM:]))
	var nops, nents uint64
	items := b[v1Fixed:]
	switch h.Type {
	case page.TypeFreeSweep:
		sh := getSweepHead(b)
		ri.Base, ri.Lo, ri.Hi, nops, nents = sh.base, sh.lo, sh.hi, sh.nops, sh.nents
		items = b[sweepFixed:]
	case page.TypeFreeDelta:
		ri.ChainPages = le.Uint64(b[v1OffChain:])
		nops = le.Uint64(b[v1OffCount:])
	case page.TypeFreeCheckp:
		nents = le.Uint64(b[v1OffCount:])
	}
	ri.Count = nops + nents
	var err error
	if room := uint64(len(items) / opSize); nops > room {
		err = page.Corrupt(h.ID, "freelist run claims %d ops, room for %d", nops, room)
		nops, nents = room, 0
	}
	for i := uint64(0); i < nops; i++ {
		o := getOp(items[i*opSize:])
		kind := fmt.Sprintf("op(%d)", o.kind)
		switch o.kind {
		case opAlloc:
			kind = "alloc"
		case opFree:
			kind = "free"
		}
		ri.Ops = append(ri.Ops, Op{ID: o.id, Span: o.span, Kind: kind, Born: o.born})
	}
	used := nops * opSize
	if room := uint64(len(items)-int(used)) / entrySize; nents > room {
		err = page.Corrupt(h.ID, "freelist run claims %d entries, room for %d", nents, room)
		nents = room
	}
	for i := uint64(0); i < nents; i++ {
		ri.Entries = append(ri.Entries, getEntry(items[used+i*entrySize:]))
	}
	ri.UsedBytes = len(run) - len(items) + int(used+nents*entrySize)
	return ri, err
}
