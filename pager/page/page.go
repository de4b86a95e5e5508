package page

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// ID is a page number: its byte offset is ID * page size.
type ID uint64

// TxID is a transaction (commit) number. Version T is the state after commit T.
type TxID uint64

// Type says what a page holds.
type Type uint8

const (
	TypeMeta       Type = 1 // one of the two meta slots (pages 0 and 1)
	TypeBranch     Type = 2 // B+tree interior node
	TypeLeaf       Type = 3 // B+tree leaf
	TypeValue      Type = 4 // a large value stored out of line
	TypeFreeDelta  Type = 5 // one commit's free-space changes (format 1)
	TypeFreeCheckp Type = 6 // a full copy of the free-space state (format 1)
	TypeFreeSweep  Type = 7 // one commit's free-space changes and a segment of the state
)

func (t Type) String() string {
	switch t {
	case TypeMeta:
		return "meta"
	case TypeBranch:
		return "branch"
	case TypeLeaf:
		return "leaf"
	case TypeValue:
		return "value"
	case TypeFreeDelta:
		return "free-delta"
	case TypeFreeCheckp:
		return "free-checkpoint"
	case TypeFreeSweep:
		return "free-sweep"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// HeaderSize is the size of the header at the start of every page.
const HeaderSize = 32

// RefSize is the encoded size of a Ref.
const RefSize = 24

// Size limits for pages, in bytes.
const (
	MinSize     = 1 << 10
	MaxSize     = 1 << 16
	DefaultSize = 4096
)

// ErrCorrupt is the sentinel every corruption error wraps, at every layer.
var ErrCorrupt = errors.New("cowfile: corrupt")

// ValidSize reports whether n is a supported page size.
func ValidSize(n int) bool {
	return n >= MinSize && n <= MaxSize && n&(n-1) == 0
}

// Header is the decoded page header.
type Header struct {
	Checksum uint64
	ID       ID
	TxID     TxID
	Type     Type
	Flags    uint8
	Count    uint16
	Span     uint32
}

// PutHeader encodes h into the first HeaderSize bytes of b.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint64(b[0:], h.Checksum)
	binary.LittleEndian.PutUint64(b[8:], uint64(h.ID))
	binary.LittleEndian.PutUint64(b[16:], uint64(h.TxID))
	b[24] = byte(h.Type)
	b[25] = h.Flags
	binary.LittleEndian.PutUint16(b[26:], h.Count)
	binary.LittleEndian.PutUint32(b[28:], h.Span)
}

// GetHeader decodes the header at the start of b. b must hold HeaderSize bytes.
func GetHeader(b []byte) Header {
	_ = b[HeaderSize-1]
	return Header{
		Checksum: binary.LittleEndian.Uint64(b[0:]),
		ID:       ID(binary.LittleEndian.Uint64(b[8:])),
		TxID:     TxID(binary.LittleEndian.Uint64(b[16:])),
		Type:     Type(b[24]),
		Flags:    b[25],
		Count:    binary.LittleEndian.Uint16(b[26:]),
		Span:     binary.LittleEndian.Uint32(b[28:]),
	}
}

// Fast accessors used on hot read paths; b must hold a header.

// TypeOf returns the type byte of the page in b.
func TypeOf(b []byte) Type { return Type(b[24]) }

// CountOf returns the item count of the page in b.
func CountOf(b []byte) int { return int(binary.LittleEndian.Uint16(b[26:28])) }

// SpanOf returns the span (pages in the run) of the page in b.
func SpanOf(b []byte) uint32 { return binary.LittleEndian.Uint32(b[28:32]) }

// MatchesRef reports whether the header in b names r's page and carries
// r's checksum and txid: the per-read Merkle check, done on the raw bytes
// because it runs for every page of every lookup. CheckHeader and MatchRef
// say what is wrong when it fails.
func MatchesRef(b []byte, r Ref) bool {
	_ = b[HeaderSize-1]
	return ID(binary.LittleEndian.Uint64(b[8:])) == r.ID &&
		binary.LittleEndian.Uint64(b[0:]) == r.Checksum &&
		TxID(binary.LittleEndian.Uint64(b[16:])) == r.TxID
}

// Checksum computes the checksum of a page run: xxhash64 of everything but
// the checksum field itself.
func Checksum(run []byte) uint64 { return xxhash.Sum64(run[8:]) }

// Seal computes the checksum of run and stores it in the header. It returns
// the checksum so the caller can put it in the parent's reference.
func Seal(run []byte) uint64 {
	sum := Checksum(run)
	binary.LittleEndian.PutUint64(run[0:], sum)
	return sum
}

// Ref is a Merkle reference: a child's page id, the checksum stored in (and
// covering) the child, and the transaction that wrote it. A zero Ref means
// "nothing" (page 0 is a meta page and never a child).
type Ref struct {
	ID       ID
	Checksum uint64
	TxID     TxID
}

// IsZero reports whether r points at nothing.
func (r Ref) IsZero() bool { return r.ID == 0 }

func (r Ref) String() string {
	return fmt.Sprintf("page %d (tx %d, sum %016x)", r.ID, r.TxID, r.Checksum)
}

// PutRef encodes r into the first RefSize bytes of b.
func PutRef(b []byte, r Ref) {
	_ = b[RefSize-1]
	binary.LittleEndian.PutUint64(b[0:], uint64(r.ID))
	binary.LittleEndian.PutUint64(b[8:], r.Checksum)
	binary.LittleEndian.PutUint64(b[16:], uint64(r.TxID))
}

// GetRef decodes a Ref from the first RefSize bytes of b.
func GetRef(b []byte) Ref {
	_ = b[RefSize-1]
	return Ref{
		ID:       ID(binary.LittleEndian.Uint64(b[0:])),
		Checksum: binary.LittleEndian.Uint64(b[8:]),
		TxID:     TxID(binary.LittleEndian.Uint64(b[16:])),
	}
}

// Corrupt returns an error wrapping ErrCorrupt that names the page.
func Corrupt(id ID, format string, args ...any) error {
	return fmt.Errorf("%w: page %d: %s", ErrCorrupt, id, fmt.Sprintf(format, args...))
}

// SpanFor returns how many pages of size pageSize a run needs to hold
// HeaderSize+n bytes.
func SpanFor(n uint64, pageSize int) uint64 {
	return (HeaderSize + n + uint64(pageSize) - 1) / uint64(pageSize)
}

// CheckHeader verifies what can be verified of a run without its parent:
// that it names itself, has the expected type and a sane span. It does not
// hash the run (see VerifySum).
func CheckHeader(run []byte, id ID, want Type) (Header, error) {
	if len(run) < HeaderSize {
		return Header{}, Corrupt(id, "short page (%d bytes)", len(run))
	}
	h := GetHeader(run)
	if h.ID != id {
		return h, Corrupt(id, "page claims to be page %d (misdirected write?)", h.ID)
	}
	if want != 0 && h.Type != want {
		return h, Corrupt(id, "type is %v, want %v", h.Type, want)
	}
	if h.Span == 0 {
		return h, Corrupt(id, "span is 0")
	}
	return h, nil
}

// VerifySum checks the run's stored checksum against its contents.
func VerifySum(run []byte, id ID) error {
	stored := binary.LittleEndian.Uint64(run[0:8])
	if got := Checksum(run); got != stored {
		return Corrupt(id, "checksum mismatch: stored %016x, computed %016x", stored, got)
	}
	return nil
}

// MatchRef checks a run's header against the reference that led to it: the
// Merkle check that catches lost and stale writes, which a self-checksum
// alone cannot see.
func MatchRef(h Header, r Ref) error {
	if h.Checksum != r.Checksum {
		return Corrupt(r.ID, "checksum %016x differs from parent's reference %016x (lost or stale write?)", h.Checksum, r.Checksum)
	}
	if h.TxID != r.TxID {
		return Corrupt(r.ID, "written by tx %d, parent's reference says tx %d", h.TxID, r.TxID)
	}
	return nil
}
