package meta

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// Magic identifies a cowfile file ("COWF" in the file's bytes).
const Magic uint32 = 0x46574f43

// Version is the current format version. Bump it whenever the bytes the
// writer produces change meaning; golden files in testdata/ pin each one.
const Version uint32 = 4

// MinVersion is the oldest format version this build reads. Format 1
// persisted the free space as deltas and checkpoints; format 2 as sweep
// runs (docs/FORMAT.md, "Free space"); format 3 adds heads to branch and
// leaf pages (docs/FORMAT.md, "Heads"), flagged per page, so the pages of
// older formats stay readable in a file the writer has moved on; format 4
// adds commit records (Next, Prev, Chain: docs/FORMAT.md, "Commit
// records"). All four open; the writer writes 4.
const MinVersion uint32 = 1

// MaxChain is the most commit records one version may hold in use (see
// Meta.Chain). It keeps a meta's fields in its first 512 bytes, the
// smallest sector a device writes whole, so the filler covers every other
// sector (see fill).
const MaxChain = 32

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
	// Format 4.
	offNext     = offHWM + 8      // u64
	offPrev     = offNext + 8     // u64
	offChainLen = offPrev + 8     // u32
	offSplit    = offChainLen + 4 // u32
	offChain    = offSplit + 4    // MaxChain × u64
	// Size is the number of meta bytes that carry fields; the rest of the
	// page is filler (see fill), covered by the checksum. A meta of format
	// 1 to 3 ends its fields at sizeV3.
	Size   = offChain + 8*MaxChain
	sizeV3 = offHWM + 8
)

// Flags.
const (
	// FlagClean marks a meta written by a clean Close: nothing was in flight,
	// so rot in the last commit must be reported, not fallen back from
	// (WroteRef).
	FlagClean uint32 = 1 << 0
	// FlagRecord marks a commit record: a meta written beside its commit's
	// pages, at the page its predecessor reserved, instead of in a slot.
	FlagRecord uint32 = 1 << 1
	// FlagRecorded marks a meta slot whose commit also wrote its meta as a
	// commit record, at the last page of its chain: Open verifies that
	// record with the commit, as it is one of the commit's writes.
	FlagRecorded uint32 = 1 << 2
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

	// Format 4: commit records (docs/FORMAT.md, "Commit records"). Next
	// is the page the next commit writes its meta to, as a commit record
	// in the same run as its pages (0: none; free in this version). Prev is
	// the Link of the commit this one follows. Chain lists, oldest first,
	// the pages of the commit records in use in this version: those a walk
	// from either meta slot reads. Chain[:Split] were written up to the
	// newest meta slot; the next commit that writes a slot frees them.
	Next     page.ID
	Prev     uint64
	ChainLen int
	Split    int
	Chain    [MaxChain]page.ID
}

// FieldsSize returns how many bytes of a meta page of format version v
// carry fields; the filler follows them.
func FieldsSize(v uint32) int {
	if v >= 4 {
		return Size
	}
	return sizeV3
}

// ChainPages returns the pages holding commit records in use in m.
func (m *Meta) ChainPages() []page.ID { return m.Chain[:m.ChainLen] }

// WroteRef reports whether reference r was written by m's commit, so that
// Open verifies the page it names before it uses m. Never for a meta a
// clean Close wrote: nothing was in flight, so damage to the last commit
// is not a torn commit to fall back from but rot, which reads and Check
// report naming the page.
func (m *Meta) WroteRef(r page.Ref) bool { return m.Flags&FlagClean == 0 && r.TxID == m.TxID }

// IsRecord reports whether m is a commit record, not a meta slot's.
func (m *Meta) IsRecord() bool { return m.Flags&FlagRecord != 0 }

// Page returns the page m is written to: its slot, or its record's page.
func (m *Meta) Page() page.ID {
	if m.IsRecord() {
		return m.Chain[m.ChainLen-1]
	}
	return Slot(m.TxID)
}

// Slot returns the meta slot (page id) that commit txid writes.
func Slot(txid page.TxID) page.ID { return page.ID(txid % 2) }

// Encode writes m as a complete, sealed meta page into b (len(b) must be
// the page size) for slot Slot(m.TxID), and returns its checksum.
func (m Meta) Encode(b []byte) uint64 { return m.encode(b, Slot(m.TxID)) }

