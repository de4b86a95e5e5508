package btree

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Errors the tree reports for misuse; callers map them to their own
// sentinels.
var (
	ErrKindMismatch  = errors.New("btree: key holds a value of another kind")
	ErrKeyRequired   = errors.New("btree: key required")
	ErrKeyTooLarge   = errors.New("btree: key too large")
	ErrValueTooLarge = errors.New("btree: value too large")
)

// Tree is one B+tree as seen by one transaction.
type Tree struct {
	s        Store
	root     page.Ref // the committed root, or the root written by the last Spill
	rootNode *node    // non-nil once the transaction changed the tree
	wc       Cursor   // reused for writes
	arena    []byte   // the free end of a chunk that small copies are cut from
	slab     []inode  // the free end of a chunk that decoded nodes are cut from
	// Sizes of the last chunks: they start small and double, so a
	// transaction that changes one key allocates little.
	arenaSize, slabSize int
}

// arenaChunk is the largest chunk that put cuts the copies of small keys
// and values from: one allocation per many Puts instead of one each.
// A chunk lives as long as any element in it, at most the transaction.
const arenaChunk = 64 << 10

// inodeChunk is the most elements one slab of decoded elements holds.
const inodeChunk = 512

// decode materializes page p as a node whose elements are cut from a slab
// shared by the transaction's nodes: a commit that changes a thousand
// leaves would otherwise make a thousand allocations that the collector
// must zero, track and scan one by one. Each node gets room for one more
// element; growing further reallocates, as any append does.
func (t *Tree) decode(p []byte) *node {
	count := page.CountOf(p)
	return decodeInto(p, t.inodeSlice(count, count+1))
}

// inodeSlice returns zeroed elements of length n and capacity c, cut from
// the slab when small.
func (t *Tree) inodeSlice(n, c int) []inode {
	if c > inodeChunk/4 {
		return make([]inode, n, c)
	}
	if len(t.slab) < c {
		t.slabSize = min(max(2*t.slabSize, 32), inodeChunk)
		t.slab = make([]inode, max(t.slabSize, c))
	}
	ins := t.slab[:n:c]
	t.slab = t.slab[c:]
	return ins
}

// copyBuf returns n bytes for a copy, cut from the arena when small.
func (t *Tree) copyBuf(n int) []byte {
	if n > arenaChunk/16 {
		return make([]byte, n)
	}
	if len(t.arena) < n {
		t.arenaSize = min(max(2*t.arenaSize, 1<<10), arenaChunk)
		t.arena = make([]byte, max(t.arenaSize, n))
	}
	b := t.arena[:n:n]
	t.arena = t.arena[n:]
	return b
}

// Open returns the tree rooted at root (a zero Ref is the empty tree).
func Open(s Store, root page.Ref) *Tree {
	t := &Tree{s: s, root: root}
	t.wc.t = t
	return t
}

// Root returns the reference of the committed or last spilled root.
func (t *Tree) Root() page.Ref { return t.root }

// Dirty reports whether the tree has changes not yet spilled.
func (t *Tree) Dirty() bool { return t.rootNode != nil }

// Store returns the store the tree reads from.
func (t *Tree) Store() Store { return t.s }

// Get returns the value stored under key and its kind. A KindBucket value
// is the encoded BucketHeader. The value points into the page (or the
// transaction's copy) and must not be modified.
func (t *Tree) Get(key []byte) (val []byte, kind Kind, found bool, err error) {
	if t.rootNode != nil {
		return t.getNode(key)
	}
	if t.root.IsZero() {
		return nil, 0, false, nil
	}
	p, err := t.s.Read(t.root, 0)
	for depth := 0; err == nil; depth++ {
		if isLeaf(p) {
			i, ok := searchLeaf(p, key)
			if !ok {
				return nil, 0, false, nil
			}
			_, v, k := leafElem(p, i)
			if k == KindLarge {
				v, err = t.readLarge(decodeLarge(v))
			}
			return v, k, err == nil, err
		}
		if depth >= MaxDepth {
			return nil, 0, false, page.Corrupt(t.root.ID, "tree deeper than %d levels (cycle?)", MaxDepth)
		}
		p, err = t.s.Read(branchRef(p, searchBranch(p, key)), 0)
	}
	return nil, 0, false, err
}

