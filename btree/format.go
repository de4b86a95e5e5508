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

// Heads (format 3). A page whose header has flagHeads carries, after its
// elements, one head per element and then the length of the prefix all its
// keys share (u16): a head is the key's first bytes after that prefix,
// zero-padded. Heads sit together, so a search compares them without
// touching an element or a key per probe, and only the keys of equal heads
// are compared in full (docs/FORMAT.md, "Heads"). Pages without the flag
// (formats 1 and 2) have neither.
const (
	flagHeads = 1
	// A leaf holds few keys: two bytes after their prefix tell them apart,
	// and keep 32 entries of a 16-byte key and a 100-byte value on a 4 KiB
	// page, as format 2 did (four would leave room for 31).
	leafHeadSize   = 2
	branchHeadSize = 4
	prefixLenSize  = 2
)

// headSize is the width of a head on a leaf or branch page.
func headSize(leaf bool) int {
	if leaf {
		return leafHeadSize
	}
	return branchHeadSize
}

// capacity is the bytes a page of pageSize has for its elements, heads and
// keys and values: all but the header and the prefix length.
func capacity(pageSize int) int { return pageSize - page.HeaderSize - prefixLenSize }

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

// maxElem is the largest element (header + bytes, not its head) a page of
// this size takes: half its body. Two branch elements with their heads fit
// on a page; two leaf elements at the limit may take a page each. It is
// format 2's limit, so every key and value an older file holds can be
// written again.
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

