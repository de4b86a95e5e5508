package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// MetaSlot is one meta slot as found in the file.
type MetaSlot struct {
	Slot page.ID
	// Raw holds the fields as stored, unverified (RawOK false: the page is
	// missing or too short to hold them).
	Raw   meta.Meta
	RawOK bool
	// StoredSum and ComputedSum are the page's checksum field and the
	// checksum of its contents.
	StoredSum, ComputedSum uint64
	// Err is nil when the meta is valid (meta.Decode accepts it).
	Err error
	// Verified reports whether the pages its commit wrote verify, as Open
	// checks them; VerifyErr says why not. Only valid metas are verified.
	// Tried reports that Open verifies it too: no meta before it in Open's
	// order verifies. One it does not try may be many commits older than
	// the meta used, and those commits free to reuse its pages.
	Verified  bool
	VerifyErr error
	Tried     bool
	// Walk is what Open's walk from a valid slot found (meta.Follow): the
	// commit records chained after its meta, oldest first, and the damaged
	// record the walk stopped at, if any.
	Walk meta.Walk
}

// Valid reports whether the slot holds a meta that decodes and whose
// checksum holds.
func (s *MetaSlot) Valid() bool { return s.Err == nil }

// Candidate is a meta Open may use: a valid meta slot's, or a commit
// record the walk from one found.
type Candidate struct {
	Meta meta.Meta
	// Slot is the meta slot whose walk found it (a slot's own meta: that
	// slot). The walks from both slots may find the same record.
	Slot page.ID
	// Follows is the txid of the meta a record follows in its walk (its
	// Prev is that meta's link); 0 for a slot's meta.
	Follows page.TxID
	// Duplicate reports the same commit as the candidate before it, found
	// by the other slot's walk: Open does not try it again.
	Duplicate bool
	// Tried reports that Open verifies it: it is no later in the order
	// than the one Open uses, and not a duplicate. Verified and VerifyErr
	// are the outcome.
	Tried     bool
	Verified  bool
	VerifyErr error
}

// Where names the page the candidate's meta was read from, as Open does
// in its reasons: "meta slot 1", "commit record at page 57".
func (c *Candidate) Where() string {
	if c.Meta.IsRecord() {
		return fmt.Sprintf("commit record at page %d", c.Meta.Page())
	}
	return fmt.Sprintf("meta slot %d", c.Meta.Page())
}

// Metas is what the two slots and the commit records chained after them
// say, and what Open would do with them.
type Metas struct {
	Slots [2]MetaSlot
	// Candidates lists every meta Open may use, in the order it tries
	// them: newest first, among equal txids those found from the newer
	// slot first.
	Candidates []Candidate
	// Used indexes Candidates: the meta Open would use; -1 if Open would
	// refuse the file.
	Used int
	// Current is the meta slot Open would reach the meta it uses from: the
	// slot holding it, or the slot whose walk found the commit record it
	// uses (the slot the next commit that writes a slot keeps). -1 if Open
	// would refuse the file.
	Current int
	// FallBack reports that Open would use an older meta than the newest
	// one (or than an unreadable slot, or a damaged commit record); Reason
	// says what failed.
	FallBack bool
	Reason   string
	// OpenErr is the reason Open would refuse the file (Current == -1).
	OpenErr error
}

// Meta returns the meta Open would use, a slot's or a commit record; ok
// is false if it would refuse.
func (ms *Metas) Meta() (m meta.Meta, ok bool) {
	if ms.Used < 0 {
		return meta.Meta{}, false
	}
	return ms.Candidates[ms.Used].Meta, true
}

// UsedCandidate returns the candidate Open would use, nil if it would
// refuse the file.
func (ms *Metas) UsedCandidate() *Candidate {
	if ms.Used < 0 {
		return nil
	}
	return &ms.Candidates[ms.Used]
}

// Records returns the commit records the walks found, each commit once,
// newest first.
func (ms *Metas) Records() []*Candidate {
	var rs []*Candidate
	for i := range ms.Candidates {
		if c := &ms.Candidates[i]; c.Meta.IsRecord() && !c.Duplicate {
			rs = append(rs, c)
		}
	}
	return rs
}

