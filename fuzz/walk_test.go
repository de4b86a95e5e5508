package fuzz

import (
	"encoding/binary"
	"fmt"

	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// An independent reader of the file format (docs/FORMAT.md), used by the
// harness to know which pages a version reaches (the live assertion that no
// write touches them) and to re-seal mutated files. It shares nothing with
// the engine's tree code but the page header codec.

const (
	leafElem   = 8
	branchElem = 28
	kindBucket = 1
	// Format 3: a flagged page has heads (2 bytes per leaf element, 4 per
	// branch element) after its elements, then the prefix length (u16).
	flagHeads  = 1
	leafHead   = 2
	branchHead = 4
	kindLarge  = 2
	snapRecLen = page.RefSize + 16 // snapshot catalog record: root Ref, txid, created
)

// decodeMetas decodes every meta of img at page size ps that Open can
// read: the two meta slots and the commit records chained after each
// (meta.Follow), with the slot whose walk found each. broken reports what
// Open must report as a fallback when it recovers version txid: a slot
// that does not decode, or a walk that stopped at a damaged commit record
// of a later commit.
func decodeMetas(img []byte, ps int) (ms []foundMeta, damaged func(txid uint64) bool) {
	read := func(id page.ID) []byte {
		off := uint64(id) * uint64(ps)
		if id >= 1<<48 || off+uint64(ps) > uint64(len(img)) {
			return nil
		}
		return img[off : off+uint64(ps)]
	}
	invalid := false
	var stops []page.TxID
	for slot := 0; slot < 2; slot++ {
		b := read(page.ID(slot))
		m, err := meta.Decode(b, page.ID(slot))
		if b == nil || err != nil {
			invalid = true
			continue
		}
		ms = append(ms, foundMeta{Meta: m, slot: slot})
		w := meta.Follow(m, read)
		for _, r := range w.Records {
			ms = append(ms, foundMeta{Meta: r, slot: slot})
		}
		if w.Damaged != nil {
			stops = append(stops, w.DamagedTxID)
		}
	}
	return ms, func(txid uint64) bool {
		for _, s := range stops {
			if uint64(s) > txid {
				return true
			}
		}
		return invalid
	}
}

// foundMeta is a meta decodeMetas found, and the meta slot its chain of
// commit records starts from.
type foundMeta struct {
	meta.Meta
	slot int
}

// findMeta returns the meta of commit txid in img, or nil; found from
// both meta slots, the one found from the newer slot, which is the slot
// the engine keeps (a commit that writes a slot writes the other one).
func findMeta(img []byte, ps int, txid uint64) *foundMeta {
	ms, _ := decodeMetas(img, ps)
	slotTx := map[int]page.TxID{}
	for _, m := range ms {
		if !m.IsRecord() && m.Page() < 2 {
			slotTx[m.slot] = m.TxID
		}
	}
	var best *foundMeta
	for i := range ms {
		m := &ms[i]
		if uint64(m.TxID) == txid && (best == nil || slotTx[m.slot] > slotTx[best.slot]) {
			best = m
		}
	}
	return best
}

// pageRun returns the run at id, as long as its header's span says, or an
// error if it does not fit in img.
func pageRun(img []byte, ps int, id page.ID) ([]byte, page.Header, error) {
	off := uint64(id) * uint64(ps)
	if id < 2 || off+uint64(ps) > uint64(len(img)) {
		return nil, page.Header{}, fmt.Errorf("page %d outside the file", id)
	}
	h := page.GetHeader(img[off:])
	end := off + uint64(h.Span)*uint64(ps)
	if h.Span == 0 || end > uint64(len(img)) {
		return nil, h, fmt.Errorf("page %d: run of %d pages outside the file", id, h.Span)
	}
	return img[off:end], h, nil
}

// reach returns every page the version m reaches: its trees (bucket
// catalog, buckets, large values, snapshot catalog and the versions it
// pins) and its free-space log. Pages are counted once per run page.
func reach(img []byte, ps int, m *meta.Meta) (map[page.ID]bool, error) {
	runs, err := reachRuns(img, ps, m)
	seen := make(map[page.ID]bool, len(runs))
	for id := range runs {
		seen[id] = true
	}
	return seen, err
}

// reachRuns is reach, mapping every page to the first page of its run.
//
// A page reached twice within one version is an error. Versions share
// pages (copy-on-write): the latest version and the snapshots' versions
// are walked one after the other, and a run an earlier one already
// reached is not walked again (its bytes, so its subtree, are the same).
func reachRuns(img []byte, ps int, m *meta.Meta) (map[page.ID]page.ID, error) {
	seen := map[page.ID]page.ID{}
	mine := map[page.ID]bool{} // the pages of the version being walked
	var snapRoots []page.Ref
	// mark records the run at id; shared reports that an earlier version
	// reached it already.
	mark := func(id page.ID, span uint32) (shared bool, err error) {
		if first, ok := seen[id]; ok && first == id && !mine[id] {
			return true, nil
		}
		for i := page.ID(0); i < page.ID(span); i++ {
			if _, dup := seen[id+i]; dup {
				return false, fmt.Errorf("page %d reached twice", id+i)
			}
			seen[id+i] = id
			mine[id+i] = true
		}
		return false, nil
	}
	var tree func(r page.Ref, depth int, snaps bool) error
	tree = func(r page.Ref, depth int, snaps bool) error {
		if r.IsZero() {
			return nil
		}
		if depth > 100 {
			return fmt.Errorf("page %d: tree too deep", r.ID)
		}
		run, h, err := pageRun(img, ps, r.ID)
		if err != nil {
			return err
		}
		if shared, err := mark(r.ID, h.Span); err != nil || shared {
			return err
		}
		n := int(h.Count)
		switch h.Type {
		case page.TypeBranch:
			if page.HeaderSize+n*branchElem > len(run) {
				return fmt.Errorf("page %d: bad count", r.ID)
			}
			for i := 0; i < n; i++ {
				if err := tree(page.GetRef(run[page.HeaderSize+i*branchElem:]), depth+1, snaps); err != nil {
					return err
				}
			}
		case page.TypeLeaf:
			if page.HeaderSize+n*leafElem > len(run) {
				return fmt.Errorf("page %d: bad count", r.ID)
			}
			for i := 0; i < n; i++ {
				e := run[page.HeaderSize+i*leafElem:]
				off := int(binary.LittleEndian.Uint16(e[0:]))
				ks := int(binary.LittleEndian.Uint16(e[2:]))
				vs := int(binary.LittleEndian.Uint16(e[4:]))
				if off+ks+vs > len(run) {
					return fmt.Errorf("page %d: element %d outside the page", r.ID, i)
				}
				v := run[off+ks : off+ks+vs]
				var err error
				switch {
				case e[6] == kindBucket && vs >= page.RefSize:
					err = tree(page.GetRef(v), 0, false)
				case e[6] == kindLarge && vs >= page.RefSize:
					lr := page.GetRef(v)
					var lh page.Header
					if _, lh, err = pageRun(img, ps, lr.ID); err == nil {
						_, err = mark(lr.ID, lh.Span)
					}
				case snaps && e[6] == 0 && vs == snapRecLen:
					// A snapshot: its version is walked after this one.
					snapRoots = append(snapRoots, page.GetRef(v))
				}
				if err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("page %d: type %v in a tree", r.ID, h.Type)
		}
		return nil
	}
	if err := tree(m.Root, 0, false); err != nil {
		return seen, err
	}
	if err := tree(m.Snapshots, 0, true); err != nil {
		return seen, err
	}
	var base page.TxID
	for r, hops := m.Freelist, 0; !r.IsZero(); hops++ {
		run, h, err := pageRun(img, ps, r.ID)
		if err != nil {
			return seen, err
		}
		if hops > 1<<20 {
			return seen, fmt.Errorf("free-space chain does not end")
		}
		if _, err := mark(r.ID, h.Span); err != nil {
			return seen, err
		}
		// A sweep run goes back to the base its head names; a delta of
		// format 1 to its checkpoint.
		if hops == 0 && h.Type == page.TypeFreeSweep {
			base = page.TxID(binary.LittleEndian.Uint64(run[page.HeaderSize+page.RefSize:]))
		}
		if h.Type == page.TypeFreeCheckp || h.Type == page.TypeFreeSweep && h.TxID <= base {
			break
		}
		r = page.GetRef(run[page.HeaderSize:])
	}
	for _, r := range snapRoots {
		mine = map[page.ID]bool{}
		if err := tree(r, 0, false); err != nil {
			return seen, err
		}
	}
	return seen, nil
}

// reseal recomputes, bottom-up from both metas, every checksum and every
// reference to it, so that a mutated file passes the Merkle checks and the
// engine's structural checks are what judge it. Cycles and out-of-range
// references are left as they are.
func reseal(img []byte) {
	ps, ok := meta.PeekPageSize(img)
	if !ok {
		for s := page.MinSize; s <= page.MaxSize && !ok; s *= 2 {
			if len(img) >= 2*s {
				if p, good := meta.PeekPageSize(img[s:]); good && p == s {
					ps, ok = s, true
				}
			}
		}
		if !ok {
			return
		}
	}
	npages := page.ID(len(img) / ps)
	state := map[page.ID]uint8{} // 1: being sealed, 2: done
	var fix func(r []byte, depth int)
	var seal func(id page.ID, depth int) (page.Header, bool)
	// fix points the reference encoded at r at its target's current
	// checksum and txid, sealing the target first.
	fix = func(r []byte, depth int) {
		ref := page.GetRef(r)
		if ref.IsZero() {
			return
		}
		if h, ok := seal(ref.ID, depth+1); ok {
			ref.Checksum, ref.TxID = h.Checksum, h.TxID
			page.PutRef(r, ref)
		}
	}
	seal = func(id page.ID, depth int) (page.Header, bool) {
		if id < 2 || id >= npages || depth > 200 {
			return page.Header{}, false
		}
		off := int(id) * ps
		if state[id] != 0 { // done, or a cycle: use what is there
			return page.GetHeader(img[off:]), true
		}
		state[id] = 1
		h := page.GetHeader(img[off:])
		span := page.ID(max(h.Span, 1))
		if span > npages-id {
			span = npages - id
		}
		run := img[off : off+int(span)*ps]
		n := int(h.Count)
		switch h.Type {
		case page.TypeBranch:
			for i := 0; i < n && page.HeaderSize+(i+1)*branchElem <= len(run); i++ {
				fix(run[page.HeaderSize+i*branchElem:], depth)
			}
		case page.TypeLeaf:
			for i := 0; i < n && page.HeaderSize+(i+1)*leafElem <= len(run); i++ {
				e := run[page.HeaderSize+i*leafElem:]
				off := int(binary.LittleEndian.Uint16(e[0:]))
				ks := int(binary.LittleEndian.Uint16(e[2:]))
				vs := int(binary.LittleEndian.Uint16(e[4:]))
				if vs >= page.RefSize && off+ks+vs <= len(run) && (e[6] != 0 || vs == snapRecLen) {
					fix(run[off+ks:], depth)
				}
			}
		case page.TypeFreeDelta, page.TypeFreeSweep:
			if len(run) >= page.HeaderSize+page.RefSize {
				fix(run[page.HeaderSize:], depth)
			}
		}
		page.Seal(run)
		state[id] = 2
		return page.GetHeader(run), true
	}
	for slot := 0; slot < 2 && (slot+1)*ps <= len(img); slot++ {
		mp := img[slot*ps : (slot+1)*ps]
		for _, at := range []int{48, 72, 96} { // root, free-space log, snapshots
			fix(mp[at:], 0)
		}
		page.Seal(mp)
	}
}