// EncodeRecord writes m as a commit record for page at: a meta page that
// names its own page instead of a slot. It returns its checksum.
func (m Meta) EncodeRecord(b []byte, at page.ID) uint64 { return m.encode(b, at) }

func (m Meta) encode(b []byte, at page.ID) uint64 {
	clear(b)
	page.PutHeader(b, page.Header{ID: at, TxID: m.TxID, Type: page.TypeMeta, Span: 1})
	binary.LittleEndian.PutUint32(b[offMagic:], Magic)
	binary.LittleEndian.PutUint32(b[offVersion:], Version)
	binary.LittleEndian.PutUint32(b[offPageSize:], uint32(m.PageSize))
	binary.LittleEndian.PutUint32(b[offFlags:], m.Flags)
	page.PutRef(b[offRoot:], m.Root)
	page.PutRef(b[offFreelist:], m.Freelist)
	page.PutRef(b[offSnapshots:], m.Snapshots)
	binary.LittleEndian.PutUint64(b[offHWM:], uint64(m.HWM))
	binary.LittleEndian.PutUint64(b[offNext:], uint64(m.Next))
	binary.LittleEndian.PutUint64(b[offPrev:], m.Prev)
	binary.LittleEndian.PutUint32(b[offChainLen:], uint32(m.ChainLen))
	binary.LittleEndian.PutUint32(b[offSplit:], uint32(m.Split))
	for i, id := range m.ChainPages() {
		binary.LittleEndian.PutUint64(b[offChain+8*i:], uint64(id))
	}
	fill(b[Size:], m.TxID)
	return page.Seal(b)
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

// Decode checks and decodes the meta at page slot, whose bytes are b
// (len(b) is the page size the caller believes): a meta slot (page 0 or 1)
// or, at any other page, a commit record. Errors wrap page.ErrCorrupt, or
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
	m, n, split := fields(b)
	m.TxID = h.TxID
	if m.Version < MinVersion || m.Version > Version {
		return m, fmt.Errorf("%w: format version %d, this build reads %d to %d", ErrVersion, m.Version, MinVersion, Version)
	}
	if n > MaxChain {
		return m, page.Corrupt(slot, "%d commit records in use, at most %d", n, MaxChain)
	}
	if split > n {
		return m, page.Corrupt(slot, "split %d past the %d commit records", split, n)
	}
	if m.HWM < 2 {
		return m, page.Corrupt(slot, "high-water mark %d below the meta pages", m.HWM)
	}
	if err := m.checkPlace(slot); err != nil {
		return m, err
	}
	for _, r := range []page.Ref{m.Root, m.Freelist, m.Snapshots} {
		if !r.IsZero() && (r.ID < 2 || r.ID >= m.HWM || r.TxID > m.TxID) {
			return m, page.Corrupt(slot, "reference to %v outside the file or from the future", r)
		}
	}
	return m, nil
}

// checkPlace checks that m belongs where it was read: a meta in its
// txid's slot, a record at the last page of its chain; that the chain's
// pages lie in the file and repeat none; and that the next record's page
// is not one of them.
func (m *Meta) checkPlace(at page.ID) error {
	if at < 2 {
		if Slot(m.TxID) != at {
			return page.Corrupt(at, "meta of tx %d found in slot %d", m.TxID, at)
		}
		if m.Flags&FlagRecord != 0 || m.Flags&FlagRecorded != 0 && m.ChainLen == 0 {
			return page.Corrupt(at, "meta slot holds a commit record, or names one it does not list")
		}
	} else if m.Version < 4 || m.Flags&(FlagRecord|FlagRecorded) != FlagRecord || m.ChainLen == 0 || m.Chain[m.ChainLen-1] != at {
		return page.Corrupt(at, "commit record of tx %d does not list its own page last", m.TxID)
	}
	chain := m.ChainPages()
	for i, id := range chain {
		if id < 2 || id >= m.HWM || slices.Contains(chain[:i], id) {
			return page.Corrupt(at, "commit record page %d outside the file or listed twice", id)
		}
	}
	if m.Next != 0 && (m.Next < 2 || m.Next > m.HWM || slices.Contains(chain, m.Next)) {
		return page.Corrupt(at, "next commit record's page %d outside the file or in use", m.Next)
	}
	return nil
}

// ErrVersion reports a file whose format version this build cannot read.
var ErrVersion = fmt.Errorf("cowfile: unsupported format version")
