package cowfile

import (
	"errors"
	"fmt"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// maxProblems bounds how many problems Check reports.
const maxProblems = 100

// Page roles found by Check, as bits.
const (
	roleCurrent  = 1 << iota // reachable from the version's meta
	roleSnapshot             // reachable from a snapshot
	roleFree
	rolePending
)

// Check verifies the version this transaction reads, completely: its meta;
// every reachable page's checksum, id, type, and that the reference to it
// carries its checksum and txid; key order inside and across pages; that no
// page is reachable twice from one root; the trees of every snapshot.
// When the transaction reads the latest version it also accounts for every
// page: free pages are reachable from nothing, pending ones from nothing
// but snapshots, snapshot pages are pinned, and reachable, free and pending
// pages add up to every page below the high-water mark (no leaks). (The
// free-space log of an older version may already be reused, so for an
// older version or a snapshot view only the trees are checked.)
//
// Check reads every page and verifies checksums again even if this process
// verified them before. The error joins every problem found (each wrapping
// ErrCorrupt and naming its page); nil means sound. A writable
// transaction's uncommitted changes are not checked.
func (tx *Tx) Check() error {
	if err := tx.check(false); err != nil {
		return err
	}
	c := &checker{tx: tx, roles: make([]byte, tx.meta.HWM)}
	c.s = &store{db: tx.db, m: tx.s.m, ps: tx.s.ps, hwm: tx.meta.HWM, full: true}
	if tx.snapshotOf == "" {
		c.add(tx.checkMetas())
		c.add(tx.checkChain())
		for _, id := range tx.meta.ChainPages() {
			c.add(c.mark(id, 1, roleCurrent)) // commit records in use
		}
	}
	c.walk(tx.meta.Root, roleCurrent)
	c.walk(tx.meta.Snapshots, roleCurrent)
	snaps, err := tx.snapshotRoots()
	c.add(err)
	for _, r := range snaps {
		c.walk(r, roleSnapshot)
	}
	if fl := tx.freeState(c); fl != nil {
		c.account(fl)
	}
	return errors.Join(c.problems...)
}

type checker struct {
	tx       *Tx
	s        *store
	roles    []byte
	problems []error
}

func (c *checker) add(err error) {
	if err != nil && len(c.problems) < maxProblems {
		c.problems = append(c.problems, err)
	}
}

// mark records that the run [id, id+span) plays role.
func (c *checker) mark(id page.ID, span int, role byte) error {
	hwm := page.ID(len(c.roles))
	if id < 2 || uint64(id)+uint64(span) > uint64(hwm) {
		return page.Corrupt(id, "run of %d pages outside [2, %d)", span, hwm)
	}
	for i := id; i < id+page.ID(span); i++ {
		have := c.roles[i]
		switch {
		case role == roleFree && have != 0:
			return page.Corrupt(i, "page is free but also in use or pending")
		case role == rolePending && have&(roleCurrent|roleFree|rolePending) != 0:
			return page.Corrupt(i, "page is pending but also reachable or free")
		case role == roleCurrent && have&(roleCurrent|roleFree|rolePending) != 0:
			return page.Corrupt(i, "page is reachable twice, or reachable and free")
		}
		c.roles[i] |= role
	}
	return nil
}

// walk checks the tree at root strictly and marks its runs.
func (c *checker) walk(root page.Ref, role byte) {
	w := walkerFor(c.s)
	w.Strict = true
	w.Visit = func(r page.Ref, run []byte, _ int) error {
		if role == roleSnapshot && c.roles[r.ID]&roleCurrent != 0 {
			return nil // shared with the current version
		}
		return c.mark(r.ID, len(run)/c.s.ps, role)
	}
	c.add(w.Walk(root))
}

// snapshotRoots lists the roots the version's snapshot catalog pins.
func (tx *Tx) snapshotRoots() ([]page.Ref, error) {
	if tx.meta.Snapshots.IsZero() {
		return nil, nil
	}
	var roots []page.Ref
	cur := btree.Open(tx.s, tx.meta.Snapshots).Cursor()
	for k, v, _ := cur.First(); k != nil; k, v, _ = cur.Next() {
		r, err := decodeSnapRec(v, tx.meta.Snapshots.ID)
		if err != nil {
			return roots, err
		}
		roots = append(roots, r.root)
	}
	return roots, cur.Err()
}

// freeState loads the free-space state of the transaction's version, if it
// is the latest (the log of an older one may have been reused), and marks
// the log's own runs.
func (tx *Tx) freeState(c *checker) *freelist.Freelist {
	db := tx.db
	if tx.snapshotOf != "" {
		return nil
	}
	db.chainMu.Lock()
	defer db.chainMu.Unlock()
	if tx.meta.TxID != db.currentTxID() {
		return nil
	}
	fl, err := freelist.Load(tx.meta.Freelist, c.s.ps, c.s.readFree)
	if err != nil {
		c.add(err)
		return nil
	}
	for _, r := range fl.Chain() {
		run, err := c.s.readFree(r)
		if err == nil {
			err = c.mark(r.ID, len(run)/c.s.ps, roleCurrent)
		}
		c.add(err)
	}
	return fl
}

// account checks the free-space state against the reachable pages.
func (c *checker) account(fl *freelist.Freelist) {
	hwm := page.ID(len(c.roles))
	fl.Entries(func(e freelist.Entry) bool {
		role := byte(rolePending)
		if e.Freed == 0 {
			role = roleFree
		}
		c.add(c.mark(e.ID, int(e.Span), role))
		return len(c.problems) < maxProblems
	})
	if fl.HWM() != hwm {
		c.add(page.Corrupt(c.tx.meta.Freelist.ID, "free-space state says %d pages, meta says %d", fl.HWM(), hwm))
	}
	leaked := 0
	for id := page.ID(2); id < hwm; id++ {
		switch c.roles[id] {
		case 0:
			if leaked++; leaked <= 10 {
				c.add(page.Corrupt(id, "page is neither reachable nor free (leaked)"))
			}
		case roleSnapshot:
			c.add(page.Corrupt(id, "page of a snapshot is neither live nor pinned (pending)"))
		}
	}
}

// checkMetas re-reads both meta slots. The transaction's own meta must be
// intact unless later commits have overwritten its slot. The other slot may
// hold an older commit or the torn meta of a commit that never completed.
func (tx *Tx) checkMetas() error {
	if tx.meta.IsRecord() {
		return tx.checkRecord()
	}
	ms, errs := tx.db.readMetas()
	cur := meta.Slot(tx.meta.TxID)
	if ms[cur] == nil {
		if tx.meta.TxID+2 > tx.db.currentTxID() {
			return fmt.Errorf("current meta: %w", errs[cur])
		}
		return nil
	}
	if m := ms[cur]; m.TxID == tx.meta.TxID && *m != tx.meta {
		return page.Corrupt(cur, "meta of tx %d changed on disk", m.TxID)
	}
	return nil
}

// checkRecord re-reads the transaction's commit record. It must be intact
// while the latest version is this one; later, a meta slot commit may have
// freed its page and a later record taken it.
func (tx *Tx) checkRecord() error {
	at := tx.meta.Page()
	b := tx.db.pageReader(tx.s.ps)(at)
	m, err := meta.Decode(b, at)
	if err != nil {
		if tx.meta.TxID == tx.db.currentTxID() {
			return fmt.Errorf("current commit record: %w", err)
		}
		return nil
	}
	if m.TxID == tx.meta.TxID && m != tx.meta {
		return page.Corrupt(at, "commit record of tx %d changed on disk", m.TxID)
	}
	return nil
}

// checkChain re-reads the commit records in use in the latest version
// (meta.CheckChain). After later commits, a meta slot commit may have
// freed them, so an older version's are not checked.
func (tx *Tx) checkChain() error {
	if tx.meta.TxID != tx.db.currentTxID() {
		return nil
	}
	return meta.CheckChain(&tx.meta, tx.db.pageReader(tx.s.ps))
}

func (db *DB) currentTxID() page.TxID {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.meta.TxID
}
