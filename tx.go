package cowfile

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager"
	"github.com/cowfile/cowfile/pager/page"
)

// Tx is a transaction: a consistent view of one committed version, and in
// a writable transaction the changes made on top of it. A Tx is not safe
// for concurrent use; end it with Commit or Rollback.
type Tx struct {
	db       *DB
	meta     meta.Meta // the version this transaction started from
	writable bool
	managed  bool // inside Update/View: Commit and Rollback are the wrapper's
	closed   bool
	err      error // first corruption met by a read that cannot return errors
	s        *store
	root     *Bucket

	retains     []page.TxID         // a reader's: its txid and those of the snapshots its version lists
	snapshotOf  string              // set in ViewSnapshot
	snapOps     []snapOp            // snapshot changes to make at commit
	snapChanges map[string]*snapRec // what commit did to the catalog
	forced      bool                // trees already spilled (Diff, Restore): commit even if nothing looks changed
	record      page.ID             // a writer's: the page of its commit record, or 0
	slot        bool                // a writer's: it writes its meta to a slot too (db.plan)
}

func (tx *Tx) init(m *pager.Mapping) {
	tx.s = &store{db: tx.db, m: m, ps: tx.db.ps, hwm: tx.meta.HWM}
	if tx.writable {
		tx.s.tx = tx.meta.TxID + 1
		tx.s.dirty = map[page.ID][]byte{}
	}
	tx.root = &Bucket{tx: tx, tree: btree.Open(tx.s, tx.meta.Root)}
}

// ID returns the transaction's id: for a reader, the commit it reads; for a
// writer, the commit it will make.
func (tx *Tx) ID() uint64 {
	if tx.writable {
		return uint64(tx.s.tx)
	}
	return uint64(tx.meta.TxID)
}

// Writable reports whether the transaction can change the DB.
func (tx *Tx) Writable() bool { return tx.writable }

// DB returns the DB the transaction belongs to.
func (tx *Tx) DB() *DB { return tx.db }

// Err returns the first corruption a read in this transaction met. Reads
// that cannot return an error (Get, cursor steps) return nil for data on
// a corrupt page and record the error here; View returns it, and Commit
// refuses to commit.
func (tx *Tx) Err() error { return tx.err }

func (tx *Tx) setErr(err error) {
	if err != nil && tx.err == nil {
		tx.err = err
	}
}

// check returns the error for using a transaction in its state.
func (tx *Tx) check(write bool) error {
	switch {
	case tx.closed:
		return ErrTxClosed
	case write && !tx.writable:
		return ErrTxNotWritable
	}
	return nil
}

// Bucket returns the top-level bucket name, or nil if it does not exist.
func (tx *Tx) Bucket(name []byte) *Bucket { return tx.root.Bucket(name) }

// CreateBucket creates the top-level bucket name.
func (tx *Tx) CreateBucket(name []byte) (*Bucket, error) { return tx.root.CreateBucket(name) }

// CreateBucketIfNotExists creates the top-level bucket name if it is missing.
func (tx *Tx) CreateBucketIfNotExists(name []byte) (*Bucket, error) {
	return tx.root.CreateBucketIfNotExists(name)
}

// DeleteBucket deletes the top-level bucket name and everything in it.
func (tx *Tx) DeleteBucket(name []byte) error { return tx.root.DeleteBucket(name) }

// ForEach calls fn for every top-level bucket, in name order.
func (tx *Tx) ForEach(fn func(name []byte, b *Bucket) error) error {
	return tx.root.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return fn(k, tx.root.Bucket(k))
	})
}

// Rollback ends the transaction, discarding its changes. Rolling back a
// closed transaction returns ErrTxClosed.
func (tx *Tx) Rollback() error {
	if tx.managed {
		panic("cowfile: Rollback called inside Update or View")
	}
	if tx.closed {
		return ErrTxClosed
	}
	tx.end(false)
	return nil
}

