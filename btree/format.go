package btree

import (
	"bytes"
	"encoding/binary"

	"github.com/cowfile/cowfile/pager/page"
)

// Page layouts (docs/FORMAT.md is the reference). After the 32-byte
// header, count elements, then the key and value bytes they point at.
//
// Leaf element, 8 bytes:  off u16 | ksize u16 | vsize u16 | kind u8 | 0 u8
// Branch element, 28 bytes: child Ref (24) | ksize u16 | off u16
//
// off is the byte offset of the key from the start of the page; a leaf's
// value follows its key. Offsets fit in 16 bits because pages are at most
// 64 KiB and an element's bytes start below the end of its page.
const (
	leafElemSize   = 8
	branchElemSize = 28
)

// Kind is what a leaf element's value holds.
type Kind uint8

const (
	KindValue  Kind = 0 // the value, inline
	KindBucket Kind = 1 // a BucketHeader: a nested tree
	KindLarge  Kind = 2 // a Ref (24) and a length u64 (8): the value's own run
)

const (
	bucketHeaderSize = page.RefSize + 8
	largeRefSize     = page.RefSize + 8
)

// MaxDepth bounds every descent, so a cycle in a corrupt file ends.
const MaxDepth = 64

// maxElem is the largest element (header + bytes) a page of this size
// takes: half its body, so any two elements fit on a page.
func maxElem(pageSize int) int { return (pageSize - page.HeaderSize) / 2 }

// MaxKeySize is the longest key a tree of this page size accepts: a branch
// element or a leaf element pointing at a large value must fit in maxElem.
func MaxKeySize(pageSize int) int {
	return maxElem(pageSize) - leafElemSize - largeRefSize
}

// MaxValueSize is the largest value (a run is counted in uint32 pages).
const MaxValueSize = 1<<31 - 1

// inline reports whether a value of vlen bytes under a key of klen bytes
// sits in the leaf.
func inline(pageSize, klen, vlen int) bool {
	return leafElemSize+klen+vlen <= maxElem(pageSize)
}

// BucketHeader is the value of a KindBucket element: the nested tree's
// root and the bucket's sequence counter.
type BucketHeader struct {
	Root     page.Ref
	Sequence uint64
}

// EncodeBucket returns the 32-byte encoding of h.
func EncodeBucket(h BucketHeader) []byte {
	b := make([]byte, bucketHeaderSize)
	page.PutRef(b, h.Root)
	binary.LittleEndian.PutUint64(b[page.RefSize:], h.Sequence)
	return b
}

// DecodeBucket decodes a bucket header (b was validated to be 32 bytes).
func DecodeBucket(b []byte) BucketHeader {
	return BucketHeader{Root: page.GetRef(b), Sequence: binary.LittleEndian.Uint64(b[page.RefSize:])}
}

func encodeLarge(r page.Ref, n uint64) []byte {
	b := make([]byte, largeRefSize)
	page.PutRef(b, r)
	binary.LittleEndian.PutUint64(b[page.RefSize:], n)
	return b
}

func decodeLarge(b []byte) (page.Ref, uint64) {
	return page.GetRef(b), binary.LittleEndian.Uint64(b[page.RefSize:])
}

// Accessors of validated pages. They do not check bounds beyond what Go
// does: Validate has already proven every offset in range.

func leafElem(p []byte, i int) (key, val []byte, kind Kind) {
	e := p[page.HeaderSize+i*leafElemSize:]
	off := int(binary.LittleEndian.Uint16(e[0:]))
	ks := int(binary.LittleEndian.Uint16(e[2:]))
	vs := int(binary.LittleEndian.Uint16(e[4:]))
	return p[off : off+ks : off+ks], p[off+ks : off+ks+vs : off+ks+vs], Kind(e[6])
}

func leafKey(p []byte, i int) []byte {
	e := p[page.HeaderSize+i*leafElemSize:]
	off := int(binary.LittleEndian.Uint16(e[0:]))
	ks := int(binary.LittleEndian.Uint16(e[2:]))
	return p[off : off+ks : off+ks]
}

