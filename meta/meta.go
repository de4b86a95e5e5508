package meta

import (
	"encoding/binary"
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Magic identifies a cowfile file ("COWF" in the file's bytes).
const Magic uint32 = 0x46574f43

// Version is the current format version. Bump it whenever the bytes the
// writer produces change meaning; golden files in testdata/ pin each one.
const Version uint32 = 3

// MinVersion is the oldest format version this build reads. Format 1
// persisted the free space as deltas and checkpoints; format 2 as sweep
// runs (docs/FORMAT.md, "Free space"); format 3 adds heads to branch and
// leaf pages (docs/FORMAT.md, "Heads"), flagged per page, so the pages of
// older formats stay readable in a file the writer has moved on. All three
// open; the writer writes 3.
const MinVersion uint32 = 1

// Byte offsets of the meta fields, after the 32-byte page header.
const (
	offMagic     = page.HeaderSize // u32
	offVersion   = offMagic + 4    // u32
	offPageSize  = offVersion + 4  // u32
	offFlags     = offPageSize + 4 // u32
	offRoot      = offFlags + 4    // Ref
	offFreelist  = offRoot + page.RefSize
	offSnapshots = offFreelist + page.RefSize
	offHWM       = offSnapshots + page.RefSize // u64
	// Size is the number of meta bytes that carry fields; the rest of the
	// page is zero (and covered by the checksum).
	Size = offHWM + 8
)

// Flags.
const (
	// FlagClean marks a meta written by a clean Close: nothing was in flight,
	// so rot in the last commit must be reported, not fallen back from.
	FlagClean uint32 = 1 << 0
)

// Meta is one decoded meta slot.
type Meta struct {
	TxID      page.TxID
	PageSize  int
	Version   uint32
	Flags     uint32
	Root      page.Ref // bucket catalog tree
	Freelist  page.Ref // head of the free-space log
	Snapshots page.Ref // snapshot catalog tree (zero when none)
	HWM       page.ID  // pages in use: ids below are reachable, free or pending
}

// Slot returns the meta slot (page id) that commit txid writes.
func Slot(txid page.TxID) page.ID { return page.ID(txid % 2) }

// Encode writes m as a complete, sealed meta page into b (len(b) must be
// the page size) for slot Slot(m.TxID).
func (m Meta) Encode(b []byte) {
	clear(b)
	page.PutHeader(b, page.Header{ID: Slot(m.TxID), TxID: m.TxID, Type: page.TypeMeta, Span: 1})
	binary.LittleEndian.PutUint32(b[offMagic:], Magic)
	binary.LittleEndian.PutUint32(b[offVersion:], Version)
	binary.LittleEndian.PutUint32(b[offPageSize:], uint32(m.PageSize))
	binary.LittleEndian.PutUint32(b[offFlags:], m.Flags)
	page.PutRef(b[offRoot:], m.Root)
	page.PutRef(b[offFreelist:], m.Freelist)
	page.PutRef(b[offSnapshots:], m.Snapshots)
	binary.LittleEndian.PutUint64(b[offHWM:], uint64(m.HWM))
	fill(b[Size:], m.TxID)
	page.Seal(b)
}

// fill writes the filler of commit txid's meta after its fields: bytes
// that differ from every other txid's in every sector and are never all
// zero. A meta torn only after its fields (the fields' sector landed,
// another did not, or holds garbage) is invalid, and the commit it names
// is dropped at open. With zero padding, any later write of zeros over
// those sectors — the zero padding of the next meta written to the slot,
// a wipe, a device that zero-fills a sector it was writing — made the
// dropped meta valid again. A filler only txid's own meta carries cannot
// be completed by anything a later write or a device puts there.
func fill(b []byte, txid page.TxID) {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], uint64(txid)*0x9e3779b97f4a7c15^0x636f776669_6c6c^1<<63)
	for n := copy(b, w[:]); n < len(b); {
		n += copy(b[n:], b[:n])
	}
}

// Wipe fills b (a meta slot's page) with bytes that are not a meta and
// cannot complete one: every byte 0xff, so no magic and no filler.
func Wipe(b []byte) {
	for i := range b {
		b[i] = 0xff
	}
}

// PeekPageSize reads the page size a meta claims, before its checksum can
// be verified (the checksum covers a whole page). ok is false if b is too
// short, the magic is wrong or the size is unsupported.
func PeekPageSize(b []byte) (size int, ok bool) {
	if len(b) < Size || binary.LittleEndian.Uint32(b[offMagic:]) != Magic {
		return 0, false
	}
	size = int(binary.LittleEndian.Uint32(b[offPageSize:]))
	return size, page.ValidSize(size)
}

// Decode checks and decodes the meta in slot, whose page is b (len(b) is
// the page size the caller believes). Errors wrap page.ErrCorrupt, or
// ErrVersion for a format this code does not read.
func Decode(b []byte, slot page.ID) (Meta, error) {
	if len(b) < Size {
		return Meta{}, page.Corrupt(slot, "meta is %d bytes, need %d", len(b), Size)
	}
	if got := binary.LittleEndian.Uint32(b[offMagic:]); got != Magic {
		return Meta{}, page.Corrupt(slot, "bad magic %08x (not a cowfile file?)", got)
	}
	ps := int(binary.LittleEndian.Uint32(b[offPageSize:]))
	if ps != len(b) {
		return Meta{}, page.Corrupt(slot, "meta page size %d, read as %d", ps, len(b))
	}
	if err := page.VerifySum(b, slot); err != nil {
		return Meta{}, err
	}
	h, err := page.CheckHeader(b, slot, page.TypeMeta)
	if err != nil {
		return Meta{}, err
	}
	m := Meta{
		TxID:      h.TxID,
		PageSize:  ps,
		Version:   binary.LittleEndian.Uint32(b[offVersion:]),
		Flags:     binary.LittleEndian.Uint32(b[offFlags:]),
		Root:      page.GetRef(b[offRoot:]),
		Freelist:  page.GetRef(b[offFreelist:]),
		Snapshots: page.GetRef(b[offSnapshots:]),
		HWM:       page.ID(binary.LittleEndian.Uint64(b[offHWM:])),
	}
	if m.Version < MinVersion || m.Version > Version {
		return m, fmt.Errorf("%w: format version %d, this build reads %d to %d", ErrVersion, m.Version, MinVersion, Version)
	}
	if Slot(m.TxID) != slot {
		return m, page.Corrupt(slot, "meta of tx %d found in slot %d", m.TxID, slot)
	}
	if m.HWM < 2 {
		return m, page.Corrupt(slot, "high-water mark %d below the meta pages", m.HWM)
	}
	for _, r := range []page.Ref{m.Root, m.Freelist, m.Snapshots} {
		if !r.IsZero() && (r.ID < 2 || r.ID >= m.HWM || r.TxID > m.TxID) {
			return m, page.Corrupt(slot, "reference to %v outside the file or from the future", r)
		}
	}
	return m, nil
}

// ErrVersion reports a file whose format version this build cannot read.
var ErrVersion = fmt.Errorf("cowfile: unsupported format version")
