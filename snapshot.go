package cowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/pager/page"
)

// Snapshot errors.
var (
	ErrSnapshotExists   = errors.New("cowfile: snapshot already exists")
	ErrSnapshotNotFound = errors.New("cowfile: snapshot not found")
)

// SnapshotInfo describes a named snapshot.
type SnapshotInfo struct {
	Name    string
	TxID    uint64 // the committed version it pins
	Created time.Time
	Pages   int // pages that only this snapshot keeps alive (what deleting it would free)
}

// snapRec is a snapshot catalog entry: the pinned version's bucket catalog
// root, its txid, and when it was made. Encoded as 40 bytes: root Ref (24)
// | txid u64 | created unix nanoseconds i64.
type snapRec struct {
	root    page.Ref
	txid    page.TxID
	created int64
}

const snapRecSize = page.RefSize + 16

func (r snapRec) encode() []byte {
	b := make([]byte, snapRecSize)
	page.PutRef(b, r.root)
	binary.LittleEndian.PutUint64(b[24:], uint64(r.txid))
	binary.LittleEndian.PutUint64(b[32:], uint64(r.created))
	return b
}

func decodeSnapRec(b []byte, where page.ID) (snapRec, error) {
	if len(b) != snapRecSize {
		return snapRec{}, page.Corrupt(where, "snapshot record of %d bytes", len(b))
	}
	return snapRec{
		root:    page.GetRef(b),
		txid:    page.TxID(binary.LittleEndian.Uint64(b[24:])),
		created: int64(binary.LittleEndian.Uint64(b[32:])),
	}, nil
}

// autoName is the name of the automatic snapshot of version txid kept by
// Options.KeepVersions.
func autoName(txid page.TxID) string { return "@" + strconv.FormatUint(uint64(txid), 10) }

// loadSnapshots reads the snapshot catalog of the chosen version at open.
func (db *DB) loadSnapshots(s *store, root page.Ref) error {
	db.snaps = map[string]snapRec{}
	c := btree.Open(s, root).Cursor()
	for k, v, _ := c.First(); k != nil; k, v, _ = c.Next() {
		r, err := decodeSnapRec(v, root.ID)
		if err != nil {
			return err
		}
		if r.txid > db.meta.TxID || r.root.TxID > r.txid {
			return page.Corrupt(root.ID, "snapshot %q pins tx %d, past the file's tx %d", k, r.txid, db.meta.TxID)
		}
		db.snaps[string(k)] = r
	}
	return c.Err()
}

// snapTxIDsLocked lists the txids pinned by snapshots (db.mu held).
func (db *DB) snapTxIDsLocked() []page.TxID {
	var r []page.TxID
	for _, s := range db.snaps {
		r = append(r, s.txid)
	}
	return r
}

// snapOp is a snapshot change a write transaction makes at commit.
type snapOp struct {
	name   string
	delete bool
}

// CreateSnapshot pins the latest committed version under name: its pages
// stay readable, through ViewSnapshot, until DeleteSnapshot. It costs one
// small commit. Names starting with '@' are reserved for the automatic
// snapshots of Options.KeepVersions.
func (db *DB) CreateSnapshot(name string) error {
	if name == "" || strings.HasPrefix(name, "@") {
		return fmt.Errorf("%w: snapshot name %q (empty, or '@' reserved)", ErrInvalidOptions, name)
	}
	return db.Update(func(tx *Tx) error {
		if _, ok := tx.snapshot(name); ok {
			return fmt.Errorf("%w: %q", ErrSnapshotExists, name)
		}
		tx.snapOps = append(tx.snapOps, snapOp{name: name})
		return nil
	})
}

// DeleteSnapshot drops the snapshot name; the pages only it kept alive
// become reusable once no reader sees them.
func (db *DB) DeleteSnapshot(name string) error {
	return db.Update(func(tx *Tx) error {
		if _, ok := tx.snapshot(name); !ok {
			return fmt.Errorf("%w: %q", ErrSnapshotNotFound, name)
		}
		tx.snapOps = append(tx.snapOps, snapOp{name: name, delete: true})
		return nil
	})
}

