package cowfile

import (
	"errors"
	"fmt"

	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// maxProblems bounds how many problems Check reports.
const maxProblems = 100

// Check verifies the version this transaction reads, completely: its meta;
// every reachable page's checksum, id, type, and that the reference to it
// carries its checksum and txid; key order inside and across pages; that no
// page is reachable twice; that free and reachable pages are disjoint; and
// that reachable, free and pending pages add up to every page below the
// high-water mark (no leaks). It reads every page, verifying checksums
// again even if this process verified them before. The error joins every
// problem found (each wrapping ErrCorrupt and naming its page); nil means
// sound. A writable transaction's uncommitted changes are not checked.
func (tx *Tx) Check() error {
	if err := tx.check(false); err != nil {
		return err
	}
	var problems []error
	report := func(err error) bool {
		problems = append(problems, err)
		return len(problems) < maxProblems
	}
	m := tx.meta
	s := &store{db: tx.db, m: tx.s.m, ps: tx.s.ps, hwm: m.HWM, full: true}
	if err := tx.checkMetas(); err != nil {
		report(err)
	}
	owner := make([]byte, m.HWM) // 0 unseen, 1 reachable, 2 free or pending
	mark := func(id page.ID, span int, what byte) error {
		if id < 2 || uint64(id)+uint64(span) > uint64(m.HWM) {
			return page.Corrupt(id, "run of %d pages outside [2, %d)", span, m.HWM)
		}
		for i := id; i < id+page.ID(span); i++ {
			if owner[i] != 0 {
				if what == 2 && owner[i] == 1 {
					return page.Corrupt(i, "page is both reachable and free")
				}
				return page.Corrupt(i, "page counted twice")
			}
			owner[i] = what
		}
		return nil
	}
	w := walkerFor(s)
	w.Strict = true
	w.Visit = func(r page.Ref, run []byte, _ int) error { return mark(r.ID, len(run)/s.ps, 1) }
	if err := w.Walk(m.Root); err != nil && !report(err) {
		return errors.Join(problems...)
	}
	fl, err := freelist.Load(m.Freelist, s.ps, s.readFree)
	if err != nil {
		report(err)
		return errors.Join(problems...)
	}
	for _, r := range fl.Chain() {
		run, err := s.readFree(r)
		if err == nil {
			err = mark(r.ID, len(run)/s.ps, 1)
		}
		if err != nil && !report(err) {
			return errors.Join(problems...)
		}
	}
	fl.Entries(func(e freelist.Entry) bool {
		if err := mark(e.ID, int(e.Span), 2); err != nil {
			return report(err)
		}
		return true
	})
	if fl.HWM() != m.HWM {
		report(page.Corrupt(m.Freelist.ID, "free-space state says %d pages, meta says %d", fl.HWM(), m.HWM))
	}
	leaked := 0
	for id := page.ID(2); id < m.HWM && len(problems) < maxProblems; id++ {
		if owner[id] == 0 {
			if leaked++; leaked <= 10 {
				report(page.Corrupt(id, "page is neither reachable nor free (leaked)"))
			}
		}
	}
	return errors.Join(problems...)
}

// checkMetas re-reads both meta slots. The transaction's own meta must be
// intact. The other slot may hold an older commit or the torn meta of a
// commit that never completed; only a valid one claiming to be newer is
// a problem.
func (tx *Tx) checkMetas() error {
	ms, errs := tx.db.readMetas()
	cur := meta.Slot(tx.meta.TxID)
	if ms[cur] == nil {
		if tx.meta.TxID+2 > tx.db.currentTxID() {
			return fmt.Errorf("current meta: %w", errs[cur])
		}
		return nil // overwritten by later commits since this tx began
	}
	if m := ms[cur]; m.TxID == tx.meta.TxID && *m != tx.meta {
		return page.Corrupt(cur, "meta of tx %d changed on disk", m.TxID)
	}
	return nil
}

func (db *DB) currentTxID() page.TxID {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.meta.TxID
}
