package btree

import (
	"bytes"
	"encoding/binary"
	"sort"

	"github.com/cowfile/cowfile/pager/page"
)

// node is a page being changed by the write transaction: a decoded copy
// whose keys and values still point into the old page (or into copies of
// the caller's bytes). Children that are also being changed hang off their
// parent's inode; clean children are just references.
type node struct {
	leaf   bool
	inodes []inode
}

// inode is one element of a node.
type inode struct {
	key   []byte
	kind  Kind     // leaf only
	value []byte   // leaf: inline value, bucket header, or a large value not yet written
	ref   page.Ref // branch: the child; leaf KindLarge: the value's run
	vlen  uint64   // leaf KindLarge: value length
	child *node    // branch: the child, when it is being changed
	run   []byte   // leaf: the buffer of a large value's future run (value points into it)
}

// decodeInto materializes the page p as a node whose elements are ins
// (zeroed, one per element of p).
func decodeInto(p []byte, ins []inode) *node {
	n := &node{leaf: isLeaf(p), inodes: ins}
	for i := range n.inodes {
		in := &n.inodes[i]
		if n.leaf {
			k, v, kind := leafElem(p, i)
			in.key, in.kind = k, kind
			if kind == KindLarge {
				in.ref, in.vlen = decodeLarge(v)
			} else {
				in.value = v
			}
		} else {
			in.key, in.ref = branchKey(p, i), branchRef(p, i)
		}
	}
	return n
}

// elemSize is the bytes an inode takes on a page.
func (in *inode) elemSize(leaf bool, pageSize int) int {
	if !leaf {
		return branchElemSize + len(in.key)
	}
	switch {
	case in.kind == KindLarge:
		return leafElemSize + len(in.key) + largeRefSize
	case in.kind == KindValue && !inline(pageSize, len(in.key), len(in.value)):
		return leafElemSize + len(in.key) + largeRefSize
	}
	return leafElemSize + len(in.key) + len(in.value)
}

func (n *node) size(pageSize int) int {
	s := page.HeaderSize
	for i := range n.inodes {
		s += n.inodes[i].elemSize(n.leaf, pageSize)
	}
	return s
}

// search returns the index of the first inode with key >= key, and whether
// it is equal.
func (n *node) search(key []byte) (int, bool) {
	// A sequential load appends: one comparison with the last key settles it.
	if l := len(n.inodes); l > 0 && bytes.Compare(n.inodes[l-1].key, key) < 0 {
		return l, false
	}
	i := sort.Search(len(n.inodes), func(i int) bool { return bytes.Compare(n.inodes[i].key, key) >= 0 })
	return i, i < len(n.inodes) && bytes.Equal(n.inodes[i].key, key)
}

// childIndex is searchBranch for nodes.
func (n *node) childIndex(key []byte) int {
	i := sort.Search(len(n.inodes), func(i int) bool { return bytes.Compare(n.inodes[i].key, key) > 0 })
	if i > 0 {
		i--
	}
	return i
}

// split cuts inodes into runs that each fit on one page, as evenly as the
// element sizes allow: a node that is n pages' worth becomes n nearly full
// pages (so sequential loads fill pages), and a page that overflowed by
// one element becomes two halves (so random inserts leave room).
func split(inodes []inode, leaf bool, pageSize int) [][]inode {
	capacity := pageSize - page.HeaderSize
	total := 0
	for i := range inodes {
		total += inodes[i].elemSize(leaf, pageSize)
	}
	if total <= capacity {
		return [][]inode{inodes}
	}
	parts := (total + capacity - 1) / capacity
	target := (total + parts - 1) / parts
	var out [][]inode
	start, cur := 0, 0
	for i := range inodes {
		sz := inodes[i].elemSize(leaf, pageSize)
		if cur > 0 && (cur >= target || cur+sz > capacity) {
			out = append(out, inodes[start:i])
			start, cur = i, 0
		}
		cur += sz
	}
	return append(out, inodes[start:])
}

// encode writes inodes as a sealed page with id and txid into p (zeroed,
// pageSize bytes) and returns the page's checksum. Large values must have
// been written already (kind KindLarge with a ref).
func encode(p []byte, inodes []inode, leaf bool, id page.ID, txid page.TxID) uint64 {
	typ, esz := page.TypeBranch, branchElemSize
	if leaf {
		typ, esz = page.TypeLeaf, leafElemSize
	}
	page.PutHeader(p, page.Header{ID: id, TxID: txid, Type: typ, Count: uint16(len(inodes)), Span: 1})
	off := page.HeaderSize + len(inodes)*esz
	for i := range inodes {
		in := &inodes[i]
		e := p[page.HeaderSize+i*esz:]
		if !leaf {
			page.PutRef(e, in.ref)
			binary.LittleEndian.PutUint16(e[24:], uint16(len(in.key)))
			binary.LittleEndian.PutUint16(e[26:], uint16(off))
			off += copy(p[off:], in.key)
			continue
		}
		v := in.value
		if in.kind == KindLarge {
			v = encodeLarge(in.ref, in.vlen)
		}
		binary.LittleEndian.PutUint16(e[0:], uint16(off))
		binary.LittleEndian.PutUint16(e[2:], uint16(len(in.key)))
		binary.LittleEndian.PutUint16(e[4:], uint16(len(v)))
		e[6] = byte(in.kind)
		off += copy(p[off:], in.key)
		off += copy(p[off:], v)
	}
	return page.Seal(p)
}
