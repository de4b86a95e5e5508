package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	Verified  bool
	VerifyErr error
}

// Valid reports whether the slot holds a meta that decodes and whose
// checksum holds.
func (s *MetaSlot) Valid() bool { return s.Err == nil }

// Metas is what the two slots say and what Open would do with them.
type Metas struct {
	Slots [2]MetaSlot
	// Current is the slot Open would use, -1 if Open would refuse the file.
	Current int
	// FallBack reports that Open would use an older meta than the newest
	// one (or than an unreadable slot); Reason says what failed.
	FallBack bool
	Reason   string
	// OpenErr is the reason Open would refuse the file (Current == -1).
	OpenErr error
}

// Meta returns the meta Open would use; ok is false if it would refuse.
func (ms *Metas) Meta() (m meta.Meta, ok bool) {
	if ms.Current < 0 {
		return meta.Meta{}, false
	}
	return ms.Slots[ms.Current].Raw, true
}

// Metas decodes both slots and replays Open's choice: newest valid meta
// first; it is used if the pages its commit wrote (references carrying
// its txid) and the free-space state verify; otherwise the other one is
// tried, and using it is a fallback. Cost: O(last commit + free-space
// state), as at open.
func (f *File) Metas() *Metas {
	ms := &Metas{Current: -1}
	for slot := range ms.Slots {
		ms.Slots[slot] = f.readMeta(page.ID(slot))
	}
	for _, s := range ms.Slots {
		if errors.Is(s.Err, meta.ErrVersion) {
			ms.OpenErr = fmt.Errorf("incompatible file: %v", s.Err)
			return ms
		}
	}
	order := []int{0, 1}
	s0, s1 := &ms.Slots[0], &ms.Slots[1]
	if s0.Valid() && (!s1.Valid() || s1.Raw.TxID > s0.Raw.TxID) {
		order = []int{1, 0}
	}
	var why []string
	for _, slot := range order {
		s := &ms.Slots[slot]
		if !s.Valid() {
			why = append(why, s.Err.Error())
			continue
		}
		s.VerifyErr = f.verify(s.Raw)
		if s.VerifyErr != nil {
			why = append(why, fmt.Sprintf("meta slot %d (tx %d): %v", slot, s.Raw.TxID, s.VerifyErr))
			continue
		}
		s.Verified = true
		if ms.Current < 0 {
			ms.Current = slot
			ms.FallBack = len(why) > 0
			ms.Reason = strings.Join(why, "; ")
		}
	}
	if ms.Current < 0 {
		if len(why) == 0 {
			why = append(why, "no meta page")
		}
		ms.OpenErr = fmt.Errorf("no usable meta: %s", why[0])
		ms.Reason = strings.Join(why, "; ")
	}
	return ms
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

// verify is Open's check of the commit m: the high-water mark lies within
// the file, every page whose reference carries m's txid (in the bucket
// catalog's trees and the snapshot catalog) verifies, and the free-space
// state loads and agrees on the high-water mark.
func (f *File) verify(m meta.Meta) error {
	if m.PageSize != f.ps {
		return fmt.Errorf("meta page size %d, file decoded at %d", m.PageSize, f.ps)
	}
	if end := uint64(m.HWM) * uint64(f.ps); end > uint64(f.size) || uint64(m.HWM) > 1<<48 {
		return page.Corrupt(page.ID(m.HWM-1), "high-water mark %d pages lies past the end of the file (%d bytes)", m.HWM, f.size)
	}
	s := &store{f: f, hwm: m.HWM}
	w := &btree.Walker{Store: s, Follow: func(r page.Ref) bool { return r.TxID == m.TxID }}
	if err := w.Walk(m.Root); err != nil {
		return err
	}
	if err := w.Walk(m.Snapshots); err != nil {
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