// end closes the transaction and releases what it holds.
func (tx *Tx) end(committed bool) {
	tx.closed = true
	tx.s.m.Release()
	if !tx.writable {
		tx.db.endRead(tx)
		return
	}
	if !committed {
		tx.db.fl.Rollback()
	}
	tx.s.dirty = nil
	tx.db.openTx.Done()
	tx.db.writer.Unlock()
}

// Commit makes the transaction's changes durable (as Options.Durability
// says) and visible to transactions that begin afterwards. It returns only
// after the data is on disk; if a write or sync fails it returns an error
// wrapping ErrWriteFailed, nothing acknowledged is lost, and the DB refuses
// further writes until it is reopened.
func (tx *Tx) Commit() error {
	if tx.managed {
		panic("cowfile: Commit called inside Update")
	}
	if err := tx.check(true); err != nil {
		return err
	}
	if tx.err != nil {
		tx.end(false)
		return tx.err
	}
	if !tx.root.changed() && !tx.forced && len(tx.snapOps) == 0 && tx.db.opts.KeepVersions == 0 {
		tx.end(false)
		return nil
	}
	if err := tx.commit(); err != nil {
		tx.end(false)
		return err
	}
	tx.end(true)
	return nil
}

func (tx *Tx) commit() error {
	db, s := tx.db, tx.s
	db.chainMu.Lock()
	defer db.chainMu.Unlock()
	if err := tx.root.spill(); err != nil {
		return err
	}
	root, err := tx.root.tree.Spill()
	if err != nil {
		return err
	}
	snaps, err := tx.commitSnapshots(root)
	if err != nil {
		return err
	}
	if tx.slot {
		// Walks from the meta slots no longer read the records written up
		// to the newest slot: this commit overwrites the older slot, and
		// the walk from the newer one starts after them.
		for _, id := range tx.meta.Chain[:tx.meta.Split] {
			db.fl.Free(id, 1, tx.meta.TxID)
		}
	}
	runs, head, err := db.fl.Persist(s.ps, db.fl.Allocate)
	if err != nil {
		return err
	}
	for _, run := range runs {
		s.dirty[page.GetHeader(run).ID] = run
	}
	freed := db.fl.FreedPending()
	m := tx.meta
	m.TxID, m.Root, m.Freelist, m.Snapshots, m.HWM, m.Flags = s.tx, root, head, snaps, db.fl.HWM(), 0
	m.Version = meta.Version // what Encode writes: a file of an older format moves on with its first commit
	m.Prev, m.Next = meta.Link(&tx.meta), 0
	if tx.slot {
		n := copy(m.Chain[:], m.Chain[m.Split:m.ChainLen])
		clear(m.Chain[n:])
		m.ChainLen = n
	}
	if tx.record != 0 {
		m.Chain[m.ChainLen] = tx.record
		m.ChainLen++
	}
	switch {
	case !tx.slot:
		m.Flags = meta.FlagRecord
	case tx.record != 0:
		m.Split, m.Flags = m.ChainLen, meta.FlagRecorded
	default:
		m.Split = m.ChainLen
	}
	if db.opts.Durability == Sync && db.opts.MaxChain >= 0 {
		// Reserve the next commit's record page: where its run would
		// start, room for a commit as large as this one and its record.
		m.Next = db.fl.NextRun(1 + min(db.fl.Allocated(), writebackPages))
	}
	if s.writeErr != nil {
		return db.fail(s.writeErr)
	}
	if err := db.writeCommit(m, tx.record, tx.slot, s.dirty, s.written); err != nil {
		return err
	}
	db.fl.Commit()
	db.publishFreeCounts()
	db.mu.Lock()
	db.meta = m
	if tx.slot {
		// The walk from the slot this commit keeps reaches its record.
		db.baseSlot, db.forceSlot, db.dual = meta.Slot(m.TxID), false, tx.record != 0
		db.baseTx, db.tailFreed = m.TxID, 0
	} else {
		db.tailFreed += freed
	}
	db.applySnapChangesLocked(tx.snapChanges)
	db.mu.Unlock()
	db.commits.Add(1)
	return nil
}

