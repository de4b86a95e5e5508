package btree

import (
	"bytes"

	"github.com/cowfile/cowfile/pager/page"
)

// Differ compares two committed trees of one file (say, a snapshot's and
// the current one) in time proportional to what differs: the walk merges
// both trees in key order and never descends into a subtree whose
// reference (page id and checksum) is the same on both sides, since a
// Merkle reference names its whole subtree.
type Differ struct {
	// A and B read the two sides (they may be different transactions).
	A, B Store
	// Key, if set, receives every key whose value differs, in key order:
	// old is nil for a key only in B, new is nil for a key only in A. For a
	// nested bucket only on one side, Key is called with key == nil and the
	// bucket's path, then for every key inside it.
	Key func(path [][]byte, key, old, new []byte) error
	// Page, if set, receives every run read on side 0 (A) or 1 (B) that is
	// not inside a subtree shared with the other side. A run can appear on
	// both sides when the trees hold it at different places; callers that
	// need exact sets intersect them.
	Page func(side int, r page.Ref, span int) error
	// Reads counts the runs read, for cost tests.
	Reads int
}

// ditem is the next thing on one side of the merge: an unexpanded subtree
// covering keys [lo, hi) (nil lo is -inf, nil hi is +inf), or an element.
type ditem struct {
	ref    page.Ref
	lo, hi []byte
	elem   bool
	key    []byte
	val    []byte
	kind   Kind
}

type dside struct {
	s     Store
	n     int     // 0 or 1
	stack []ditem // next item last
}

func (d *dside) peek() *ditem {
	if len(d.stack) == 0 {
		return nil
	}
	return &d.stack[len(d.stack)-1]
}

func (d *dside) pop() ditem {
	it := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return it
}

// Diff compares the trees rooted at a and b. path names them for Key.
func (df *Differ) Diff(path [][]byte, a, b page.Ref) error {
	if a == b {
		return nil
	}
	sa := &dside{s: df.A, n: 0}
	sb := &dside{s: df.B, n: 1}
	if !a.IsZero() {
		sa.stack = append(sa.stack, ditem{ref: a})
	}
	if !b.IsZero() {
		sb.stack = append(sb.stack, ditem{ref: b})
	}
	for {
		x, y := sa.peek(), sb.peek()
		switch {
		case x == nil && y == nil:
			return nil
		case x != nil && y != nil && !x.elem && !y.elem && sameRef(x.ref, y.ref):
			sa.pop()
			sb.pop()
		case y == nil || (x != nil && before(x, y)):
			if err := df.only(sa, path, sa.pop()); err != nil {
				return err
			}
		case x == nil || before(y, x):
			if err := df.only(sb, path, sb.pop()); err != nil {
				return err
			}
		case x.elem && y.elem:
			if err := df.pair(path, sa.pop(), sb.pop()); err != nil {
				return err
			}
		case !x.elem && (y.elem || expandFirst(x, y)):
			if err := df.expand(sa); err != nil {
				return err
			}
		default:
			if err := df.expand(sb); err != nil {
				return err
			}
		}
	}
}

func sameRef(a, b page.Ref) bool { return a.ID == b.ID && a.Checksum == b.Checksum }

// low is the smallest key an item can hold (nil: no bound).
func low(it *ditem) []byte {
	if it.elem {
		return it.key
	}
	return it.lo
}

// before reports whether every key of x is below every key of y.
func before(x, y *ditem) bool {
	ylo := low(y)
	if ylo == nil {
		return false
	}
	if x.elem {
		return bytes.Compare(x.key, ylo) < 0
	}
	return x.hi != nil && bytes.Compare(x.hi, ylo) <= 0
}

// expandFirst picks which of two overlapping subtrees to open: the one
// that starts earlier, or, starting together, the wider one.
func expandFirst(x, y *ditem) bool {
	if c := cmpLow(x.lo, y.lo); c != 0 {
		return c < 0
	}
	return cmpHigh(x.hi, y.hi) >= 0
}

func cmpLow(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return bytes.Compare(a, b)
}