// Snapshots lists the snapshots, sorted by TxID. It reads the free-space
// state of the latest commit to count each snapshot's own pages: O(free
// and pending entries). It does not wait for a write transaction, only for
// a commit in progress.
func (db *DB) Snapshots() ([]SnapshotInfo, error) {
	db.chainMu.Lock() // no commit may overwrite the latest free-space log meanwhile
	defer db.chainMu.Unlock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil, ErrDatabaseNotOpen
	}
	var out []SnapshotInfo
	for name, r := range db.snaps {
		out = append(out, SnapshotInfo{Name: name, TxID: uint64(r.txid), Created: time.Unix(0, r.created)})
	}
	m := db.meta
	mp := db.p.Acquire()
	db.mu.Unlock()
	defer mp.Release()
	s := &store{db: db, m: mp, ps: m.PageSize, hwm: m.HWM}
	fl, err := freelist.Load(m.Freelist, m.PageSize, s.readFree)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TxID != out[j].TxID {
			return out[i].TxID < out[j].TxID
		}
		return out[i].Name < out[j].Name
	})
	// A pending page counts for a snapshot when that snapshot is the only
	// one inside the page's lifespan [born, freed).
	txs := make([]uint64, len(out))
	for i := range out {
		txs[i] = out[i].TxID
	}
	fl.Entries(func(e freelist.Entry) bool {
		if e.Freed == 0 {
			return true
		}
		i := sort.Search(len(txs), func(i int) bool { return txs[i] >= uint64(e.Born) })
		j := sort.Search(len(txs), func(i int) bool { return txs[i] >= uint64(e.Freed) })
		if j-i == 1 {
			out[i].Pages += int(e.Span)
		}
		return true
	})
	return out, nil
}

// ViewSnapshot runs fn in a read-only transaction on the snapshot's
// version. Buckets, cursors, Check and WriteTo all work on it.
func (db *DB) ViewSnapshot(name string, fn func(*Tx) error) error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrDatabaseNotOpen
	}
	r, ok := db.snaps[name]
	if !ok {
		db.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrSnapshotNotFound, name)
	}
	m := db.meta
	m.TxID, m.Root, m.Freelist, m.Snapshots = r.txid, r.root, page.Ref{}, page.Ref{}
	tx := &Tx{db: db, meta: m, snapshotOf: name, retains: []page.TxID{m.TxID}}
	db.beginReadLocked(tx)
	tx.init(db.p.Acquire())
	db.mu.Unlock()
	tx.managed = true
	err := fn(tx)
	tx.managed = false
	if err == nil {
		err = tx.err
	}
	tx.Rollback()
	return err
}

// Restore makes the snapshot's state the current state, as one new commit.
// Every snapshot, this one included, stays as it was. The cost is
// proportional to the pages changed since the snapshot: the two trees are
// compared through their Merkle references, pages only the current state
// uses are freed, and the snapshot's pages become live again.
func (db *DB) Restore(name string) error {
	return db.Update(func(tx *Tx) error {
		r, ok := tx.snapshot(name)
		if !ok {
			return fmt.Errorf("%w: %q", ErrSnapshotNotFound, name)
		}
		if tx.root.changed() {
			return fmt.Errorf("%w: Restore in a transaction with changes", ErrInvalidOptions)
		}
		return tx.restore(r.root)
	})
}

func (tx *Tx) restore(to page.Ref) error {
	type run struct {
		ref  page.Ref
		span int
	}
	sides := [2]map[page.ID]run{{}, {}}
	df := btree.Differ{A: tx.s, B: tx.s, Page: func(side int, r page.Ref, span int) error {
		sides[side][r.ID] = run{r, span}
		return nil
	}}
	if err := df.Diff(nil, tx.meta.Root, to); err != nil {
		return err
	}
	// A run met on both sides sits at different places in the two trees:
	// it is shared, not changed.
	for id, a := range sides[0] {
		if b, ok := sides[1][id]; ok && a.ref == b.ref {
			delete(sides[0], id)
			delete(sides[1], id)
		}
	}
	fl := tx.db.fl
	for _, id := range sortedIDs(sides[1]) {
		if err := fl.Reclaim(id, sides[1][id].span); err != nil {
			return fmt.Errorf("restore: page %d of the snapshot is not pinned: %w", id, err)
		}
	}
	for _, id := range sortedIDs(sides[0]) {
		r := sides[0][id]
		fl.Free(id, r.span, r.ref.TxID)
	}
	tx.root = &Bucket{tx: tx, tree: btree.Open(tx.s, to)}
	tx.forced = true
	return nil
}