// writeCommit writes a commit's pages (those not written early) and its
// meta, with the syncs the durability mode asks for: as a commit record
// at page record (if not 0), in the run of the pages, and in its meta slot
// if slot. Any failure is sticky.
func (db *DB) writeCommit(m meta.Meta, record page.ID, slot bool, dirty map[page.ID][]byte, written map[page.ID]bool) error {
	if record != 0 {
		rb := getBuffer(db.ps)
		rm := m
		rm.Flags = meta.FlagRecord
		rm.EncodeRecord(rb, record)
		dirty[record] = rb
	}
	ids := make([]page.ID, 0, len(dirty))
	for id := range dirty {
		if !written[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if err := db.writePages(m.TxID, m.HWM, ids, dirty); err != nil {
		return db.fail(err)
	}
	if slot {
		if db.opts.Durability == SyncMeta {
			if err := db.sync(); err != nil {
				return err
			}
		}
		mp := getBuffer(db.ps)
		m.Encode(mp)
		run := pager.Run{Off: int64(meta.Slot(m.TxID)) * int64(db.ps), Bufs: [][]byte{mp}}
		err := db.p.WritePages([]pager.Run{run})
		putBuffer(mp) // written: the kernel has its copy
		if err != nil {
			return db.fail(err)
		}
	}
	if db.opts.Durability != NoSync {
		if err := db.sync(); err != nil {
			return err
		}
	}
	for id := range dirty {
		if id != record {
			db.verified.add(id) // we wrote them: their checksums hold
		}
	}
	recycleRuns(dirty)
	return nil
}

// wipeDropped makes the slot tx's meta goes to durably empty, once after
// a fallback, before the first page of the commit is written (early or
// not): the slot may still hold a dropped commit's meta, torn or whole,
// whose pages carry a txid a new commit could reuse (with identical
// bytes) or whose missing sector a new write could restore. So may the
// page the latest version reserved for its successor's record, which the
// walks from the slots reach: it is wiped in the same write. Wiping them
// first means that commit can never return.
func (db *DB) wipeDropped(tx page.TxID) error {
	if !db.wipeSlot {
		return nil
	}
	ps := int64(db.ps)
	wipe := make([]byte, db.ps)
	meta.Wipe(wipe)
	runs := []pager.Run{{Off: int64(meta.Slot(tx)) * ps, Bufs: [][]byte{wipe}}}
	// The reserved page: 0 means none, 1 and below are slots; none lies past the file.
	if id := db.wipeRecord; id >= 2 && (int64(id)+1)*ps <= db.p.Size() {
		runs = append(runs, pager.Run{Off: int64(id) * ps, Bufs: [][]byte{wipe}})
		db.verified.clear(id)
	}
	if err := db.p.WritePages(runs); err != nil {
		return err
	}
	if db.opts.Durability != NoSync {
		if err := db.syncFile(); err != nil {
			return err
		}
	}
	db.wipeSlot, db.wipeRecord = false, 0
	return nil
}

// grow makes the file hold hwm pages (Pager.Grow's policy applies).
func (db *DB) grow(hwm page.ID) error {
	if end := int64(hwm) * int64(db.ps); end > db.p.Size() {
		return db.p.Grow(end)
	}
	return nil
}

// writePages writes the pages ids (sorted, distinct) of dirty for
// transaction tx, contiguous pages coalesced into runs of one pwritev
// each, in a file grown to hold hwm pages. It first wipes the meta slot
// if it must (wipeDropped), and forgets that the pages were verified:
// their old contents are gone.
func (db *DB) writePages(tx page.TxID, hwm page.ID, ids []page.ID, dirty map[page.ID][]byte) error {
	if err := db.grow(hwm); err != nil {
		return err
	}
	if err := db.wipeDropped(tx); err != nil {
		return err
	}
	db.verified.grow(hwm)
	ps := int64(db.ps)
	// end is where the last run ends: summing its buffers for every page
	// would make a run of k pages cost O(k²).
	var runs []pager.Run
	var end int64
	for _, id := range ids {
		db.verified.clear(id)
		run := dirty[id]
		off := int64(id) * ps
		if n := len(runs); n > 0 && end == off {
			runs[n-1].Bufs = append(runs[n-1].Bufs, run)
		} else {
			runs = append(runs, pager.Run{Off: off, Bufs: [][]byte{run}})
		}
		end = off + int64(len(run))
	}
	if db.opts.Durability == NoSync {
		return db.p.WritePages(runs)
	}
	return db.writeRuns(runs)
}

// writebackPages is how many pages a durable commit writes before it
// starts their writeback (writeRuns), and the alignment, in pages, of the
// pieces a long run is cut into: 256 KiB at 4 KiB pages.
const writebackPages = 64

// writeRuns writes runs (sorted, apart) in batches of at least
// writebackPages pages and starts each batch's writeback as soon as it is
// written (Pager.StartWriteback, a hint that makes nothing durable): the
// disk then writes while the commit copies the rest into the page cache,
// and the final sync waits for less. The last batch, which the sync
// follows at once, gets no hint.
//
// A batch ends where a run ends or at a file offset that is a multiple of
// writebackPages pages, so a long run (a commit of large values) is cut
// only at aligned offsets. The kernel caches what one write call brings in
// as folios no larger and no less aligned than the call: cut at value
// boundaries instead, a megabyte of 100 KiB values came back through the
// map 1.5× slower right after its commit (docs/PERFORMANCE.md).
func (db *DB) writeRuns(runs []pager.Run) error {
	chunk := int64(writebackPages * db.ps)
	var batch []pager.Run
	var bytes, start int64
	flush := func(end int64) error {
		if err := db.p.WritePages(batch); err != nil {
			return err
		}
		batch, bytes = batch[:0], 0
		return db.p.StartWriteback(start, end-start)
	}
	for _, r := range runs {
		off, runEnd := r.Off, r.Off
		for _, b := range r.Bufs {
			runEnd += int64(len(b))
		}
		if len(batch) == 0 {
			start = off
		}
		piece := pager.Run{Off: off}
		for _, b := range r.Bufs {
			for len(b) > 0 {
				boundary := (off/chunk + 1) * chunk
				n := min(int64(len(b)), boundary-off)
				piece.Bufs = append(piece.Bufs, b[:n])
				b, off, bytes = b[n:], off+n, bytes+n
				if off == boundary && bytes >= chunk && off < runEnd {
					// Mid-run at an aligned offset: cut here.
					batch = append(batch, piece)
					if err := flush(off); err != nil {
						return err
					}
					piece, start = pager.Run{Off: off}, off
				}
			}
		}
		if len(piece.Bufs) > 0 {
			batch = append(batch, piece)
		}
		if bytes >= chunk {
			if err := flush(off); err != nil {
				return err
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return db.p.WritePages(batch)
}

// sync is syncFile whose failure is sticky (db.fail).
func (db *DB) sync() error {
	if err := db.syncFile(); err != nil {
		return db.fail(err)
	}
	return nil
}

// syncFile makes what was written durable, and counts the sync.
func (db *DB) syncFile() error {
	db.syncs.Add(1)
	return db.p.Sync()
}

// mapErr turns the tree's errors into cowfile's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, btree.ErrKindMismatch):
		return ErrIncompatibleValue
	case errors.Is(err, btree.ErrKeyRequired):
		return ErrKeyRequired
	case errors.Is(err, btree.ErrKeyTooLarge):
		return fmt.Errorf("%w: %v", ErrKeyTooLarge, err)
	case errors.Is(err, btree.ErrValueTooLarge):
		return fmt.Errorf("%w: %v", ErrValueTooLarge, err)
	}
	return err
}