// getNode is Get through the write cursor, for trees with changed nodes.
func (t *Tree) getNode(key []byte) ([]byte, Kind, bool, error) {
	c := &t.wc
	if err := c.seekLeaf(key); err != nil {
		return nil, 0, false, err
	}
	f := c.top()
	i, ok := f.search(key)
	if !ok {
		return nil, 0, false, nil
	}
	f.i = i
	k, v, kind := c.current()
	_ = k
	return v, kind, c.err == nil, c.err
}

// readLarge returns the bytes of a large value's run.
func (t *Tree) readLarge(r page.Ref, n uint64) ([]byte, error) {
	run, err := t.s.Read(r, page.TypeValue)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(run)-page.HeaderSize) || page.SpanFor(n, t.s.PageSize()) != uint64(len(run)/t.s.PageSize()) {
		return nil, page.Corrupt(r.ID, "value of %d bytes does not match its run of %d bytes", n, len(run))
	}
	return run[page.HeaderSize : page.HeaderSize+int(n)], nil
}

// CheckKey reports whether key is acceptable for this tree's page size.
func (t *Tree) CheckKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrKeyRequired
	case len(key) > MaxKeySize(t.s.PageSize()):
		return fmt.Errorf("%w: %d bytes, at most %d with %d-byte pages", ErrKeyTooLarge, len(key), MaxKeySize(t.s.PageSize()), t.s.PageSize())
	}
	return nil
}

// Put stores a copy of value under key. It fails with ErrKindMismatch if
// key holds a bucket.
func (t *Tree) Put(key, value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrValueTooLarge, len(value), MaxValueSize)
	}
	return t.put(key, value, KindValue)
}

// PutBucket stores a bucket header under key, creating or replacing a
// KindBucket element. It fails with ErrKindMismatch if key holds a value.
func (t *Tree) PutBucket(key []byte, h BucketHeader) error {
	return t.put(key, EncodeBucket(h), KindBucket)
}

func (t *Tree) put(key, value []byte, kind Kind) error {
	if err := t.CheckKey(key); err != nil {
		return err
	}
	c := &t.wc
	if err := c.seekLeaf(key); err != nil {
		return err
	}
	i, found := c.top().search(key)
	if found && (c.top().kind(i) == KindBucket) != (kind == KindBucket) {
		return ErrKindMismatch
	}
	n, err := c.materialize()
	if err != nil {
		return err
	}
	in := inode{kind: kind}
	ps := t.s.PageSize()
	if kind == KindValue && !inline(ps, len(key), len(value)) {
		// Copy the value straight into the buffer of its future run.
		span := page.SpanFor(uint64(len(value)), ps)
		run := t.buffer(int(span))
		clear(run[:page.HeaderSize])
		end := page.HeaderSize + copy(run[page.HeaderSize:], value)
		clear(run[end:])
		in.kind, in.value = kindPending, run[:end]
		in.key = append([]byte(nil), key...)
		n.pending = true
	} else {
		kv := t.copyBuf(len(key) + len(value))
		copy(kv, key)
		copy(kv[len(key):], value)
		// The key's capacity spans the value (see decodeInto).
		in.key, in.value = kv[:len(key)], kv[len(key):]
	}
	n.bytes += in.elemSize(true)
	if found {
		n.bytes -= n.inodes[i].elemSize(true)
		t.freeValue(&n.inodes[i])
		n.inodes[i] = in
		return nil
	}
	if len(n.inodes) == cap(n.inodes) {
		// Double, where append would grow a long slice by a quarter: a
		// sequential load adds thousands of elements to one leaf node
		// before Spill splits it, and each growth copies all of them. A
		// node of one page's worth (a random insert's second key in the
		// leaf) grows by half, from the slab: doubling it would allocate
		// twice what it will ever hold.
		c := cap(n.inodes)
		if c < inodeChunk/4 {
			c += c/2 + 2
		} else {
			c = 2*c + 1
		}
		grown := t.inodeSlice(len(n.inodes), c)
		copy(grown, n.inodes)
		n.inodes = grown
	}
	n.inodes = n.inodes[:len(n.inodes)+1]
	copy(n.inodes[i+1:], n.inodes[i:])
	n.inodes[i] = in
	return nil
}

