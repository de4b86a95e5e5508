package btree

import (
	"encoding/binary"

	"github.com/cowfile/cowfile/pager/page"
)

// node is a page being changed by the write transaction: a decoded copy
// whose keys and values still point into the old page (or into copies of
// the caller's bytes). Children that are also being changed hang off their
// parent's inode; clean children are just references.
type node struct {
	leaf    bool
	pending bool // a leaf with a large value not yet written (kindPending)
	inodes  []inode
	// bytes is the sum of the inodes' elemSize, kept up to date by every
	// change, so that neither rebalance nor split walks the elements of
	// each changed node (tens of thousands per commit) to size it.
	bytes int
}

// inode is one element of a node. It holds every field in the bytes the
// element has on its page, so decoding a page writes 64 bytes per element
// and copies nothing: a commit that rewrites a thousand leaves decodes
// tens of thousands of elements, and their size is what it allocates,
// zeroes, and has the collector scan.
type inode struct {
	key []byte
	// value is, in a leaf: the inline value or bucket header (KindValue,
	// KindBucket); the 32-byte reference and length of a large value's
	// run, as on the page (KindLarge); or, for a large value not yet
	// written (kindPending), the first HeaderSize+len(value) bytes of the
	// buffer of its future run, whose capacity holds the whole run. In a
	// branch it is the child's 24-byte reference, as on the page.
	value []byte
	child *node // branch: the child, when it is being changed
	kind  Kind  // leaf only
}

// kindPending marks, in a node only, a large value whose run has not been
// written yet. It never reaches a page or a caller (they see KindValue).
const kindPending Kind = 0xff

// childRef returns the child reference of a branch element.
func (in *inode) childRef() page.Ref { return page.GetRef(in.value) }

// pendingValue returns the value of a kindPending element.
func (in *inode) pendingValue() []byte {
	return in.value[page.HeaderSize:len(in.value):len(in.value)]
}

// decodeInto materializes the page p as a node whose elements are ins
// (zeroed, one per element of p).
func decodeInto(p []byte, ins []inode) *node {
	n := &node{leaf: isLeaf(p), inodes: ins}
	if n.leaf {
		b := len(ins) * (leafElemSize + leafHeadSize)
		for i := range n.inodes {
			in := &n.inodes[i]
			// The key's capacity spans its value, which follows it on
			// the page, so encode can copy both at once. Keys leave the
			// node only cut to their length (Cursor.current).
			x := binary.LittleEndian.Uint64(p[page.HeaderSize+i*leafElemSize:])
			off, ks, vs := int(x&0xffff), int(x>>16&0xffff), int(x>>32&0xffff)
			in.key = p[off : off+ks : off+ks+vs]
			in.value = p[off+ks : off+ks+vs : off+ks+vs]
			in.kind = Kind(x >> 48)
			b += ks + vs
		}
		n.bytes = b
		return n
	}
	b := len(ins) * (branchElemSize + branchHeadSize)
	for i := range n.inodes {
		in := &n.inodes[i]
		e := page.HeaderSize + i*branchElemSize
		in.key, in.value = branchKey(p, i), p[e:e+page.RefSize:e+page.RefSize]
		b += len(in.key)
	}
	n.bytes = b
	return n
}

// elemSize is the bytes an inode takes on a page.
func (in *inode) elemSize(leaf bool) int {
	switch {
	case !leaf:
		return branchElemSize + branchHeadSize + len(in.key)
	case in.kind == kindPending:
		return leafElemSize + leafHeadSize + len(in.key) + largeRefSize
	}
	return leafElemSize + leafHeadSize + len(in.key) + len(in.value)
}

// size is the bytes n takes on a page (if it fits on one).
func (n *node) size() int { return page.HeaderSize + prefixLenSize + n.bytes }

// elemBytes is the sum of the inodes' elemSize.
func elemBytes(inodes []inode, leaf bool) int {
	s := 0
	for i := range inodes {
		s += inodes[i].elemSize(leaf)
	}
	return s
}

