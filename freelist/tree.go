package freelist

import (
	"slices"

	"github.com/cowfile/cowfile/pager/page"
)

// tree is an in-memory B+tree of non-overlapping entries keyed by Entry.ID.
// Every node also records the largest Span in its subtree, so that the
// lowest entry with Span >= n is found in O(log n) (first-fit allocation of
// runs) instead of by a scan.
//
// Items live in slices of plain values: the garbage collector never scans a
// leaf, which matters when the free set holds a million extents.
type tree struct {
	root *node
	n    int // number of entries
}

const (
	maxLeaf   = 64          // entries per leaf
	maxBranch = 64          // children per branch
	minFill   = maxLeaf / 4 // below this a node tries to merge with a neighbour
	bulkFill  = 48          // fill of nodes built by push (room to grow)
)

// node is a leaf (kids == nil) or a branch.
//
// In a branch, keys[i] is a lower bound of every ID below kids[i] (i > 0),
// and kids[i-1] holds only IDs below keys[i]. keys[0] carries no meaning:
// the search clamps to kid 0. kmax[i] is the largest Span below kids[i]; it
// sits in the branch so recomputing a branch's max touches no other node.
type node struct {
	items []Entry // leaf: sorted by ID
	keys  []page.ID
	kids  []*node
	kmax  []uint32
	max   uint32 // largest Span in the subtree (exact, never stale)
}

func newLeaf() *node { return &node{items: make([]Entry, 0, maxLeaf+1)} }

func newBranch() *node {
	return &node{
		keys: make([]page.ID, 0, maxBranch+1),
		kids: make([]*node, 0, maxBranch+1),
		kmax: make([]uint32, 0, maxBranch+1),
	}
}

func (n *node) leaf() bool { return n.kids == nil }

// size is the number of items (leaf) or children (branch).
func (n *node) size() int {
	if n.leaf() {
		return len(n.items)
	}
	return len(n.kids)
}

// firstKey is a lower bound of every ID in the subtree, exact for leaves.
func (n *node) firstKey() page.ID {
	if n.leaf() {
		return n.items[0].ID
	}
	return n.keys[0]
}

func (n *node) appendKid(key page.ID, kid *node) {
	n.keys = append(n.keys, key)
	n.kids = append(n.kids, kid)
	n.kmax = append(n.kmax, kid.max)
	n.max = max(n.max, kid.max)
}

func (n *node) recomputeMax() {
	n.max = 0
	if n.leaf() {
		for i := range n.items {
			n.max = max(n.max, n.items[i].Span)
		}
		return
	}
	for _, m := range n.kmax {
		n.max = max(n.max, m)
	}
}

// route returns the index of the child whose range holds id.
func (n *node) route(id page.ID) int {
	// keys[0] is not searched: it carries no meaning and can exceed
	// keys[1] (kid 0 may have split below it), and a binary search over
	// an unsorted slice would route to the wrong child.
	i, found := slices.BinarySearch(n.keys[1:], id)
	if found {
		return i + 1
	}
	return i
}

// search returns the index of the first item with ID >= id, and whether it
// is equal.
func (n *node) search(id page.ID) (int, bool) {
	return slices.BinarySearchFunc(n.items, id, func(e Entry, id page.ID) int {
		switch {
		case e.ID < id:
			return -1
		case e.ID > id:
			return 1
		}
		return 0
	})
}

func (t *tree) len() int { return t.n }

// insert adds e. The caller guarantees that no entry has the same ID. An
// entry above every other one (a load adds them in order) is pushed along
// the right edge, without a search.
func (t *tree) insert(e Entry) {
	if l, ok := t.last(); !ok || l.ID < e.ID {
		t.push(e)
		return
	}
	t.grow(t.root.insert(e))
	t.n++
}

// grow puts a new root above the old one and right, its new sibling, if
// the root split (right is non-nil).
func (t *tree) grow(right *node) {
	if right == nil {
		return
	}
	left := t.root
	t.root = newBranch()
	t.root.appendKid(left.firstKey(), left)
	t.root.appendKid(right.firstKey(), right)
}

