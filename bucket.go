package cowfile

import (
	"bytes"
	"sort"

	"github.com/cowfile/cowfile/btree"
)

// Bucket is a collection of key/value pairs, and of nested buckets, inside
// a transaction. Keys are sorted bytewise.
type Bucket struct {
	tx       *Tx
	tree     *btree.Tree
	children map[string]*Bucket // buckets opened through this one in this tx
	seq      uint64
	dirty    bool // header (sequence) changed or bucket created in this tx
	deleted  bool
}

// Writable reports whether the bucket can be changed.
func (b *Bucket) Writable() bool { return b.tx.writable }

// Tx returns the transaction the bucket belongs to.
func (b *Bucket) Tx() *Tx { return b.tx }

func (b *Bucket) check(write bool) error {
	if err := b.tx.check(write); err != nil {
		return err
	}
	if b.deleted {
		return ErrBucketNotFound
	}
	return nil
}

// Get returns the value of key, or nil if key is missing or holds a nested
// bucket. The value points into the file's map (or the transaction's own
// copy) and is valid until the transaction ends; do not modify it.
func (b *Bucket) Get(key []byte) []byte {
	if b.check(false) != nil {
		return nil
	}
	v, kind, found, err := b.tree.Get(key)
	if err != nil {
		b.tx.setErr(err)
		return nil
	}
	if !found || kind == btree.KindBucket {
		return nil
	}
	if v == nil {
		return []byte{}
	}
	return v
}

// Put stores a copy of value under key, replacing any previous value.
func (b *Bucket) Put(key, value []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	return mapErr(b.tree.Put(key, value))
}

// Delete removes key. Deleting a missing key is not an error; deleting a
// key that holds a bucket is ErrIncompatibleValue.
func (b *Bucket) Delete(key []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	_, err := b.tree.Delete(key, btree.KindValue)
	return mapErr(err)
}

// Bucket returns the nested bucket name, or nil.
func (b *Bucket) Bucket(name []byte) *Bucket {
	if b.check(false) != nil {
		return nil
	}
	if c, ok := b.children[string(name)]; ok {
		return c
	}
	v, kind, found, err := b.tree.Get(name)
	if err != nil {
		b.tx.setErr(err)
		return nil
	}
	if !found || kind != btree.KindBucket {
		return nil
	}
	h := btree.DecodeBucket(v)
	c := &Bucket{tx: b.tx, tree: btree.Open(b.tx.s, h.Root), seq: h.Sequence}
	b.addChild(name, c)
	return c
}

func (b *Bucket) addChild(name []byte, c *Bucket) {
	if b.children == nil {
		b.children = map[string]*Bucket{}
	}
	b.children[string(name)] = c
}

// CreateBucket creates the nested bucket name. It fails with
// ErrBucketExists if it exists, ErrIncompatibleValue if name holds a value.
func (b *Bucket) CreateBucket(name []byte) (*Bucket, error) {
	if err := b.check(true); err != nil {
		return nil, err
	}
	if len(name) == 0 {
		return nil, ErrBucketNameRequired
	}
	if err := mapErr(b.tree.CheckKey(name)); err != nil {
		return nil, err
	}
	_, kind, found, err := b.tree.Get(name)
	switch {
	case err != nil:
		return nil, err
	case found && kind == btree.KindBucket:
		return nil, ErrBucketExists
	case found:
		return nil, ErrIncompatibleValue
	}
	if err := b.tree.PutBucket(name, btree.BucketHeader{}); err != nil {
		return nil, mapErr(err)
	}
	c := &Bucket{tx: b.tx, tree: btree.Open(b.tx.s, btree.BucketHeader{}.Root), dirty: true}
	b.addChild(name, c)
	return c, nil
}

// CreateBucketIfNotExists returns the nested bucket name, creating it if
// it is missing.
func (b *Bucket) CreateBucketIfNotExists(name []byte) (*Bucket, error) {
	if err := b.check(true); err != nil {
		return nil, err
	}
	if c := b.Bucket(name); c != nil {
		return c, nil
	}
	if b.tx.err != nil {
		return nil, b.tx.err
	}
	return b.CreateBucket(name)
}

// DeleteBucket deletes the nested bucket name and everything in it.
func (b *Bucket) DeleteBucket(name []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	if len(name) == 0 {
		return ErrBucketNameRequired
	}
	c := b.Bucket(name)
	if c == nil {
		if b.tx.err != nil {
			return b.tx.err
		}
		if _, _, found, _ := b.tree.Get(name); found {
			return ErrIncompatibleValue
		}
		return ErrBucketNotFound
	}
	if err := c.drop(); err != nil {
		return err
	}
	delete(b.children, string(name))
	_, err := b.tree.Delete(name, btree.KindBucket)
	return mapErr(err)
}

