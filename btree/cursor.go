package btree

import (
	"github.com/cowfile/cowfile/pager/page"
)

// frame is one level of a cursor's path: a page, or the node that replaces
// it in a write transaction, and the index of the element on the path.
type frame struct {
	p []byte
	n *node
	i int
}

func (f *frame) count() int {
	if f.n != nil {
		return len(f.n.inodes)
	}
	return page.CountOf(f.p)
}

func (f *frame) leaf() bool {
	if f.n != nil {
		return f.n.leaf
	}
	return isLeaf(f.p)
}

func (f *frame) key(i int) []byte {
	if f.n != nil {
		return f.n.inodes[i].key
	}
	if isLeaf(f.p) {
		return leafKey(f.p, i)
	}
	return branchKey(f.p, i)
}

func (f *frame) kind(i int) Kind {
	if f.n != nil {
		return f.n.inodes[i].kind
	}
	_, _, k := leafElem(f.p, i)
	return k
}

// search returns the first index with a key >= key in a leaf frame.
func (f *frame) search(key []byte) (int, bool) {
	if f.n != nil {
		return f.n.search(key)
	}
	return searchLeaf(f.p, key)
}

// Cursor walks a tree's leaves in key order. Steps do not allocate. A
// corrupt page ends the walk (the step returns a nil key) and is reported
// by Err.
type Cursor struct {
	t     *Tree
	stack []frame
	buf   [8]frame
	err   error
}

// Cursor returns a new cursor over t.
func (t *Tree) Cursor() *Cursor {
	c := &Cursor{t: t}
	c.stack = c.buf[:0]
	return c
}

// Err returns the first error the cursor met.
func (c *Cursor) Err() error { return c.err }

func (c *Cursor) reset() {
	if c.stack == nil {
		c.stack = c.buf[:0]
	}
	c.stack = c.stack[:0]
}

func (c *Cursor) top() *frame { return &c.stack[len(c.stack)-1] }

func (c *Cursor) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.reset()
}

// pushRoot starts a path at the root; false if the tree is empty.
func (c *Cursor) pushRoot() bool {
	c.reset()
	t := c.t
	if t.rootNode != nil {
		c.stack = append(c.stack, frame{n: t.rootNode})
		return true
	}
	if t.root.IsZero() {
		return false
	}
	p, err := t.s.Read(t.root, 0)
	if err != nil {
		c.fail(err)
		return false
	}
	c.stack = append(c.stack, frame{p: p})
	return true
}

// pushChild descends from the top frame into the child at its index, and
// sets the child's index to first (or to its last element if last).
func (c *Cursor) pushChild(last bool) bool {
	if len(c.stack) > MaxDepth {
		c.fail(page.Corrupt(c.t.root.ID, "tree deeper than %d levels (cycle?)", MaxDepth))
		return false
	}
	f := c.top()
	var child frame
	if f.n != nil {
		in := &f.n.inodes[f.i]
		if in.child != nil {
			child.n = in.child
		} else if child.p, c.err = c.t.s.Read(in.childRef(), 0); c.err != nil {
			c.fail(c.err)
			return false
		}
	} else {
		p, err := c.t.s.Read(branchRef(f.p, f.i), 0)
		if err != nil {
			c.fail(err)
			return false
		}
		child.p = p
	}
	if last {
		child.i = child.count() - 1
	}
	c.stack = append(c.stack, child)
	return true
}

// descend follows the top frame's index down to a leaf.
func (c *Cursor) descend(last bool) bool {
	for !c.top().leaf() {
		if !c.pushChild(last) {
			return false
		}
	}
	return true
}

