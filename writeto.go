package cowfile

import (
	"io"

	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// WriteTo writes a consistent copy of the version this transaction reads
// to w, as a complete cowfile file: a hot backup, taken while writers go
// on. The copy holds every page below the high-water mark; pages that are
// free in this version are copied as they are (they may hold bytes of later
// commits, which nothing in the copy references). The copy's two meta slots
// both describe this version, as txids T and T+1, so either can be used;
// if the version's meta was a commit record, they say so in slots, and
// reserve no page for a next record.
func (tx *Tx) WriteTo(w io.Writer) (int64, error) {
	if err := tx.check(false); err != nil {
		return 0, err
	}
	m, ps := tx.meta, tx.s.ps
	metas := make([]byte, 2*ps)
	for _, t := range []page.TxID{m.TxID, m.TxID + 1} {
		mm := m
		mm.TxID, mm.Flags, mm.Version = t, 0, meta.Version
		// No reserved page: records that later commits wrote into pages
		// free in this version are copied too, and a walk from a meta
		// naming this version's next page would take them for commits of
		// the copy. The records this version holds in use stay listed
		// (they are allocated in its free space), all before the split,
		// so the copy's first commit, which writes a slot, frees them.
		mm.Next, mm.Split = 0, mm.ChainLen
		slot := int(meta.Slot(t))
		mm.Encode(metas[slot*ps : (slot+1)*ps])
	}
	n, err := w.Write(metas)
	written := int64(n)
	if err != nil {
		return written, err
	}
	const chunk = 256 // pages per write
	for id := page.ID(2); id < m.HWM; id += chunk {
		end := min(id+chunk, m.HWM)
		b, err := tx.s.m.Bytes(int64(id)*int64(ps), int64(end-id)*int64(ps))
		if err != nil {
			return written, page.Corrupt(id, "unreadable while copying: %v", err)
		}
		n, err := w.Write(b)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}