// Metas decodes both slots, walks the commit records chained after each
// and replays Open's choice: every meta found, newest first, is used if
// the pages its commit wrote (references carrying its txid) and the
// free-space state verify; otherwise the next is tried, and using it is a
// fallback. So is an unreadable slot, and a damaged commit record of a
// commit later than the one used. Both slots are verified, the one Open
// passes over too; a record later in the order than the one used is not.
// Cost: O(last commits + free-space state), as at open.
func (f *File) Metas() *Metas {
	ms := &Metas{Current: -1, Used: -1}
	for slot := range ms.Slots {
		ms.Slots[slot] = f.readMeta(page.ID(slot))
	}
	for _, s := range ms.Slots {
		if errors.Is(s.Err, meta.ErrVersion) {
			ms.OpenErr = fmt.Errorf("incompatible file: %v", s.Err)
			return ms
		}
	}
	// As Open orders them (meta.Candidates): unreadable slots first (so
	// they are reported), then the candidates.
	var raw [2]*meta.Meta
	for slot := range ms.Slots {
		if s := &ms.Slots[slot]; s.Valid() {
			raw[slot] = &s.Raw
		}
	}
	order := meta.SlotOrder(raw)
	var why []string
	for _, slot := range order {
		if s := &ms.Slots[slot]; !s.Valid() {
			why = append(why, s.Err.Error())
		}
	}
	cands, walks := meta.Candidates(raw, f.pageReader)
	for slot := range ms.Slots {
		ms.Slots[slot].Walk = walks[slot]
	}
	for _, c := range cands {
		ms.Candidates = append(ms.Candidates, Candidate{Meta: c.Meta, Slot: c.Slot, Follows: c.Follows, Duplicate: c.Duplicate})
	}
	for i := range ms.Candidates {
		c := &ms.Candidates[i]
		if c.Duplicate {
			continue
		}
		c.Tried = true
		c.VerifyErr = f.verify(c.Meta)
		if c.VerifyErr != nil {
			why = append(why, fmt.Sprintf("%s (tx %d): %v", c.Where(), c.Meta.TxID, c.VerifyErr))
			continue
		}
		c.Verified = true
		reasons, _ := meta.DamageLater(walks, order, c.Meta.TxID)
		why = append(why, reasons...)
		ms.Used, ms.Current = i, int(c.Slot)
		break
	}
	// The slots' own verdicts: Open's for a slot it tried; the other is
	// verified here too, as the slot table shows both.
	for slot := range ms.Slots {
		s := &ms.Slots[slot]
		if !s.Valid() {
			continue
		}
		c := ms.find(&s.Raw)
		if c == nil || !c.Tried {
			s.VerifyErr = f.verify(s.Raw)
		} else {
			s.Tried, s.VerifyErr = true, c.VerifyErr
		}
		s.Verified = s.VerifyErr == nil
	}
	if ms.Used < 0 {
		if len(why) == 0 {
			why = append(why, "no meta page")
		}
		ms.OpenErr = fmt.Errorf("no usable meta: %s", why[0])
	} else {
		ms.FallBack = len(why) > 0
	}
	ms.Reason = strings.Join(why, "; ")
	return ms
}

// ReachedFrom returns the meta slots whose walks find the commit c
// describes (a slot's own meta counts as found from it), in slot order.
func (ms *Metas) ReachedFrom(c *Candidate) []page.ID {
	var slots []page.ID
	for i := range ms.Candidates {
		if o := &ms.Candidates[i]; meta.SameCommit(&o.Meta, &c.Meta) && !slices.Contains(slots, o.Slot) {
			slots = append(slots, o.Slot)
		}
	}
	slices.Sort(slots)
	return slots
}

// find returns the candidate Open tries for the commit m, nil if none.
func (ms *Metas) find(m *meta.Meta) *Candidate {
	for i := range ms.Candidates {
		if c := &ms.Candidates[i]; !c.Duplicate && meta.SameCommit(&c.Meta, m) {
			return c
		}
	}
	return nil
}

// pageReader is meta.Follow's reader: nil for a page the file does not
// hold whole.
func (f *File) pageReader(id page.ID) []byte {
	b, err := f.ReadPages(id, 1)
	if err != nil || len(b) < f.ps {
		return nil
	}
	return b
}

// readMeta decodes one slot at the file's page size.
func (f *File) readMeta(slot page.ID) MetaSlot {
	s := MetaSlot{Slot: slot}
	b, err := f.ReadPages(slot, 1)
	if err != nil {
		s.Err = err
		return s
	}
	if len(b) < f.ps {
		s.Err = page.Corrupt(slot, "file too short for a %d-byte meta page", f.ps)
		return s
	}
	s.Raw, s.RawOK = meta.DecodeUnchecked(b)
	s.StoredSum, s.ComputedSum = binary.LittleEndian.Uint64(b), page.Checksum(b)
	m, err := meta.Decode(b, slot)
	if err != nil {
		s.Err = err
		return s
	}
	s.Raw = m
	return s
}

// Verify is Open's check of the commit m (a meta that decoded): the high-water mark lies within
// the file, every page whose reference carries m's txid (in the bucket
// catalog's trees and the snapshot catalog) verifies, the commit's own
// record does when a meta slot names one, and the free-space state loads
// and agrees on the high-water mark.
func (f *File) Verify(m meta.Meta) error { return f.verify(m) }

func (f *File) verify(m meta.Meta) error {
	if m.PageSize != f.ps {
		return fmt.Errorf("meta page size %d, file decoded at %d", m.PageSize, f.ps)
	}
	if end := uint64(m.HWM) * uint64(f.ps); end > uint64(f.size) || uint64(m.HWM) > 1<<48 {
		return page.Corrupt(page.ID(m.HWM-1), "high-water mark %d pages lies past the end of the file (%d bytes)", m.HWM, f.size)
	}
	s := &store{f: f, hwm: m.HWM}
	w := &btree.Walker{Store: s, Follow: m.WroteRef}
	if err := w.Walk(m.Root); err != nil {
		return err
	}
	// A walker of its own, as Open's: the two trees are checked apart.
	ws := &btree.Walker{Store: s, Follow: w.Follow}
	if err := ws.Walk(m.Snapshots); err != nil {
		return err
	}
	// A meta slot that says its commit wrote a record too: Open checks
	// that the record landed, as one of the commit's writes. (Verify may
	// be given a meta that never decoded, which may name no record.)
	if !m.IsRecord() && m.Flags&meta.FlagRecorded != 0 && m.ChainLen == 0 {
		return page.Corrupt(m.Page(), "meta of tx %d names a commit record it does not list", m.TxID)
	}
	if err := meta.CheckOwnRecord(&m, f.pageReader); err != nil {
		return err
	}
	fl, err := freelist.Load(m.Freelist, f.ps, s.readFree)
	if err != nil {
		return err
	}
	if fl.HWM() != m.HWM {
		return page.Corrupt(m.Freelist.ID, "free-space state says %d pages, meta says %d", fl.HWM(), m.HWM)
	}
	return nil
}