func cmpHigh(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// expand replaces the subtree on top of d with its children or elements.
func (df *Differ) expand(d *dside) error {
	it := d.pop()
	p, err := d.s.Read(it.ref, 0)
	if err != nil {
		return err
	}
	df.Reads++
	if df.Page != nil {
		if err := df.Page(d.n, it.ref, 1); err != nil {
			return err
		}
	}
	if len(d.stack) > 1<<20 {
		return page.Corrupt(it.ref.ID, "tree too large to compare (cycle?)")
	}
	n := page.CountOf(p)
	if isLeaf(p) {
		for i := n - 1; i >= 0; i-- {
			k, v, kind := leafElem(p, i)
			d.stack = append(d.stack, ditem{elem: true, key: k, val: v, kind: kind})
		}
		return nil
	}
	for i := n - 1; i >= 0; i-- {
		hi := it.hi
		if i+1 < n {
			hi = branchKey(p, i+1)
		}
		d.stack = append(d.stack, ditem{ref: branchRef(p, i), lo: branchKey(p, i), hi: hi})
	}
	return nil
}

// only reports an item present on one side only.
func (df *Differ) only(d *dside, path [][]byte, it ditem) error {
	if !it.elem {
		// The whole subtree is on one side: walk it.
		sub := &dside{s: d.s, n: d.n, stack: []ditem{it}}
		for len(sub.stack) > 0 {
			if !sub.peek().elem {
				if err := df.expand(sub); err != nil {
					return err
				}
				continue
			}
			if err := df.onlyElem(sub, path, sub.pop()); err != nil {
				return err
			}
		}
		return nil
	}
	return df.onlyElem(d, path, it)
}

func (df *Differ) onlyElem(d *dside, path [][]byte, it ditem) error {
	switch it.kind {
	case KindBucket:
		sub := append(path[:len(path):len(path)], it.key)
		if df.Key != nil {
			if err := df.emit(d.n, sub, nil, []byte{}); err != nil {
				return err
			}
		}
		root := DecodeBucket(it.val).Root
		if d.n == 0 {
			return df.Diff(sub, root, page.Ref{})
		}
		return df.Diff(sub, page.Ref{}, root)
	case KindLarge:
		r, n := decodeLarge(it.val)
		if df.Page != nil {
			if err := df.Page(d.n, r, int(page.SpanFor(n, d.s.PageSize()))); err != nil {
				return err
			}
		}
		if df.Key == nil {
			return nil
		}
		v, err := df.large(d.s, it.val)
		if err != nil {
			return err
		}
		return df.emit(d.n, path, it.key, v)
	}
	if df.Key == nil {
		return nil
	}
	return df.emit(d.n, path, it.key, it.val)
}

// emit reports v as deleted (side 0) or added (side 1).
func (df *Differ) emit(side int, path [][]byte, key, v []byte) error {
	if side == 0 {
		return df.Key(path, key, v, nil)
	}
	return df.Key(path, key, nil, v)
}

func (df *Differ) large(s Store, v []byte) ([]byte, error) {
	df.Reads++
	t := Tree{s: s}
	return t.readLarge(decodeLarge(v))
}

// pair compares two elements with the same key.
func (df *Differ) pair(path [][]byte, x, y ditem) error {
	switch {
	case x.kind == KindBucket && y.kind == KindBucket:
		return df.Diff(append(path[:len(path):len(path)], x.key), DecodeBucket(x.val).Root, DecodeBucket(y.val).Root)
	case x.kind == KindBucket || y.kind == KindBucket:
		// A bucket replaced by a value or the other way round.
		if err := df.onlyElem(&dside{s: df.A, n: 0}, path, x); err != nil {
			return err
		}
		return df.onlyElem(&dside{s: df.B, n: 1}, path, y)
	}
	if x.kind == KindLarge && y.kind == KindLarge {
		if rx, _ := decodeLarge(x.val); sameRef(rx, page.GetRef(y.val)) {
			return nil // the same run
		}
	}
	if x.kind == KindLarge && df.Page != nil {
		r, n := decodeLarge(x.val)
		if err := df.Page(0, r, int(page.SpanFor(n, df.A.PageSize()))); err != nil {
			return err
		}
	}
	if y.kind == KindLarge && df.Page != nil {
		r, n := decodeLarge(y.val)
		if err := df.Page(1, r, int(page.SpanFor(n, df.B.PageSize()))); err != nil {
			return err
		}
	}
	if df.Key == nil {
		return nil
	}
	vx, vy := x.val, y.val
	var err error
	if x.kind == KindLarge {
		if vx, err = df.large(df.A, x.val); err != nil {
			return err
		}
	}
	if y.kind == KindLarge {
		if vy, err = df.large(df.B, y.val); err != nil {
			return err
		}
	}
	if bytes.Equal(vx, vy) {
		return nil
	}
	return df.Key(path, x.key, vx, vy)
}