func sortedIDs[V any](m map[page.ID]V) []page.ID {
	ids := make([]page.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// snapshot looks name up as this transaction sees the catalog.
func (tx *Tx) snapshot(name string) (snapRec, bool) {
	for i := len(tx.snapOps) - 1; i >= 0; i-- {
		if tx.snapOps[i].name == name {
			if tx.snapOps[i].delete {
				return snapRec{}, false
			}
			return snapRec{txid: tx.s.tx, root: tx.meta.Root}, true
		}
	}
	tx.db.mu.Lock()
	defer tx.db.mu.Unlock()
	r, ok := tx.db.snaps[name]
	return r, ok
}

// commitSnapshots applies the transaction's snapshot changes (and the
// automatic ones of KeepVersions) to the catalog tree, once the data root
// of this commit is known, and returns the catalog's new root.
func (tx *Tx) commitSnapshots(dataRoot page.Ref) (page.Ref, error) {
	db := tx.db
	ops := tx.snapOps
	if n := db.opts.KeepVersions; n > 0 {
		ops = append(ops, snapOp{name: autoName(tx.s.tx)})
		if tx.s.tx > page.TxID(n) {
			if _, ok := tx.snapshot(autoName(tx.s.tx - page.TxID(n))); ok {
				ops = append(ops, snapOp{name: autoName(tx.s.tx - page.TxID(n)), delete: true})
			}
		}
	}
	if len(ops) == 0 {
		return tx.meta.Snapshots, nil
	}
	cat := btree.Open(tx.s, tx.meta.Snapshots)
	tx.snapChanges = map[string]*snapRec{}
	for _, op := range ops {
		if op.delete {
			if _, err := cat.Delete([]byte(op.name), btree.KindValue); err != nil {
				return page.Ref{}, err
			}
			tx.snapChanges[op.name] = nil
			continue
		}
		r := snapRec{root: dataRoot, txid: tx.s.tx, created: time.Now().UnixNano()}
		if err := cat.Put([]byte(op.name), r.encode()); err != nil {
			return page.Ref{}, err
		}
		tx.snapChanges[op.name] = &r
	}
	return cat.Spill()
}

// applySnapChanges publishes a committed transaction's snapshot changes
// (db.mu held).
func (db *DB) applySnapChangesLocked(ch map[string]*snapRec) {
	for name, r := range ch {
		if r == nil {
			delete(db.snaps, name)
		} else {
			db.snaps[name] = *r
		}
	}
}

// Change is one difference between two versions.
type Change struct {
	Bucket   [][]byte // path of nested bucket names
	Key      []byte   // nil when the change is a whole bucket created or deleted
	Old, New []byte   // nil Old = added, nil New = deleted
}

// Diff calls fn for every difference between two transactions of the same
// DB — a snapshot's and the current one, two snapshots, a reader's older
// view and a writer's — in bucket, then key order. A bucket created or
// deleted comes first as a Change with a nil Key (New or Old is an empty,
// non-nil slice), followed by each of its keys. The cost is proportional
// to the pages that differ: subtrees with identical Merkle references are
// never read. Values are valid only during fn. A writable transaction's
// changes are compared as they stand (its trees are written out to free
// pages first, as Commit would).
func Diff(from, to *Tx, fn func(c Change) error) error {
	if from.db != to.db {
		return fmt.Errorf("%w: Diff of transactions of different databases", ErrInvalidOptions)
	}
	roots := [2]page.Ref{}
	for i, tx := range []*Tx{from, to} {
		if err := tx.check(false); err != nil {
			return err
		}
		r, err := tx.currentRoot()
		if err != nil {
			return err
		}
		roots[i] = r
	}
	df := btree.Differ{A: from.s, B: to.s, Key: func(path [][]byte, key, old, new []byte) error {
		return fn(Change{Bucket: path, Key: key, Old: old, New: new})
	}}
	return df.Diff(nil, roots[0], roots[1])
}

// currentRoot returns the root of the transaction's state, writing out a
// writable transaction's changes first.
func (tx *Tx) currentRoot() (page.Ref, error) {
	if !tx.writable || !tx.root.changed() {
		return tx.root.tree.Root(), nil
	}
	if err := tx.root.spill(); err != nil {
		return page.Ref{}, err
	}
	tx.forced = true
	root, err := tx.root.tree.Spill()
	if err == nil && tx.s.writeErr != nil {
		// A failed early write fails the DB here as it would at commit.
		err = tx.db.fail(tx.s.writeErr)
	}
	return root, err
}
