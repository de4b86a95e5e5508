package meta

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/cowfile/cowfile/pager/page"
)

// Link identifies the commit m describes, wherever its meta is written: a
// hash of its txid, its references, high-water mark, Next and Prev. The
// commit record that follows m carries it as Prev, so a walk accepts only
// a record written by a commit that followed this very commit (Prev
// chains, so it follows the whole history since the chain began).
func Link(m *Meta) uint64 {
	var b [8 + 3*page.RefSize + 3*8]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(m.TxID))
	page.PutRef(b[8:], m.Root)
	page.PutRef(b[8+page.RefSize:], m.Freelist)
	page.PutRef(b[8+2*page.RefSize:], m.Snapshots)
	o := 8 + 3*page.RefSize
	binary.LittleEndian.PutUint64(b[o:], uint64(m.HWM))
	binary.LittleEndian.PutUint64(b[o+8:], uint64(m.Next))
	binary.LittleEndian.PutUint64(b[o+16:], m.Prev)
	return xxhash.Sum64(b[:])
}

// maxWalk bounds a walk: a chain from the older meta slot holds at most
// MaxChain records.
const maxWalk = MaxChain

// Follow returns the commit records that extend the meta m, oldest first.
// Each record lies at the page its predecessor reserved (Next), carries
// its predecessor's Link as Prev and a later txid. read returns the bytes
// of a page, or nil if the file does not hold it. The walk stops at the
// first page that is not such a record: the commit that would have written
// it never completed or never began, or that page has since been reused.
func Follow(m Meta, read func(id page.ID) []byte) Walk {
	var w Walk
	prev := m
	for len(w.Records) < maxWalk && prev.Next != 0 {
		b := read(prev.Next)
		if b == nil {
			break
		}
		r, err := Decode(b, prev.Next)
		if err == nil && r.Prev == Link(&prev) && r.TxID > prev.TxID && r.PageSize == prev.PageSize {
			w.Records = append(w.Records, r)
			prev = r
			continue
		}
		h := page.GetHeader(b)
		claims := h.Type == page.TypeMeta && h.ID == prev.Next && h.TxID > prev.TxID
		if names := len(b) >= Size && binary.LittleEndian.Uint64(b[offPrev:]) == Link(&prev); claims || names {
			// A page whose header claims a later record here, or whose
			// body names prev as its predecessor: either survives damage
			// to the other, so a record hit by one bit flip is reported.
			if err == nil {
				err = page.Corrupt(prev.Next, "commit record of tx %d does not follow tx %d", h.TxID, prev.TxID)
			}
			w.Damaged = fmt.Errorf("commit record after tx %d: %w", prev.TxID, err)
			w.DamagedTxID = h.TxID
			if !claims {
				w.DamagedTxID = prev.TxID + 1 // the header is the damage
			}
		}
		break
	}
	return w
}

// Walk is what Follow found.
type Walk struct {
	Records []Meta
	// Damaged is not nil when the page the walk stopped at claims, in its
	// header, to be a meta written there by commit DamagedTxID, later than
	// the last record, yet is not a record that follows it: the record of
	// a commit torn by a crash, rot in an acknowledged one — or, when
	// DamagedTxID is not later than the version Open uses, a page a later
	// commit reused after a commit without a record ended this chain. Open
	// reports the first two, as it reports a meta slot that does not
	// decode.
	Damaged     error
	DamagedTxID page.TxID
}

// CheckOwnRecord checks, for a meta slot flagged FlagRecorded, that its
// commit's record landed: the last page of its chain holds a record of
// the same commit (the same Link).
func CheckOwnRecord(m *Meta, read func(id page.ID) []byte) error {
	if m.IsRecord() || m.Flags&FlagRecorded == 0 {
		return nil
	}
	id := m.Chain[m.ChainLen-1]
	r, err := Decode(read(id), id)
	if err == nil && (r.TxID != m.TxID || Link(&r) != Link(m)) {
		err = page.Corrupt(id, "holds the record of tx %d, not of tx %d", r.TxID, m.TxID)
	}
	if err != nil {
		return fmt.Errorf("the commit's record: %w", err)
	}
	return nil
}