// push adds e, whose ID is above every entry's, along the right edge
// without a search: a load that adds entries in increasing order (a
// checkpoint, the segments of a sweep) builds its tree in O(1) amortized
// per entry. A rightmost node holding bulkFill or more is left as it is
// and a new one started, so nodes built this way have room to grow.
func (t *tree) push(e Entry) {
	if t.root == nil {
		t.root = newLeaf()
	}
	t.grow(t.root.push(e))
	t.n++
}

// push adds e at the right edge below n and returns the new right sibling
// of n that holds e, if one was started.
func (n *node) push(e Entry) *node {
	if n.leaf() {
		if len(n.items) >= bulkFill {
			right := newLeaf()
			right.items = append(right.items, e)
			right.max = e.Span
			return right
		}
		n.items = append(n.items, e)
		n.max = max(n.max, e.Span)
		return nil
	}
	i := len(n.kids) - 1
	kid := n.kids[i]
	right := kid.push(e)
	n.kmax[i] = kid.max
	switch {
	case right == nil:
		n.max = max(n.max, kid.max)
	case len(n.kids) >= bulkFill:
		up := newBranch()
		up.appendKid(right.firstKey(), right)
		return up
	default:
		n.appendKid(right.firstKey(), right)
	}
	return nil
}

// extendLast adds span pages to the entry with the largest ID (a free
// extent that grows at its end, as adjacent extents of a load coalesce).
func (t *tree) extendLast(span uint32) { t.root.extendLast(span) }

func (n *node) extendLast(span uint32) uint32 {
	if n.leaf() {
		e := &n.items[len(n.items)-1]
		e.Span += span
		n.max = max(n.max, e.Span)
		return n.max
	}
	i := len(n.kids) - 1
	n.kmax[i] = n.kids[i].extendLast(span)
	n.max = max(n.max, n.kmax[i])
	return n.max
}

// insert adds e below n and returns the new right sibling if n split.
func (n *node) insert(e Entry) *node {
	if n.leaf() {
		i, _ := n.search(e.ID)
		n.items = slices.Insert(n.items, i, e)
		n.max = max(n.max, e.Span)
		if len(n.items) > maxLeaf {
			return n.split()
		}
		return nil
	}
	i := n.route(e.ID)
	kid := n.kids[i]
	right := kid.insert(e)
	n.kmax[i] = kid.max
	if right != nil {
		n.keys = slices.Insert(n.keys, i+1, right.firstKey())
		n.kids = slices.Insert(n.kids, i+1, right)
		n.kmax = slices.Insert(n.kmax, i+1, right.max)
	}
	n.max = max(n.max, e.Span)
	if len(n.kids) > maxBranch {
		return n.split()
	}
	return nil
}

// split moves the upper half of n into a new node and returns it.
func (n *node) split() *node {
	if n.leaf() {
		half := len(n.items) / 2
		right := newLeaf()
		right.items = append(right.items, n.items[half:]...)
		n.items = n.items[:half]
		n.recomputeMax()
		right.recomputeMax()
		return right
	}
	half := len(n.kids) / 2
	right := newBranch()
	right.keys = append(right.keys, n.keys[half:]...)
	right.kids = append(right.kids, n.kids[half:]...)
	right.kmax = append(right.kmax, n.kmax[half:]...)
	clear(n.kids[half:]) // drop references for the collector
	n.keys, n.kids, n.kmax = n.keys[:half], n.kids[:half], n.kmax[:half]
	n.recomputeMax()
	right.recomputeMax()
	return right
}

// delete removes the entry with this ID and returns it.
func (t *tree) delete(id page.ID) (Entry, bool) {
	if t.root == nil {
		return Entry{}, false
	}
	e, ok := t.root.delete(id)
	if !ok {
		return e, false
	}
	t.n--
	// Shrink the root while it is a branch with fewer than two children.
	for !t.root.leaf() && len(t.root.kids) <= 1 {
		if len(t.root.kids) == 0 {
			t.root = newLeaf()
		} else {
			t.root = t.root.kids[0]
		}
	}
	return e, true
}

func (n *node) delete(id page.ID) (Entry, bool) {
	if n.leaf() {
		i, found := n.search(id)
		if !found {
			return Entry{}, false
		}
		e := n.items[i]
		n.items = slices.Delete(n.items, i, i+1)
		if e.Span == n.max {
			n.recomputeMax()
		}
		return e, true
	}
	i := n.route(id)
	kid := n.kids[i]
	e, ok := kid.delete(id)
	if !ok {
		return e, false
	}
	n.kmax[i] = kid.max
	n.fixKid(i)
	n.recomputeMax()
	return e, true
}