// seekLeaf positions the path at the leaf whose range holds key (the leaf
// frame's index is left at 0). An empty tree gets an empty root node when
// the tree is writable, so that a Put has somewhere to go.
func (c *Cursor) seekLeaf(key []byte) error {
	if c.pathHolds(key) {
		return nil
	}
	if !c.pushRoot() {
		if c.err != nil {
			return c.err
		}
		c.t.rootNode = &node{leaf: true}
		c.stack = append(c.stack, frame{n: c.t.rootNode})
		return nil
	}
	for !c.top().leaf() {
		f := c.top()
		if f.n != nil {
			f.i = f.n.childIndex(key)
		} else {
			f.i = searchBranch(f.p, key)
		}
		if !c.pushChild(false) {
			return c.err
		}
	}
	return nil
}

// pathHolds reports whether the cursor's path, as the previous write left
// it, already leads to the leaf whose range holds key, so seekLeaf can keep
// it: sequential inserts land in the same leaf again and again. The path
// qualifies only if every frame is a node linked to the next one — nodes
// are the transaction's own and change shape only at Spill, which resets
// the path — and key lies in the child range each frame chose (what
// childIndex would pick again).
func (c *Cursor) pathHolds(key []byte) bool {
	n := len(c.stack)
	if n == 0 || c.t.rootNode == nil || c.stack[0].n != c.t.rootNode {
		return false
	}
	for d := 0; d < n-1; d++ {
		f := &c.stack[d]
		if f.n == nil || f.n.leaf {
			return false
		}
		in := f.n.inodes
		switch {
		case f.i < 0 || f.i >= len(in) || in[f.i].child == nil || in[f.i].child != c.stack[d+1].n:
			return false
		case f.i > 0 && compare(in[f.i].key, key) > 0:
			return false
		case f.i+1 < len(in) && compare(key, in[f.i+1].key) >= 0:
			return false
		}
	}
	leaf := c.stack[n-1].n
	return leaf != nil && leaf.leaf
}

// current returns the element at the leaf frame's index.
func (c *Cursor) current() (key, val []byte, kind Kind) {
	f := c.top()
	if f.n != nil {
		in := &f.n.inodes[f.i]
		// Cut the key to its length: its capacity may span the value.
		key := in.key[:len(in.key):len(in.key)]
		switch in.kind {
		case KindLarge:
			v, err := c.t.readLarge(decodeLarge(in.value))
			if err != nil {
				c.fail(err)
				return nil, nil, 0
			}
			return key, v, KindLarge
		case kindPending:
			return key, in.pendingValue(), KindValue
		}
		return key, in.value, in.kind
	}
	key, val, kind = leafElem(f.p, f.i)
	if kind == KindLarge {
		v, err := c.t.readLarge(decodeLarge(val))
		if err != nil {
			c.fail(err)
			return nil, nil, 0
		}
		val = v
	}
	return key, val, kind
}

// First moves to the first element. kind is KindLarge for values stored
// out of line; their bytes are returned like any other value.
func (c *Cursor) First() (key, val []byte, kind Kind) {
	if !c.pushRoot() || !c.descend(false) {
		return nil, nil, 0
	}
	if c.top().count() == 0 {
		return c.Next()
	}
	return c.current()
}

// Last moves to the last element.
func (c *Cursor) Last() (key, val []byte, kind Kind) {
	if !c.pushRoot() {
		return nil, nil, 0
	}
	c.top().i = c.top().count() - 1
	if !c.descend(true) {
		return nil, nil, 0
	}
	if c.top().count() == 0 {
		return c.Prev()
	}
	return c.current()
}

// Next moves to the next element; a nil key means the end.
func (c *Cursor) Next() (key, val []byte, kind Kind) {
	// Fast path, taken by all but the last step in each leaf of a scan:
	// the next element is on the same committed leaf page.
	if n := len(c.stack); n > 0 {
		if f := &c.stack[n-1]; f.n == nil && isLeaf(f.p) && f.i+1 < page.CountOf(f.p) && f.i >= 0 {
			f.i++
			key, val, kind = leafElem(f.p, f.i)
			if kind != KindLarge {
				return key, val, kind
			}
			return c.current()
		}
	}
	for len(c.stack) > 0 {
		d := len(c.stack) - 1
		for ; d >= 0; d-- {
			if f := &c.stack[d]; f.i+1 < f.count() {
				break
			}
		}
		if d < 0 {
			// Past the end: park on the last position so Prev comes back.
			c.top().i = c.top().count()
			return nil, nil, 0
		}
		c.stack = c.stack[:d+1]
		c.top().i++
		if !c.descend(false) {
			return nil, nil, 0
		}
		if c.top().count() > 0 {
			return c.current()
		}
	}
	return nil, nil, 0
}