// search returns the index of the first inode with key >= key, and whether
// it is equal.
func (n *node) search(key []byte) (int, bool) {
	// A sequential load appends: one comparison with the last key settles it.
	if l := len(n.inodes); l > 0 && compareKeys(n.inodes[l-1].key, key) < 0 {
		return l, false
	}
	sk := prepareKey(key)
	lo, hi := 0, len(n.inodes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := n.inodes[m].key
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

// childIndex is searchBranch for nodes: the last element with a key <=
// key, or 0.
func (n *node) childIndex(key []byte) int {
	i, found := n.search(key)
	if !found && i > 0 {
		i--
	}
	return i
}

// split cuts inodes into runs that each fit on one page, as evenly as the
// element sizes allow: a node that is n pages' worth becomes n nearly full
// pages (so sequential loads fill pages), and a page that overflowed by
// one element becomes two halves (so random inserts leave room).
//
// total is the sum of the inodes' elemSize.
func split(inodes []inode, leaf bool, total, pageSize int) [][]inode {
	capacity := capacity(pageSize)
	if total <= capacity {
		return [][]inode{inodes}
	}
	parts := (total + capacity - 1) / capacity
	target := (total + parts - 1) / parts
	var out [][]inode
	start, cur := 0, 0
	for i := range inodes {
		sz := inodes[i].elemSize(leaf)
		if cur > 0 && (cur >= target || cur+sz > capacity) {
			out = append(out, inodes[start:i])
			start, cur = i, 0
		}
		cur += sz
	}
	return append(out, inodes[start:])
}

// putHeads writes the heads of inodes and their common prefix's length
// into b (zeroed) and returns the bytes written.
func putHeads(b []byte, inodes []inode, hw int) int {
	plen := 0
	if n := len(inodes); n > 0 {
		plen = commonPrefix(inodes[0].key, inodes[n-1].key)
	}
	for i := range inodes {
		copy(b[i*hw:(i+1)*hw], inodes[i].key[plen:])
	}
	end := len(inodes) * hw
	binary.LittleEndian.PutUint16(b[end:], uint16(plen))
	return end + prefixLenSize
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// encode writes inodes as a sealed page with id and txid into p (zeroed,
// pageSize bytes) and returns the page's checksum. Large values must have
// been written already (no kindPending).
func encode(p []byte, inodes []inode, leaf bool, id page.ID, txid page.TxID) uint64 {
	typ, esz := page.TypeBranch, branchElemSize
	if leaf {
		typ, esz = page.TypeLeaf, leafElemSize
	}
	page.PutHeader(p, page.Header{ID: id, TxID: txid, Type: typ, Flags: flagHeads, Count: uint16(len(inodes)), Span: 1})
	off := page.HeaderSize + len(inodes)*esz
	elems := p[page.HeaderSize:off]
	off = putHeads(p[off:], inodes, headSize(leaf)) + off
	if !leaf {
		for i := range inodes {
			in := &inodes[i]
			e := elems[i*branchElemSize : (i+1)*branchElemSize]
			copy(e[:page.RefSize], in.value)
			binary.LittleEndian.PutUint32(e[24:], uint32(len(in.key))|uint32(off)<<16)
			off += copy(p[off:], in.key)
		}
		return page.Seal(p)
	}
	for i := range inodes {
		in := &inodes[i]
		k, v := in.key, in.value
		// off u16 | ksize u16 | vsize u16 | kind u8 | 0 u8, in one store.
		binary.LittleEndian.PutUint64(elems[i*leafElemSize:], uint64(off)|uint64(len(k))<<16|uint64(len(v))<<32|uint64(in.kind)<<48)
		// A value usually follows its key in memory (both were cut from
		// one page or one arena copy, and the key's capacity spans the
		// value): copy them at once.
		if n := len(k) + len(v); len(v) > 0 && cap(k) >= n && &k[:n][len(k)] == &v[0] {
			off += copy(p[off:], k[:n])
			continue
		}
		off += copy(p[off:], k)
		off += copy(p[off:], v)
	}
	return page.Seal(p)
}