// fixKid drops kid i if it is empty, or merges it with a neighbour if it is
// under-full and the two fit in one node, so that nodes stay reasonably
// dense after many deletions.
func (n *node) fixKid(i int) {
	kid := n.kids[i]
	limit := maxLeaf
	if !kid.leaf() {
		limit = maxBranch
	}
	switch {
	case kid.size() == 0:
		n.removeKid(i)
	case kid.size() >= minFill:
	case i+1 < len(n.kids) && kid.size()+n.kids[i+1].size() <= limit:
		n.mergeKids(i)
	case i > 0 && kid.size()+n.kids[i-1].size() <= limit:
		n.mergeKids(i - 1)
	}
}

func (n *node) removeKid(i int) {
	n.keys = slices.Delete(n.keys, i, i+1)
	n.kids = slices.Delete(n.kids, i, i+1)
	n.kmax = slices.Delete(n.kmax, i, i+1)
}

// mergeKids appends kid i+1 to kid i and removes kid i+1.
func (n *node) mergeKids(i int) {
	a, b := n.kids[i], n.kids[i+1]
	if a.leaf() {
		a.items = append(a.items, b.items...)
	} else {
		// b.keys[0] may be meaningless; the separator in n is a valid bound.
		a.keys = append(a.keys, n.keys[i+1])
		a.keys = append(a.keys, b.keys[1:]...)
		a.kids = append(a.kids, b.kids...)
		a.kmax = append(a.kmax, b.kmax...)
	}
	a.max = max(a.max, b.max)
	n.kmax[i] = a.max
	n.removeKid(i + 1)
}

// replace puts e in the place of the entry with ID old and reports
// whether there was one. e must keep the order: its ID above that of the
// entry before old and below that of the entry after it, as for a free
// extent trimmed at its start or grown at either end. It costs one
// descent, where delete and insert cost two and may split or merge nodes.
func (t *tree) replace(old page.ID, e Entry) bool {
	if t.root == nil {
		return false
	}
	return t.root.replace(old, e)
}

func (n *node) replace(old page.ID, e Entry) bool {
	if n.leaf() {
		i, found := n.search(old)
		if !found {
			return false
		}
		was := n.items[i].Span
		n.items[i] = e
		n.setMax(was, e.Span)
		return true
	}
	i := n.route(old)
	kid := n.kids[i]
	was := n.kmax[i]
	if !kid.replace(old, e) {
		return false
	}
	// The bounds around kid i must admit e.ID. Kept order makes the
	// moved ones valid: every ID of kid i-1 is below e.ID, every ID of
	// kid i+1 above it.
	if i > 0 && e.ID < n.keys[i] {
		n.keys[i] = e.ID
	}
	if i+1 < len(n.keys) && n.keys[i+1] <= e.ID {
		n.keys[i+1] = e.ID + 1
	}
	n.kmax[i] = kid.max
	n.setMax(was, kid.max)
	return true
}

// setMax updates n.max after one of its spans (an item's, or a kid's
// max) changed from was to now.
func (n *node) setMax(was, now uint32) {
	switch {
	case now >= n.max:
		n.max = now
	case was == n.max:
		n.recomputeMax()
	}
}

// floor returns the entry with the largest ID <= id.
func (t *tree) floor(id page.ID) (Entry, bool) {
	if t.root == nil {
		return Entry{}, false
	}
	return t.root.floor(id)
}

func (n *node) floor(id page.ID) (Entry, bool) {
	if n.leaf() {
		i, found := n.search(id)
		if found {
			return n.items[i], true
		}
		if i == 0 {
			return Entry{}, false
		}
		return n.items[i-1], true
	}
	// Children left of the routed one hold only smaller IDs, so at most
	// one child comes back empty-handed before one answers.
	for i := n.route(id); i >= 0; i-- {
		if e, ok := n.kids[i].floor(id); ok {
			return e, true
		}
	}
	return Entry{}, false
}

// ceil returns the entry with the smallest ID >= id.
func (t *tree) ceil(id page.ID) (Entry, bool) {
	if t.root == nil {
		return Entry{}, false
	}
	return t.root.ceil(id)
}