// Delete removes key if it holds a value of the given kind (KindValue also
// matches KindLarge). found is false if key was absent; a kind mismatch is
// ErrKindMismatch. Deleting a bucket entry does not free the nested tree:
// the caller calls Drop.
func (t *Tree) Delete(key []byte, kind Kind) (found bool, err error) {
	c := &t.wc
	if err := c.seekLeaf(key); err != nil {
		return false, err
	}
	i, ok := c.top().search(key)
	if !ok {
		return false, nil
	}
	// The path was just built, so delete in place rather than through
	// deleteCurrent, which searches the whole path again.
	if have := c.top().kind(i); (have == KindBucket) != (kind == KindBucket) {
		return true, ErrKindMismatch
	}
	return true, c.deleteAt(i)
}

// freeValue releases the run of a large value being replaced or deleted.
func (t *Tree) freeValue(in *inode) {
	if in.kind != KindLarge {
		return
	}
	if r, n := decodeLarge(in.value); !r.IsZero() {
		t.s.Free(r.ID, int(page.SpanFor(n, t.s.PageSize())), r.TxID)
	}
}

// childNode materializes the i-th child of branch node n, freeing its page.
func (t *Tree) childNode(n *node, i int) (*node, error) {
	in := &n.inodes[i]
	if in.child != nil {
		return in.child, nil
	}
	r := in.childRef()
	p, err := t.s.Read(r, 0)
	if err != nil {
		return nil, err
	}
	in.child = t.decode(p)
	t.s.Free(r.ID, 1, r.TxID)
	return in.child, nil
}

// Spill writes every changed node to new pages, bottom-up, merging
// underfull nodes and splitting overfull ones, and returns the new root.
func (t *Tree) Spill() (page.Ref, error) {
	n := t.rootNode
	if n == nil {
		return t.root, nil
	}
	t.wc.reset()
	if err := t.rebalance(n, 0); err != nil {
		return page.Ref{}, err
	}
	// A root branch with one child is a wasted level.
	for !n.leaf && len(n.inodes) == 1 {
		if n.inodes[0].child == nil {
			t.root, t.rootNode = n.inodes[0].childRef(), nil
			return t.root, nil
		}
		n = n.inodes[0].child
	}
	ins, err := t.spill(n)
	for err == nil && len(ins) > 1 {
		ins, err = t.spill(&node{inodes: ins})
	}
	if err != nil {
		return page.Ref{}, err
	}
	t.root, t.rootNode = page.Ref{}, nil
	if len(ins) == 1 {
		t.root = ins[0].childRef()
	}
	return t.root, nil
}

// rebalance merges changed children of n that are less than a quarter
// full (or empty) into a neighbour, children first.
func (t *Tree) rebalance(n *node, depth int) error {
	if n.leaf {
		return nil
	}
	if depth > MaxDepth {
		return page.Corrupt(t.root.ID, "tree deeper than %d levels", MaxDepth)
	}
	for i := range n.inodes {
		if c := n.inodes[i].child; c != nil {
			if err := t.rebalance(c, depth+1); err != nil {
				return err
			}
		}
	}
	ps := t.s.PageSize()
	threshold := page.HeaderSize + (ps-page.HeaderSize)/4
	for i := 0; i < len(n.inodes) && len(n.inodes) > 1; {
		c := n.inodes[i].child
		if c == nil || (c.size() >= threshold && (c.leaf || len(c.inodes) >= 2)) {
			i++
			continue
		}
		l := i
		if i == len(n.inodes)-1 {
			l = i - 1
		}
		left, err := t.childNode(n, l)
		if err != nil {
			return err
		}
		right, err := t.childNode(n, l+1)
		if err != nil {
			return err
		}
		if left.leaf != right.leaf {
			return page.Corrupt(n.inodes[l].childRef().ID, "siblings at different depths")
		}
		left.inodes = append(left.inodes, right.inodes...)
		left.pending = left.pending || right.pending
		left.bytes += right.bytes
		n.bytes -= n.inodes[l+1].elemSize(false)
		n.inodes = append(n.inodes[:l+1], n.inodes[l+2:]...)
		i = l
		if left.size() >= threshold {
			i++
		}
	}
	return nil
}

