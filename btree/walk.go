package btree

import (
	"bytes"

	"github.com/cowfile/cowfile/pager/page"
)

// Walker visits the runs of a tree and of every tree nested in it (bucket
// headers) and every large value: the one way to walk a tree, used by
// Check, by the verification of the last commit at open, and by Drop.
type Walker struct {
	Store Store
	// Follow, if set, decides whether a reference is read at all (open
	// follows only references written by the last commit).
	Follow func(r page.Ref) bool
	// Visit is called once for every run read, with its reference and the
	// nesting level of its tree (0 for the tree Walk was called on).
	Visit func(r page.Ref, run []byte, nest int) error
	// Strict checks the order of keys across pages, that each branch key
	// is its child's first key, and that all leaves of a tree are at one
	// depth.
	Strict bool
	// SkipBucket, if set, is asked before descending into a bucket nested
	// directly in the walked tree (nest 0).
	SkipBucket func(key []byte) bool

	seen map[page.ID]struct{}
}

// maxNest bounds bucket nesting during a walk.
const maxNest = 1 << 12

// Walk walks the tree rooted at root. A page reached twice is corruption
// (this also ends cycles).
func (w *Walker) Walk(root page.Ref) error {
	if w.seen == nil {
		w.seen = make(map[page.ID]struct{})
	}
	return w.tree(root, 0)
}

func (w *Walker) tree(root page.Ref, nest int) error {
	if root.IsZero() {
		return nil
	}
	if nest > maxNest {
		return page.Corrupt(root.ID, "buckets nested deeper than %d", maxNest)
	}
	leafDepth := -1
	return w.page(root, 0, nil, nil, nest, &leafDepth)
}

func (w *Walker) follow(r page.Ref) (bool, error) {
	if w.Follow != nil && !w.Follow(r) {
		return false, nil
	}
	if _, dup := w.seen[r.ID]; dup {
		return false, page.Corrupt(r.ID, "page reachable twice (cycle or shared page)")
	}
	w.seen[r.ID] = struct{}{}
	return true, nil
}

// page walks the subtree at r, whose keys must lie in [lo, hi) and whose
// first key must be lo when lo is set (Strict).
func (w *Walker) page(r page.Ref, depth int, lo, hi []byte, nest int, leafDepth *int) error {
	if depth > MaxDepth {
		return page.Corrupt(r.ID, "tree deeper than %d levels", MaxDepth)
	}
	ok, err := w.follow(r)
	if !ok {
		return err
	}
	p, err := w.Store.Read(r, 0)
	if err != nil {
		return err
	}
	if w.Visit != nil {
		if err := w.Visit(r, p, nest); err != nil {
			return err
		}
	}
	n := page.CountOf(p)
	if w.Strict && n > 0 {
		first := p
		_ = first
		var k0, kn []byte
		if isLeaf(p) {
			k0, kn = leafKey(p, 0), leafKey(p, n-1)
		} else {
			k0, kn = branchKey(p, 0), branchKey(p, n-1)
		}
		if lo != nil && !bytes.Equal(k0, lo) {
			return page.Corrupt(r.ID, "first key differs from the parent's key for it")
		}
		if hi != nil && bytes.Compare(kn, hi) >= 0 {
			return page.Corrupt(r.ID, "keys out of order across pages")
		}
	}
	if isLeaf(p) {
		if w.Strict {
			if *leafDepth >= 0 && *leafDepth != depth {
				return page.Corrupt(r.ID, "leaf at depth %d, others at %d", depth, *leafDepth)
			}
			*leafDepth = depth
			if n == 0 && depth > 0 {
				return page.Corrupt(r.ID, "empty leaf below the root")
			}
		}
		return w.leaf(p, nest)
	}
	for i := 0; i < n; i++ {
		var clo, chi []byte = branchKey(p, i), hi
		if i+1 < n {
			chi = branchKey(p, i+1)
		}
		if i == 0 && lo == nil {
			clo = nil // the leftmost key of a tree is free
		}
		if err := w.page(branchRef(p, i), depth+1, clo, chi, nest, leafDepth); err != nil {
			return err
		}
	}
	return nil
}

func (w *Walker) leaf(p []byte, nest int) error {
	for i, n := 0, page.CountOf(p); i < n; i++ {
		k, v, kind := leafElem(p, i)
		switch kind {
		case KindBucket:
			if nest == 0 && w.SkipBucket != nil && w.SkipBucket(k) {
				continue
			}
			if err := w.tree(DecodeBucket(v).Root, nest+1); err != nil {
				return err
			}
		case KindLarge:
			r, vlen := decodeLarge(v)
			ok, err := w.follow(r)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			run, err := w.Store.Read(r, page.TypeValue)
			if err != nil {
				return err
			}
			if page.SpanFor(vlen, w.Store.PageSize()) != uint64(len(run)/w.Store.PageSize()) {
				return page.Corrupt(r.ID, "value of %d bytes in a run of %d bytes", vlen, len(run))
			}
			if w.Visit != nil {
				if err := w.Visit(r, run, nest); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Drop frees every run of the tree rooted at root, of the trees nested in
// it and of its large values. skip, if set, names buckets directly nested in
// root that the caller frees itself.
func Drop(s Store, root page.Ref, skip func(key []byte) bool) error {
	var runs []page.Ref
	var spans []int
	w := Walker{Store: s, SkipBucket: skip, Visit: func(r page.Ref, run []byte, _ int) error {
		runs = append(runs, r)
		spans = append(spans, len(run)/s.PageSize())
		return nil
	}}
	if err := w.Walk(root); err != nil {
		return err
	}
	for i, r := range runs {
		s.Free(r.ID, spans[i], r.TxID)
	}
	return nil
}

// DropAll frees everything the tree holds, including the parts this
// transaction already changed; skip names nested buckets the caller frees
// itself. The tree is empty afterwards.
func (t *Tree) DropAll(skip func(key []byte) bool) error {
	var err error
	if t.rootNode == nil {
		err = Drop(t.s, t.root, skip)
	} else {
		err = t.dropNode(t.rootNode, skip, 0)
	}
	t.root, t.rootNode = page.Ref{}, nil
	t.wc.reset()
	return err
}

func (t *Tree) dropNode(n *node, skip func([]byte) bool, depth int) error {
	if depth > MaxDepth {
		return page.Corrupt(t.root.ID, "tree deeper than %d levels", MaxDepth)
	}
	for i := range n.inodes {
		in := &n.inodes[i]
		var err error
		switch {
		case !n.leaf && in.child != nil:
			err = t.dropNode(in.child, skip, depth+1)
		case !n.leaf:
			err = Drop(t.s, in.childRef(), skip)
		case in.kind == KindLarge:
			t.freeValue(in)
		case in.kind == KindBucket && (skip == nil || !skip(in.key)):
			err = Drop(t.s, DecodeBucket(in.value).Root, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