func (n *node) ceil(id page.ID) (Entry, bool) {
	if n.leaf() {
		i, _ := n.search(id)
		if i == len(n.items) {
			return Entry{}, false
		}
		return n.items[i], true
	}
	for i := n.route(id); i < len(n.kids); i++ {
		if e, ok := n.kids[i].ceil(id); ok {
			return e, true
		}
	}
	return Entry{}, false
}

// get returns the entry with exactly this ID.
func (t *tree) get(id page.ID) (Entry, bool) {
	e, ok := t.floor(id)
	return e, ok && e.ID == id
}

// last returns the entry with the largest ID: the end of the right edge.
func (t *tree) last() (Entry, bool) {
	n := t.root
	if n == nil {
		return Entry{}, false
	}
	for !n.leaf() {
		n = n.kids[len(n.kids)-1]
	}
	if len(n.items) == 0 {
		return Entry{}, false
	}
	return n.items[len(n.items)-1], true
}

// firstFit returns the entry with the lowest ID whose Span is >= span.
func (t *tree) firstFit(span uint32) (Entry, bool) {
	if t.root == nil {
		return Entry{}, false
	}
	return t.root.firstFit(span)
}

func (n *node) firstFit(span uint32) (Entry, bool) {
	if n.max < span {
		return Entry{}, false
	}
	if n.leaf() {
		for _, e := range n.items {
			if e.Span >= span {
				return e, true
			}
		}
		return Entry{}, false
	}
	for i, m := range n.kmax {
		if m >= span {
			if e, ok := n.kids[i].firstFit(span); ok {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// ascend calls fn for every entry in ID order until fn returns false.
func (t *tree) ascend(fn func(Entry) bool) bool {
	if t.root == nil {
		return true
	}
	return t.root.ascend(fn)
}

func (n *node) ascend(fn func(Entry) bool) bool {
	if n.leaf() {
		for _, e := range n.items {
			if !fn(e) {
				return false
			}
		}
		return true
	}
	for _, kid := range n.kids {
		if !kid.ascend(fn) {
			return false
		}
	}
	return true
}

// cursor walks a tree in ID order; it lets two trees be merged in one pass.
type cursor struct {
	stack []frame
}

type frame struct {
	n *node
	i int
}

func (t *tree) first() *cursor {
	c := &cursor{}
	if t.root != nil {
		c.descend(t.root)
	}
	return c
}

// seek returns a cursor at the first entry with ID >= id.
func (t *tree) seek(id page.ID) *cursor {
	c := &cursor{}
	t.seekInto(c, id)
	return c
}

// seekInto positions c at the first entry with ID >= id, reusing its stack.
func (t *tree) seekInto(c *cursor, id page.ID) {
	c.stack = c.stack[:0]
	n := t.root
	if n == nil {
		return
	}
	for !n.leaf() {
		i := n.route(id)
		c.stack = append(c.stack, frame{n, i})
		n = n.kids[i]
	}
	i, _ := n.search(id)
	c.stack = append(c.stack, frame{n, i})
	if i == len(n.items) {
		c.advance()
	}
}

// descend pushes n and its leftmost descendants, skipping empty leaves.
func (c *cursor) descend(n *node) {
	for !n.leaf() {
		c.stack = append(c.stack, frame{n, 0})
		n = n.kids[0]
	}
	c.stack = append(c.stack, frame{n, 0})
	if len(n.items) == 0 {
		c.advance()
	}
}

func (c *cursor) valid() bool { return len(c.stack) > 0 }

func (c *cursor) entry() Entry {
	top := c.stack[len(c.stack)-1]
	return top.n.items[top.i]
}

func (c *cursor) next() {
	top := &c.stack[len(c.stack)-1]
	top.i++
	if top.i < len(top.n.items) {
		return
	}
	c.advance()
}

// advance pops the exhausted leaf and moves to the next leaf, if any.
func (c *cursor) advance() {
	c.stack = c.stack[:len(c.stack)-1]
	for len(c.stack) > 0 {
		top := &c.stack[len(c.stack)-1]
		top.i++
		if top.i < len(top.n.kids) {
			c.descend(top.n.kids[top.i])
			return
		}
		c.stack = c.stack[:len(c.stack)-1]
	}
}