// CheckChain checks that every page m lists as a commit record in use
// holds a sound record of a commit no later than m: Open's walks from the
// meta slots read them. read is as for Follow.
func CheckChain(m *Meta, read func(id page.ID) []byte) error {
	for _, id := range m.ChainPages() {
		r, err := Decode(read(id), id)
		if err == nil && r.TxID > m.TxID {
			err = page.Corrupt(id, "commit record of tx %d in use in tx %d", r.TxID, m.TxID)
		}
		if err != nil {
			return fmt.Errorf("commit record in use: %w", err)
		}
	}
	return nil
}

// SameCommit reports whether a and b describe the same commit, wherever
// each was written (a slot and a record of one commit).
func SameCommit(a, b *Meta) bool { return a.TxID == b.TxID && Link(a) == Link(b) }

// Candidate is a meta Open may use: a slot's own meta or a record the walk
// from that slot found.
type Candidate struct {
	Meta
	// Slot is the meta slot whose walk found it, SlotTx that slot meta's
	// txid. Follows is the txid of the meta a record follows in its walk;
	// 0 for a slot's own meta.
	Slot    page.ID
	SlotTx  page.TxID
	Follows page.TxID
	// Duplicate: the same commit as the candidate before it, found by the
	// other slot's walk; Open does not try it again.
	Duplicate bool
}

// Candidates lists the metas Open tries, in the order it tries them:
// the valid slot metas of slots (nil for a slot that did not decode) and
// the records their walks find (walks[slot]), newest txid first, those
// found from the newer slot first among equals (the walk from the older
// slot passes the newer one's record: the chain runs on through meta slot
// commits).
func Candidates(slots [2]*Meta, read func(id page.ID) []byte) (cands []Candidate, walks [2]Walk) {
	for _, slot := range SlotOrder(slots) {
		s := slots[slot]
		if s == nil {
			continue
		}
		cands = append(cands, Candidate{Meta: *s, Slot: page.ID(slot), SlotTx: s.TxID})
		walks[slot] = Follow(*s, read)
		prev := s.TxID
		for _, r := range walks[slot].Records {
			cands = append(cands, Candidate{Meta: r, Slot: page.ID(slot), SlotTx: s.TxID, Follows: prev})
			prev = r.TxID
		}
	}
	slices.SortStableFunc(cands, func(a, b Candidate) int { return cmp.Compare(b.TxID, a.TxID) })
	for i := 1; i < len(cands); i++ {
		cands[i].Duplicate = SameCommit(&cands[i].Meta, &cands[i-1].Meta)
	}
	return cands, walks
}

// SlotOrder returns the slots in the order Open reports them: a slot that
// did not decode first, then the newer slot.
func SlotOrder(slots [2]*Meta) [2]int {
	if slots[0] != nil && (slots[1] == nil || slots[1].TxID > slots[0].TxID) {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}

// Dual reports whether the walks from both slots reach candidate i of
// cands: damage to either slot then loses no commit.
func Dual(cands []Candidate, i int) bool {
	c := &cands[i]
	for _, o := range cands {
		if o.Slot != c.Slot && SameCommit(&o.Meta, &c.Meta) {
			return true
		}
	}
	return false
}

// DamageLater returns, once each and in the slots' order, the damaged
// records the walks stopped at that a later commit than txid wrote — what
// Open reports when it uses txid — and the newest such commit's txid (0
// if none).
func DamageLater(walks [2]Walk, order [2]int, txid page.TxID) (reasons []string, newest page.TxID) {
	for _, slot := range order {
		w := walks[slot]
		if w.Damaged == nil || w.DamagedTxID <= txid {
			continue // none, or a page reused after the chain ended
		}
		// Both walks may stop at the same record: said once.
		if msg := w.Damaged.Error(); !slices.Contains(reasons, msg) {
			reasons = append(reasons, msg)
		}
		newest = max(newest, w.DamagedTxID)
	}
	return reasons, newest
}
