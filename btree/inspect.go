package btree

import (
	"encoding/binary"
	"strconv"

	"github.com/cowfile/cowfile/pager/page"
)

// Decoding for inspection tools (cowfile inspect, page, pages). The read
// path uses the unchecked accessors in format.go on pages that Validate
// accepted; tools must also show pages that it rejects, so everything here
// checks its own bounds and never panics on any input.

// Element is one element of a branch or leaf page.
type Element struct {
	Key []byte
	// Leaf elements: the kind and the stored value bytes (the value itself,
	// an encoded BucketHeader or an encoded large-value reference).
	Kind  Kind
	Value []byte
	// Bucket is the decoded header of a KindBucket element.
	Bucket BucketHeader
	// Large and LargeLen locate the run of a KindLarge element and give
	// the value's length.
	Large    page.Ref
	LargeLen uint64
	// Child is a branch element's reference.
	Child page.Ref
}

// Elements decodes the elements of the branch or leaf page p (one page,
// header included). It returns the elements it could decode, in order, and
// for the first element it could not, an error wrapping page.ErrCorrupt
// that names the page and the element. It does not check key order or
// references (Validate and the walkers do).
func Elements(p []byte) ([]Element, error) {
	if len(p) < page.HeaderSize {
		return nil, page.Corrupt(0, "short page (%d bytes)", len(p))
	}
	h := page.GetHeader(p)
	esz := leafElemSize
	switch h.Type {
	case page.TypeLeaf:
	case page.TypeBranch:
		esz = branchElemSize
	default:
		return nil, page.Corrupt(h.ID, "type %v is not a tree page", h.Type)
	}
	n := int(h.Count)
	out := make([]Element, 0, min(n, len(p)/esz))
	for i := 0; i < n; i++ {
		at := page.HeaderSize + i*esz
		if at+esz > len(p) {
			return out, page.Corrupt(h.ID, "element %d: element array runs past the page (%d elements)", i, n)
		}
		e := p[at : at+esz]
		var el Element
		var off, ks, vs int
		if h.Type == page.TypeBranch {
			el.Child = page.GetRef(e)
			ks = int(binary.LittleEndian.Uint16(e[24:]))
			off = int(binary.LittleEndian.Uint16(e[26:]))
		} else {
			off = int(binary.LittleEndian.Uint16(e[0:]))
			ks = int(binary.LittleEndian.Uint16(e[2:]))
			vs = int(binary.LittleEndian.Uint16(e[4:]))
			el.Kind = Kind(e[6])
		}
		if off < page.HeaderSize || off+ks+vs > len(p) {
			return out, page.Corrupt(h.ID, "element %d: bytes [%d, %d) outside the page", i, off, off+ks+vs)
		}
		el.Key = p[off : off+ks : off+ks]
		el.Value = p[off+ks : off+ks+vs : off+ks+vs]
		switch {
		case h.Type == page.TypeBranch:
		case el.Kind == KindValue:
		case el.Kind == KindBucket && vs == bucketHeaderSize:
			el.Bucket = DecodeBucket(el.Value)
		case el.Kind == KindLarge && vs == largeRefSize:
			el.Large, el.LargeLen = decodeLarge(el.Value)
		case el.Kind == KindBucket || el.Kind == KindLarge:
			return out, page.Corrupt(h.ID, "element %d: %v value of %d bytes", i, el.Kind, vs)
		default:
			return out, page.Corrupt(h.ID, "element %d: unknown kind %d", i, el.Kind)
		}
		out = append(out, el)
	}
	return out, nil
}

// Heads returns the head width and the common prefix length of the branch
// or leaf page p, and false if p has no heads (a page of format 1 or 2) or
// they do not fit in it.
func Heads(p []byte) (width, prefix int, ok bool) {
	if len(p) < page.HeaderSize {
		return 0, 0, false
	}
	h := page.GetHeader(p)
	leaf := h.Type == page.TypeLeaf
	if h.Flags&flagHeads == 0 || !leaf && h.Type != page.TypeBranch {
		return 0, 0, false
	}
	esz := leafElemSize
	if !leaf {
		esz = branchElemSize
	}
	width = headSize(leaf)
	end := page.HeaderSize + int(h.Count)*(esz+width)
	if end+prefixLenSize > len(p) {
		return 0, 0, false
	}
	return width, int(binary.LittleEndian.Uint16(p[end:])), true
}

// UsedBytes returns how many bytes of a branch or leaf page its contents
// occupy: header, element array, heads and prefix length, keys and values. It is what fill
// statistics divide by the page size. Out-of-range elements count only
// their array slot.
func UsedBytes(p []byte) int {
	els, _ := Elements(p)
	if len(p) < page.HeaderSize {
		return 0
	}
	h := page.GetHeader(p)
	leaf := h.Type != page.TypeBranch
	esz := leafElemSize
	if !leaf {
		esz = branchElemSize
	}
	n := page.HeaderSize
	if h.Flags&flagHeads != 0 {
		esz += headSize(leaf)
		n += prefixLenSize
	}
	n += int(h.Count) * esz
	for _, e := range els {
		n += len(e.Key) + len(e.Value)
	}
	return min(n, len(p))
}

func (k Kind) String() string {
	switch k {
	case KindValue:
		return "value"
	case KindBucket:
		return "bucket"
	case KindLarge:
		return "large"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}