// spill writes node n (after its changed children) and returns the
// elements that reference the pages it became: none if it is empty, more
// than one if it split.
func (t *Tree) spill(n *node) ([]inode, error) { return t.spillTo(n, nil) }

// spillTo is spill appending the elements to dst: a parent collects its
// children's straight into its new element list.
func (t *Tree) spillTo(n *node, dst []inode) ([]inode, error) {
	ps := t.s.PageSize()
	if !n.leaf {
		out := t.inodeSlice(0, len(n.inodes)+2)
		for i := range n.inodes {
			if c := n.inodes[i].child; c != nil {
				var err error
				if out, err = t.spillTo(c, out); err != nil {
					return nil, err
				}
			} else {
				out = append(out, n.inodes[i])
			}
		}
		n.inodes, n.bytes = out, elemBytes(out, false)
	} else if n.pending {
		for i := range n.inodes {
			if in := &n.inodes[i]; in.kind == kindPending {
				t.writeLarge(in)
			}
		}
		n.pending = false
	}
	if len(n.inodes) == 0 {
		return dst, nil
	}
	// Most nodes fit on one page: write them without split's slices.
	if n.bytes <= capacity(ps) {
		return t.writePage(n.inodes, n.leaf, dst), nil
	}
	for _, part := range split(n.inodes, n.leaf, n.bytes, ps) {
		dst = t.writePage(part, n.leaf, dst)
	}
	return dst, nil
}

// writePage writes inodes as one new page and appends the element that
// references it to dst.
func (t *Tree) writePage(inodes []inode, leaf bool, dst []inode) []inode {
	s, tx := t.s, t.s.TxID()
	p := t.buffer(1)
	clear(p)
	id := s.Allocate(1)
	sum := encode(p, inodes, leaf, id, tx)
	s.Write(id, p)
	return append(dst, inode{key: inodes[0].key, value: t.refBytes(page.Ref{ID: id, Checksum: sum, TxID: tx})})
}

// buffer returns a buffer of span pages, with undefined contents: recycled
// by the store when it can (a commit of a thousand pages or of 1 MB of
// large values would otherwise allocate, and later collect, as much).
func (t *Tree) buffer(span int) []byte {
	if b, ok := t.s.(Bufferer); ok {
		return b.Buffer(span)
	}
	return make([]byte, span*t.s.PageSize())
}

// refBytes returns r encoded, as a branch element's value.
func (t *Tree) refBytes(r page.Ref) []byte {
	b := t.copyBuf(page.RefSize)
	page.PutRef(b, r)
	return b
}

// writeLarge gives a pending large value its own run.
func (t *Tree) writeLarge(in *inode) {
	ps, tx := t.s.PageSize(), t.s.TxID()
	n := uint64(len(in.value) - page.HeaderSize)
	span := int(page.SpanFor(n, ps))
	run := in.value[:span*ps]
	id := t.s.Allocate(span)
	page.PutHeader(run, page.Header{ID: id, TxID: tx, Type: page.TypeValue, Span: uint32(span)})
	sum := page.Seal(run)
	t.s.Write(id, run)
	v := t.copyBuf(largeRefSize)
	putLarge(v, page.Ref{ID: id, Checksum: sum, TxID: tx}, n)
	in.kind, in.value = KindLarge, v
}

// compare is bytes.Compare, named for readability at call sites.
func compare(a, b []byte) int { return bytes.Compare(a, b) }