// putLarge encodes a large value's reference and length into b (32 bytes).
func putLarge(b []byte, r page.Ref, n uint64) {
	page.PutRef(b, r)
	binary.LittleEndian.PutUint64(b[page.RefSize:], n)
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

// compareKeys is bytes.Compare for the searches: it compares eight bytes
// at a time as big-endian words, and hands the tail (under eight bytes) to
// bytes.Compare.
func compareKeys(a, b []byte) int {
	for len(a) >= 8 && len(b) >= 8 {
		x, y := binary.BigEndian.Uint64(a), binary.BigEndian.Uint64(b)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
		a, b = a[8:], b[8:]
	}
	if len(a) == 0 || len(b) == 0 {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}

// searchKey is a key prepared for the comparisons of a binary search: its
// first sixteen bytes as two big-endian words, so that a probe of a key
// that differs from it there (almost every probe) costs two loads and two
// integer comparisons, inline, with no call.
type searchKey struct {
	b      []byte
	w0, w1 uint64
	wide   bool // len(b) >= 16
}

func prepareKey(key []byte) searchKey {
	s := searchKey{b: key}
	if len(key) >= 16 {
		s.w0, s.w1, s.wide = binary.BigEndian.Uint64(key), binary.BigEndian.Uint64(key[8:]), true
	}
	return s
}

// prefix compares the first sixteen bytes of k with s's words when both
// have them: the sign, or 0 (equal there, or too short), in which case
// compare decides. Inlined into every probe of the searches:
//
//	c := sk.prefix(k)
//	if c == 0 {
//		c = sk.compare(k)
//	}
func (s *searchKey) prefix(k []byte) int {
	if s.wide && len(k) >= 16 {
		return s.wordsCompare(k)
	}
	return 0
}

// compare returns the sign of k - s.b (bytes.Compare(k, s.b)): the slow
// path of a probe, once prefix found the first sixteen bytes equal.
func (s *searchKey) compare(k []byte) int {
	if len(k) >= 16 && s.wide {
		return compareKeys(k[16:], s.b[16:])
	}
	return compareKeys(k, s.b)
}

// wordsCompare compares the first sixteen bytes of k (len(k) >= 16) with
// s's words: the sign, or 0 if they are equal.
func (s *searchKey) wordsCompare(k []byte) int {
	x, y := binary.BigEndian.Uint64(k), s.w0
	if x == y {
		x, y = binary.BigEndian.Uint64(k[8:16]), s.w1
	}
	if x < y {
		return -1
	}
	if x > y {
		return 1
	}
	return 0
}

// branchKeyAt is branchKey with one bounds check for the element's two
// fields: the searches call it for every probe.
func branchKeyAt(p []byte, i int) []byte {
	x := binary.LittleEndian.Uint32(p[page.HeaderSize+i*branchElemSize+24:])
	ks, off := int(x&0xffff), int(x>>16)
	return p[off : off+ks : off+ks]
}

// leafKeyAt is leafKey with one bounds check for the element's two fields.
func leafKeyAt(p []byte, i int) []byte {
	x := binary.LittleEndian.Uint32(p[page.HeaderSize+i*leafElemSize:])
	off, ks := int(x&0xffff), int(x>>16)
	return p[off : off+ks : off+ks]
}

// searchBranch returns the index of the child whose range holds key: the
// last element with a key <= key, or 0.
func searchBranch(p []byte, key []byte) int {
	if p[25]&flagHeads != 0 {
		return searchBranchHeads(p, key)
	}
	sk := prepareKey(key)
	lo, hi := 0, page.CountOf(p) // first index with branchKey > key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := branchKeyAt(p, m)
		c := sk.prefix(k)
		if c == 0 {
			c = sk.compare(k)
		}
		if c <= 0 {
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
// whether it equals key. Keys on a validated page strictly increase, so an
// equal key ends the search at once: a lookup of a present key then
// touches one key (one cache line) fewer on average, and none twice.
func searchLeaf(p []byte, key []byte) (int, bool) {
	if p[25]&flagHeads != 0 {
		return searchLeafHeads(p, key)
	}
	sk := prepareKey(key)
	lo, hi := 0, page.CountOf(p)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := leafKeyAt(p, m)
		c := sk.prefix(k)
		if c == 0 {
			c = sk.compare(k)
		}
		switch {
		case c < 0:
			lo = m + 1
		case c > 0:
			hi = m
		default:
			return m, true
		}
	}
	return lo, false
}

// pageHeads returns the heads and the prefix length of a page with
// flagHeads and count n.
func pageHeads(p []byte, n, esz, hw int) ([]byte, int) {
	hs := page.HeaderSize + n*esz
	he := hs + n*hw
	return p[hs:he:he], int(binary.LittleEndian.Uint16(p[he:]))
}

// keyHead returns the head of a key that starts with the page's prefix:
// the hw bytes after plen, zero-padded, as a big-endian number, so heads
// order as their keys do (a smaller head means a smaller key).
func keyHead(key []byte, plen, hw int) uint32 {
	if len(key)-plen >= 4 { // most keys: one load, no copy
		return binary.BigEndian.Uint32(key[plen:]) >> (32 - 8*hw)
	}
	var b [4]byte
	copy(b[:hw], key[plen:])
	return binary.BigEndian.Uint32(b[:]) >> (32 - 8*hw)
}

// headAt returns head i of heads of width hw (inlined, with hw a constant
// in the searches).
func headAt(heads []byte, i, hw int) uint32 {
	if hw == leafHeadSize {
		return uint32(binary.BigEndian.Uint16(heads[i*2:]))
	}
	return binary.BigEndian.Uint32(heads[i*4:])
}

// prefixOrder compares key with the prefix pre that every key of a page
// starts with: 0 if key starts with it too, else -1 (key is below every key
// of the page) or 1 (above every key).
func prefixOrder(key, pre []byte) int {
	if len(key) >= len(pre) && string(key[:len(pre)]) == string(pre) {
		return 0
	}
	if bytes.Compare(key, pre) < 0 {
		return -1
	}
	return 1
}

// searchLeafHeads is searchLeaf for a page with heads.
func searchLeafHeads(p []byte, key []byte) (int, bool) {
	n := page.CountOf(p)
	if n == 0 {
		return 0, false
	}
	heads, plen := pageHeads(p, n, leafElemSize, leafHeadSize)
	switch prefixOrder(key, leafKeyAt(p, 0)[:plen]) {
	case -1:
		return 0, false
	case 1:
		return n, false
	}
	h := keyHead(key, plen, leafHeadSize)
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		x := headAt(heads, m, leafHeadSize)
		below := x < h
		if x == h {
			// Equal heads: the keys decide (an equal one ends the search).
			c := compareKeys(leafKeyAt(p, m)[plen:], key[plen:])
			if c == 0 {
				return m, true
			}
			below = c < 0
		}
		if below {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, false
}

// searchBranchHeads is searchBranch for a page with heads.
func searchBranchHeads(p []byte, key []byte) int {
	n := page.CountOf(p)
	heads, plen := pageHeads(p, n, branchElemSize, branchHeadSize)
	switch prefixOrder(key, branchKeyAt(p, 0)[:plen]) {
	case -1:
		return 0
	case 1:
		return n - 1
	}
	h := keyHead(key, plen, branchHeadSize)
	lo, hi := 0, n // first index with branchKey > key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		x := headAt(heads, m, branchHeadSize)
		if x < h || x == h && compareKeys(branchKeyAt(p, m)[plen:], key[plen:]) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0) // the child before the first greater key
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
	hw := 0
	switch h.Flags {
	case 0:
	case flagHeads:
		hw = headSize(h.Type == page.TypeLeaf)
	default:
		return page.Corrupt(id, "unknown page flags %#x", h.Flags)
	}
	dataStart := page.HeaderSize + n*(esz+hw)
	if hw != 0 {
		dataStart += prefixLenSize
	}
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
	if hw != 0 {
		return validateHeads(p, n, esz, hw)
	}
	return nil
}

// validateHeads proves that every key of a page with heads starts with the
// prefix and that every head is its key's: then a search by heads finds
// what a search by keys would. Keys increase, so the first and the last
// sharing the prefix means all do.
func validateHeads(p []byte, n, esz, hw int) error {
	heads, plen := pageHeads(p, n, esz, hw)
	key := leafKeyAt
	if esz == branchElemSize {
		key = branchKeyAt
	}
	id := page.GetHeader(p).ID
	if n == 0 {
		if plen != 0 {
			return page.Corrupt(id, "prefix of %d bytes on an empty page", plen)
		}
		return nil
	}
	first, last := key(p, 0), key(p, n-1)
	if plen > len(first) || plen > len(last) || !bytes.Equal(first[:plen], last[:plen]) {
		return page.Corrupt(id, "prefix of %d bytes not shared by the first and last keys", plen)
	}
	for i := 0; i < n; i++ {
		if headAt(heads, i, hw) != keyHead(key(p, i), plen, hw) {
			return page.Corrupt(id, "element %d: head does not match its key", i)
		}
	}
	return nil
}