func branchKey(p []byte, i int) []byte {
	e := p[page.HeaderSize+i*branchElemSize:]
	ks := int(binary.LittleEndian.Uint16(e[24:]))
	off := int(binary.LittleEndian.Uint16(e[26:]))
	return p[off : off+ks : off+ks]
}

func branchRef(p []byte, i int) page.Ref {
	return page.GetRef(p[page.HeaderSize+i*branchElemSize:])
}

func isLeaf(p []byte) bool { return page.TypeOf(p) == page.TypeLeaf }

// searchBranch returns the index of the child whose range holds key: the
// last element with a key <= key, or 0.
func searchBranch(p []byte, key []byte) int {
	lo, hi := 0, page.CountOf(p) // first index with branchKey > key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(branchKey(p, m), key) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 {
		lo--
	}
	return lo
}

// searchLeaf returns the index of the first element with a key >= key and
// whether it equals key.
func searchLeaf(p []byte, key []byte) (int, bool) {
	lo, hi := 0, page.CountOf(p)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(leafKey(p, m), key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < page.CountOf(p) && bytes.Equal(leafKey(p, lo), key)
}

// Validate proves that every element of a branch or leaf page points inside
// the page, that keys strictly increase, and that values of special kinds
// have their fixed sizes. It must run before any accessor above touches a
// page read from a file.
func Validate(p []byte, pageSize int) error {
	h := page.GetHeader(p)
	id := h.ID
	if h.Span != 1 || len(p) != pageSize {
		return page.Corrupt(id, "%v page spans %d pages", h.Type, h.Span)
	}
	n := int(h.Count)
	esz := leafElemSize
	if h.Type == page.TypeBranch {
		esz = branchElemSize
		if n == 0 {
			return page.Corrupt(id, "branch page with no children")
		}
	}
	dataStart := page.HeaderSize + n*esz
	if dataStart > len(p) {
		return page.Corrupt(id, "%d elements do not fit in the page", n)
	}
	var prev []byte
	for i := 0; i < n; i++ {
		e := p[page.HeaderSize+i*esz:]
		var off, ks, vs int
		if h.Type == page.TypeBranch {
			ks = int(binary.LittleEndian.Uint16(e[24:]))
			off = int(binary.LittleEndian.Uint16(e[26:]))
			if r := page.GetRef(e); r.ID < 2 {
				return page.Corrupt(id, "element %d: child reference to page %d", i, r.ID)
			}
		} else {
			off = int(binary.LittleEndian.Uint16(e[0:]))
			ks = int(binary.LittleEndian.Uint16(e[2:]))
			vs = int(binary.LittleEndian.Uint16(e[4:]))
			switch Kind(e[6]) {
			case KindValue:
			case KindBucket:
				if vs != bucketHeaderSize {
					return page.Corrupt(id, "element %d: bucket header of %d bytes", i, vs)
				}
			case KindLarge:
				if vs != largeRefSize {
					return page.Corrupt(id, "element %d: large-value reference of %d bytes", i, vs)
				}
			default:
				return page.Corrupt(id, "element %d: unknown kind %d", i, e[6])
			}
		}
		if off < dataStart || off+ks+vs > len(p) {
			return page.Corrupt(id, "element %d: bytes [%d, %d) outside the page", i, off, off+ks+vs)
		}
		// Copy-on-write rewrites every parent of a new page, so a page
		// only references runs of its own transaction or older ones. A
		// reference "from the future" is not followed by the verification
		// of this page's commit, but would be by that of a later commit
		// that copies the page unchanged, which would then fail: refuse it.
		var child page.Ref
		if h.Type == page.TypeBranch {
			child = page.GetRef(e)
		} else if Kind(e[6]) != KindValue {
			child = page.GetRef(p[off+ks:])
		}
		if child.TxID > h.TxID {
			return page.Corrupt(id, "element %d: reference to %v, written after this page (tx %d)", i, child, h.TxID)
		}
		key := p[off : off+ks]
		if ks == 0 {
			return page.Corrupt(id, "element %d: empty key", i)
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return page.Corrupt(id, "element %d: keys out of order", i)
		}
		prev = key
	}
	return nil
}