// Prev moves to the previous element; a nil key means the beginning.
func (c *Cursor) Prev() (key, val []byte, kind Kind) {
	for len(c.stack) > 0 {
		d := len(c.stack) - 1
		for ; d >= 0; d-- {
			if c.stack[d].i > 0 {
				break
			}
		}
		if d < 0 {
			c.top().i = -1
			return nil, nil, 0
		}
		c.stack = c.stack[:d+1]
		c.top().i--
		if d < len(c.stack)-1 || !c.top().leaf() {
			if !c.descend(true) {
				return nil, nil, 0
			}
		}
		if f := c.top(); f.count() > 0 && f.i >= 0 {
			return c.current()
		}
	}
	return nil, nil, 0
}

// Seek moves to the first element with a key >= key.
func (c *Cursor) Seek(key []byte) (k, val []byte, kind Kind) {
	if !c.pushRoot() {
		return nil, nil, 0
	}
	for !c.top().leaf() {
		f := c.top()
		if f.n != nil {
			f.i = f.n.childIndex(key)
		} else {
			f.i = searchBranch(f.p, key)
		}
		if !c.pushChild(false) {
			return nil, nil, 0
		}
	}
	i, _ := c.top().search(key)
	c.top().i = i - 1
	return c.Next()
}

// Delete removes the element the cursor is on, which must be of the given
// kind (KindValue matches KindLarge). The next call to Next returns the
// element after the deleted one.
func (c *Cursor) Delete(kind Kind) error {
	if len(c.stack) == 0 || c.top().i < 0 || c.top().i >= c.top().count() {
		return nil
	}
	return c.deleteCurrent(kind)
}

func (c *Cursor) deleteCurrent(kind Kind) error {
	f := c.top()
	if have := f.kind(f.i); (have == KindBucket) != (kind == KindBucket) {
		return ErrKindMismatch
	}
	// Re-find the path through the tree's nodes: another write may have
	// changed the tree since this cursor read its pages.
	key := f.key(f.i)
	if err := c.seekLeaf(key); err != nil {
		return err
	}
	i, ok := c.top().search(key)
	if !ok {
		return nil
	}
	return c.deleteAt(i)
}

// deleteAt removes element i of the leaf at the top of a path that
// seekLeaf has just built (so it reflects the tree's current nodes).
func (c *Cursor) deleteAt(i int) error {
	c.top().i = i
	n, err := c.materialize()
	if err != nil {
		return err
	}
	c.t.freeValue(&n.inodes[i])
	n.bytes -= n.inodes[i].elemSize(n.leaf)
	n.inodes = append(n.inodes[:i], n.inodes[i+1:]...)
	c.top().i = i - 1
	return nil
}

// materialize turns every page on the cursor's path into a node (freeing
// the page) so the leaf can be changed, and returns the leaf node.
func (c *Cursor) materialize() (*node, error) {
	t := c.t
	root := &c.stack[0]
	if root.n == nil {
		if t.rootNode == nil {
			t.rootNode = t.decode(root.p)
			t.s.Free(t.root.ID, 1, t.root.TxID)
		}
		root.n, root.p = t.rootNode, nil
	}
	for d := 1; d < len(c.stack); d++ {
		f := &c.stack[d]
		if f.n != nil {
			continue
		}
		parent := &c.stack[d-1]
		in := &parent.n.inodes[parent.i]
		if in.child == nil {
			in.child = t.decode(f.p)
			r := in.childRef()
			t.s.Free(r.ID, 1, r.TxID)
		}
		f.n, f.p = in.child, nil
	}
	return c.top().n, nil
}
