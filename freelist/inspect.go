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

// RunInfo is a free-space run (a delta or a checkpoint) as stored.
type RunInfo struct {
	Type page.Type
	// Prev is the previous run of the chain (deltas; zero: none).
	Prev page.Ref
	// ChainPages counts the pages of the chain from this run back to and
	// including the checkpoint (deltas).
	ChainPages uint64
	HWM        page.ID
	Count      uint64
	Ops        []Op    // deltas
	Entries    []Entry // checkpoints: free extents (Freed 0) and pending entries
	// UsedBytes is the part of the run its contents occupy.
	UsedBytes int
}

// DecodeRun decodes the free-space run run (header included). The error,
// wrapping page.ErrCorrupt, says what does not fit; the fields decoded
// before it are returned.
func DecodeRun(run []byte) (RunInfo, error) {
	var ri RunInfo
	if len(run) < page.HeaderSize+fixedSize {
		return ri, page.Corrupt(0, "freelist run too short (%d bytes)", len(run))
	}
	h := page.GetHeader(run)
	ri.Type = h.Type
	if h.Type != page.TypeFreeDelta && h.Type != page.TypeFreeCheckp {
		return ri, page.Corrupt(h.ID, "type is %v, want a freelist run", h.Type)
	}
	b := run[page.HeaderSize:]
	ri.Prev = page.GetRef(b[offPrev:])
	ri.ChainPages = le.Uint64(b[offChain:])
	ri.HWM = page.ID(le.Uint64(b[offHWM:]))
	ri.Count = le.Uint64(b[offCount:])
	size := opSize
	if h.Type == page.TypeFreeCheckp {
		size = entrySize
	}
	items := b[fixedSize:]
	n := ri.Count
	var err error
	if room := uint64(len(items) / size); n > room {
		err = page.Corrupt(h.ID, "freelist run claims %d items, room for %d", n, room)
		n = room
	}
	for i := uint64(0); i < n; i++ {
		it := items[i*uint64(size):]
		if h.Type == page.TypeFreeCheckp {
			ri.Entries = append(ri.Entries, getEntry(it))
			continue
		}
		o := getOp(it)
		kind := fmt.Sprintf("op(%d)", o.kind)
		switch o.kind {
		case opAlloc:
			kind = "alloc"
		case opFree:
			kind = "free"
		}
		ri.Ops = append(ri.Ops, Op{ID: o.id, Span: o.span, Kind: kind, Born: o.born})
	}
	ri.UsedBytes = page.HeaderSize + fixedSize + int(n)*size
	return ri, err
}