// drop frees every page of the bucket and of the buckets in it.
func (b *Bucket) drop() error {
	for _, c := range b.children {
		if err := c.drop(); err != nil {
			return err
		}
	}
	err := b.tree.DropAll(func(key []byte) bool {
		_, open := b.children[string(key)]
		return open
	})
	b.deleted, b.children = true, nil
	return err
}

// ForEach calls fn for every key in order; nested buckets come with a nil
// value. fn must not change the bucket.
func (b *Bucket) ForEach(fn func(k, v []byte) error) error {
	if err := b.check(false); err != nil {
		return err
	}
	c := b.tree.Cursor()
	for k, v, kind := c.First(); k != nil; k, v, kind = c.Next() {
		if kind == btree.KindBucket {
			v = nil
		} else if v == nil {
			v = []byte{}
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if err := c.Err(); err != nil {
		b.tx.setErr(err)
		return err
	}
	return nil
}

// Sequence returns the bucket's sequence counter.
func (b *Bucket) Sequence() uint64 { return b.seq }

// SetSequence sets the bucket's sequence counter.
func (b *Bucket) SetSequence(v uint64) error {
	if err := b.check(true); err != nil {
		return err
	}
	if b == b.tx.root {
		return ErrIncompatibleValue
	}
	b.seq, b.dirty = v, true
	return nil
}

// NextSequence increments the sequence counter and returns the new value.
func (b *Bucket) NextSequence() (uint64, error) {
	if err := b.SetSequence(b.seq + 1); err != nil {
		return 0, err
	}
	return b.seq, nil
}

// Cursor returns a cursor over the bucket, valid while the transaction is
// open.
func (b *Bucket) Cursor() *Cursor { return &Cursor{b: b, c: b.tree.Cursor()} }

// changed reports whether the bucket or anything under it changed.
func (b *Bucket) changed() bool {
	if b.dirty || b.tree.Dirty() {
		return true
	}
	for _, c := range b.children {
		if c.changed() {
			return true
		}
	}
	return false
}

// spill writes the changed buckets under b, deepest first, and records
// their new roots in b's tree. Children go in name order so the same
// writes always produce the same file.
func (b *Bucket) spill() error {
	names := make([]string, 0, len(b.children))
	for name, c := range b.children {
		if c.changed() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		c := b.children[name]
		if err := c.spill(); err != nil {
			return err
		}
		root, err := c.tree.Spill()
		if err != nil {
			return err
		}
		if err := b.tree.PutBucket([]byte(name), btree.BucketHeader{Root: root, Sequence: c.seq}); err != nil {
			return err
		}
		c.dirty = false
	}
	return nil
}

// Cursor iterates over a bucket in key order. Nested buckets appear with a
// nil value. A cursor's steps do not allocate.
type Cursor struct {
	b *Bucket
	c *btree.Cursor
}

// Bucket returns the bucket the cursor walks.
func (c *Cursor) Bucket() *Bucket { return c.b }

func (c *Cursor) out(k, v []byte, kind btree.Kind) ([]byte, []byte) {
	if k == nil {
		c.b.tx.setErr(c.c.Err())
		return nil, nil
	}
	if kind == btree.KindBucket {
		return k, nil
	}
	if v == nil {
		v = empty
	}
	return k, v
}

var empty = []byte{}

// First moves to the first key.
func (c *Cursor) First() (key, value []byte) {
	if c.b.check(false) != nil {
		return nil, nil
	}
	return c.out(c.c.First())
}

// Last moves to the last key.
func (c *Cursor) Last() (key, value []byte) {
	if c.b.check(false) != nil {
		return nil, nil
	}
	return c.out(c.c.Last())
}

// Next moves to the next key; nil at the end.
func (c *Cursor) Next() (key, value []byte) {
	if c.b.check(false) != nil {
		return nil, nil
	}
	return c.out(c.c.Next())
}

// Prev moves to the previous key; nil at the beginning.
func (c *Cursor) Prev() (key, value []byte) {
	if c.b.check(false) != nil {
		return nil, nil
	}
	return c.out(c.c.Prev())
}

// Seek moves to the first key >= seek; nil if there is none.
func (c *Cursor) Seek(seek []byte) (key, value []byte) {
	if c.b.check(false) != nil {
		return nil, nil
	}
	return c.out(c.c.Seek(seek))
}

// Delete removes the key the cursor is on; the following Next returns the
// key after it. A nested bucket is not deleted this way
// (ErrIncompatibleValue): use DeleteBucket.
func (c *Cursor) Delete() error {
	if err := c.b.check(true); err != nil {
		return err
	}
	return mapErr(c.c.Delete(btree.KindValue))
}

var _ = bytes.Equal
