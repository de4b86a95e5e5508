package inspect

import (
	"encoding/binary"
	"fmt"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// PageDetail is one page decoded on its own.
type PageDetail struct {
	Info PageInfo // kind and status from the analysis
	// Bytes is the run as read: all its pages when the header's span fits
	// in the file, else the one page.
	Bytes  []byte
	Header page.Header
	// Continuation reports a later page of a multi-page run: it has no
	// header of its own (Info.Run is the run's first page).
	Continuation bool
	// SumChecked reports whether the checksum could be computed (the run
	// lies within the file); StoredSum and ComputedSum are then set.
	SumChecked             bool
	StoredSum, ComputedSum uint64
	// Problems found on the page itself.
	Problems []error
	// The decoded contents, by type.
	Elements []btree.Element   // branch and leaf
	Free     *freelist.RunInfo // free-space log runs
	Meta     *MetaSlot         // meta slots
	Record   *RecordDetail     // meta pages outside the slots: commit records
	// ValueLen is a large value's length, when the walk reached the run.
	ValueLen int
}

// RecordDetail is a commit record decoded: a meta page outside the slots.
type RecordDetail struct {
	// Raw holds the fields as stored, unverified (RawOK false: the page is
	// too short to hold them); once the record decodes, all of them,
	// format 4's included. Err is nil when it decodes (meta.Decode accepts
	// it at its page).
	Raw   meta.Meta
	RawOK bool
	Err   error
	// InUse reports that the version walked lists the page among its
	// commit records in use.
	InUse bool
	// Candidate is what Open makes of the record when a walk from a meta
	// slot reaches it; nil when none does (a record no longer in use, of a
	// commit that never completed, or damaged).
	Candidate *Candidate
}

// OK reports whether the page showed no problem. A page in free space or
// past the high-water mark whose header names another page is not one: it
// holds stale bytes or was never written. A page whose header names it is
// judged by its checks wherever it is (a damaged page of a dropped commit
// is free, and still damaged).
func (d *PageDetail) OK() bool {
	if d.Info.Problem != "" {
		return false
	}
	if (d.Info.Status == StatusFree || d.Info.Status == StatusUnused) && (d.Continuation || d.Header.ID != d.Info.ID) {
		return true
	}
	return len(d.Problems) == 0
}

// Page decodes page id. The error is for an id outside the file or a
// failed read; what is wrong with the page is in Problems.
func (a *Analysis) Page(id page.ID) (*PageDetail, error) {
	f := a.File
	if uint64(id) >= f.Pages() {
		return nil, fmt.Errorf("%s: page %d is past the end of the file (%d pages of %d bytes)", f.path, id, f.Pages(), f.ps)
	}
	d := &PageDetail{Info: a.Pages[id]}
	first, err := f.ReadPages(id, 1)
	if err != nil {
		return nil, err
	}
	d.Bytes = first
	if d.Info.Run != id && d.Info.Status != StatusFree {
		d.Continuation = true
		return d, nil
	}
	d.Header = page.GetHeader(first)
	h := d.Header
	if id < 2 {
		s := a.Metas.Slots[id]
		d.Meta = &s
		d.SumChecked, d.StoredSum, d.ComputedSum = true, s.StoredSum, s.ComputedSum
		if s.Err != nil {
			d.Problems = append(d.Problems, s.Err)
		}
		return d, nil
	}
	if h.ID != id {
		d.Problems = append(d.Problems, page.Corrupt(id, "page claims to be page %d (never written, stale, or a misdirected write)", h.ID))
		return d, nil
	}
	if h.Span == 0 {
		d.Problems = append(d.Problems, page.Corrupt(id, "span is 0"))
		return d, nil
	}
	if uint64(h.Span) > f.Pages()-uint64(id) {
		d.Problems = append(d.Problems, page.Corrupt(id, "run of %d pages runs past the end of the file", h.Span))
	} else {
		run, err := f.ReadPages(id, uint64(h.Span))
		if err != nil {
			return nil, err
		}
		d.Bytes = run
		d.SumChecked = true
		d.StoredSum, d.ComputedSum = binary.LittleEndian.Uint64(run), page.Checksum(run)
		if d.StoredSum != d.ComputedSum {
			d.Problems = append(d.Problems, page.Corrupt(id, "checksum mismatch: stored %016x, computed %016x", d.StoredSum, d.ComputedSum))
		}
	}
	switch h.Type {
	case page.TypeBranch, page.TypeLeaf:
		if err := btree.Validate(first, f.ps); err != nil {
			d.Problems = append(d.Problems, err)
		}
		els, err := btree.Elements(first)
		d.Elements = els
		if err != nil {
			d.Problems = append(d.Problems, err)
		}
	case page.TypeFreeDelta, page.TypeFreeCheckp, page.TypeFreeSweep:
		ri, err := freelist.DecodeRun(d.Bytes)
		d.Free = &ri
		if err != nil {
			d.Problems = append(d.Problems, err)
		}
	case page.TypeValue:
		if d.Info.Used > 0 {
			d.ValueLen = d.Info.Used - page.HeaderSize
		}
	case page.TypeMeta:
		d.Record = a.record(id, first)
		// A checksum mismatch is reported above already.
		if err := d.Record.Err; err != nil && (!d.SumChecked || d.StoredSum == d.ComputedSum) {
			d.Problems = append(d.Problems, err)
		}
	default:
		d.Problems = append(d.Problems, page.Corrupt(id, "unknown page type %d", h.Type))
	}
	return d, nil
}

// Value returns the bytes of a large value run's value, when its length is
// known.
func (d *PageDetail) Value() []byte {
	if d.ValueLen <= 0 || page.HeaderSize+d.ValueLen > len(d.Bytes) {
		return nil
	}
	return d.Bytes[page.HeaderSize : page.HeaderSize+d.ValueLen]
}

// record decodes the meta page b at id, outside the slots: a commit record.
func (a *Analysis) record(id page.ID, b []byte) *RecordDetail {
	r := &RecordDetail{}
	r.Raw, r.RawOK = meta.DecodeUnchecked(b)
	m, err := meta.Decode(b, id)
	if err != nil {
		r.Err = err
	} else {
		r.Raw = m
	}
	if a.Slot >= 0 {
		for _, c := range a.Meta.ChainPages() {
			r.InUse = r.InUse || c == id
		}
	}
	for i := range a.Metas.Candidates {
		c := &a.Metas.Candidates[i]
		if !c.Duplicate && c.Meta.IsRecord() && c.Meta.Page() == id && err == nil && meta.SameCommit(&c.Meta, &m) {
			r.Candidate = c
			break
		}
	}
	return r
}
