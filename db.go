package cowfile

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager"
	"github.com/cowfile/cowfile/pager/page"
)

// DB is an open cowfile file. It is safe for concurrent use: any number of
// read transactions and one write transaction at a time.
type DB struct {
	path string
	opts Options
	p    *pager.Pager
	ps   int

	writer sync.Mutex // held by the one write transaction

	mu   sync.Mutex // guards the fields below
	meta meta.Meta  // the latest committed version
	// baseSlot is the meta slot the latest version was found from (or
	// written to); a commit that writes a meta slot writes the other one.
	baseSlot page.ID
	// readers counts, per txid, the read transactions that retain it: a
	// reader retains its own version and the versions of the snapshots
	// its version lists (Check and WriteTo read them). logReaders counts
	// the read transactions whose version has a free-space log (WriteTo
	// copies it), nReaders every open read transaction.
	readers    map[page.TxID]int
	logReaders map[page.TxID]int
	nReaders   int
	closed     bool
	failed     error // sticky: set by a failed write or sync
	openTx     sync.WaitGroup

	snaps    map[string]snapRec // guarded by mu
	chainMu  sync.Mutex         // held while a commit may overwrite free pages; Check loads the free-space log under it
	fl       *freelist.Freelist // owned by the writer
	verified verifiedSet

	fallback    bool
	fallbackWhy string
	// skipTo is the lowest txid the next commit may take, set when Open
	// passed over a valid newer meta (see load).
	skipTo page.TxID
	// wipeSlot: Open fell back, so the slot the next commit's meta goes
	// to may hold (part of) a dropped commit's meta, and the page the
	// latest version reserved for its successor's record (wipeRecord, if
	// not 0) the record of a dropped commit; that commit wipes both first
	// (see wipeDropped). The next commit then writes a meta slot
	// (forceSlot).
	wipeSlot   bool
	wipeRecord page.ID
	forceSlot  bool
	// dual: the walks from both meta slots reach the latest version, so
	// damage to either slot loses no commit. Until it holds, each commit
	// that writes a commit record writes a meta slot too (plan).
	dual bool
	// baseTx is the txid of the newer meta slot's commit; the versions from
	// it to the latest stay intact (retainedLocked), as Open may fall back
	// to any of them if a commit record is damaged. tailFreed counts the
	// pages the commits since have freed, which that keeps pending.
	baseTx    page.TxID
	tailFreed int

	commits atomic.Uint64
	syncs   atomic.Uint64
	// Free-space counts published by the writer, so Stats never waits for it.
	freePages, pendingPages atomic.Int64

	batchMu sync.Mutex
	batch   *batch
}

// Open opens the cowfile file at path, creating it (mode 0600) if it does
// not exist. Creation is atomic: the new file is written and synced under a
// temporary name, then renamed and the directory synced.
func Open(path string, opts *Options) (*DB, error) {
	o := opts.withDefaults()
	if !page.ValidSize(o.PageSize) {
		return nil, fmt.Errorf("%w: page size %d (want a power of two from %d to %d)", ErrInvalidOptions, o.PageSize, page.MinSize, page.MaxSize)
	}
	if o.Durability < Sync || o.Durability > NoSync {
		return nil, fmt.Errorf("%w: durability %d", ErrInvalidOptions, o.Durability)
	}
	db := &DB{path: path, opts: o, readers: map[page.TxID]int{}, logReaders: map[page.TxID]int{}}
	p, err := pager.Open(path, pager.Options{
		ReadOnly:   o.ReadOnly,
		Timeout:    o.Timeout,
		FS:         o.FS,
		MinMapSize: o.MmapSize,
		Create:     func() ([]byte, error) { return newFileImage(o.PageSize), nil },
	})
	if err != nil {
		if errors.Is(err, pager.ErrEmpty) {
			return nil, fmt.Errorf("%w: %s: file is empty", ErrCorrupt, path)
		}
		return nil, err
	}
	db.p = p
	if err := db.load(); err != nil {
		p.Close()
		return nil, err
	}
	return db, nil
}

// newFileImage returns the bytes of a new, empty file: two valid metas
// (txids 0 and 1) of an empty catalog.
func newFileImage(ps int) []byte {
	b := make([]byte, 2*ps)
	for tx := page.TxID(0); tx < 2; tx++ {
		meta.Meta{TxID: tx, PageSize: ps, HWM: 2}.Encode(b[int(tx)*ps : int(tx+1)*ps])
	}
	return b
}

// readMetas decodes both slots. The page size comes from slot 0 when its
// checksum holds; otherwise every supported size is tried for slot 1.
func (db *DB) readMetas() (ms [2]*meta.Meta, errs [2]error) {
	head := make([]byte, page.MaxSize)
	n, _ := db.p.ReadAt(head, 0)
	head = head[:n]
	try := func(slot page.ID, ps int) (*meta.Meta, error) {
		b := make([]byte, ps)
		if n, _ := db.p.ReadAt(b, int64(slot)*int64(ps)); n != ps {
			return nil, page.Corrupt(slot, "file too short for a %d-byte meta page", ps)
		}
		m, err := meta.Decode(b, slot)
		if err != nil {
			return nil, err
		}
		return &m, nil
	}
	ps, ok := meta.PeekPageSize(head)
	if ok {
		ms[0], errs[0] = try(0, ps)
	} else {
		errs[0] = page.Corrupt(0, "no valid meta (bad magic or page size)")
	}
	if ms[0] != nil {
		ms[1], errs[1] = try(1, ms[0].PageSize)
		return
	}
	errs[1] = page.Corrupt(1, "no valid meta at any page size")
	for s := page.MinSize; s <= page.MaxSize; s *= 2 {
		if m, err := try(1, s); err == nil {
			ms[1], errs[1] = m, nil
			break
		} else if errors.Is(err, meta.ErrVersion) {
			errs[1] = err
		}
	}
	return
}

// load picks the newest meta whose commit verifies — a meta slot's, or a
// commit record chained after one (meta.Follow) — and loads the
// free-space state of that version.
func (db *DB) load() error {
	ms, errs := db.readMetas()
	for _, err := range errs {
		if errors.Is(err, meta.ErrVersion) {
			return fmt.Errorf("%w: %s: %v", ErrIncompatible, db.path, err)
		}
	}
	// Unreadable slots first (so they are reported); the candidates in the
	// order meta.Candidates gives.
	order := meta.SlotOrder(ms)
	var why []string
	for _, slot := range order {
		if ms[slot] == nil {
			why = append(why, errs[slot].Error())
		}
	}
	// Both valid slots have one page size: readMetas reads slot 1 at slot
	// 0's when slot 0 decodes.
	var ps int
	if m := ms[order[1]]; m != nil {
		ps = m.PageSize
	}
	cands, walks := meta.Candidates(ms, db.pageReader(ps))
	var passed page.TxID // the newest valid meta passed over
	for i := range cands {
		c := &cands[i]
		if c.Duplicate {
			continue // the same commit, found from both slots: tried
		}
		fl, err := db.verify(&c.Meta)
		if err != nil {
			why = append(why, fmt.Sprintf("%s (tx %d): %v", where(&c.Meta), c.TxID, err))
			passed = max(passed, c.TxID)
			continue
		}
		// A damaged record of a later commit is passed over like a valid
		// meta: a torn record whose fields landed lacks only sectors of
		// filler, which a record of the same txid written to the same
		// page would supply (the filler depends on the txid alone).
		reasons, newest := meta.DamageLater(walks, order, c.TxID)
		why, passed = append(why, reasons...), max(passed, newest)
		db.dual = meta.Dual(cands, i)
		return db.use(c, fl, why, passed)
	}
	if len(why) == 0 {
		why = append(why, "no meta page")
	}
	return fmt.Errorf("%w: %s: no usable meta: %s", ErrCorrupt, db.path, why[0])
}

// maxTailFreed bounds the pages the commits since the newer meta slot's
// may have freed before a commit writes a meta slot: they stay pending, so
// that every version since that slot's stays intact (retainedLocked). A
// commit of single keys frees a few pages, so many commits write records
// only; a commit that rewrites a thousand pages writes a slot, where the
// second region costs little beside the first.
const maxTailFreed = 256

// where names the page a meta was read from.
func where(m *meta.Meta) string {
	if m.IsRecord() {
		return fmt.Sprintf("commit record at page %d", m.Page())
	}
	return fmt.Sprintf("meta slot %d", m.Page())
}

// pageReader returns meta.Follow's reader of ps-byte pages: nil for a page
// the file does not hold.
func (db *DB) pageReader(ps int) func(page.ID) []byte {
	return func(id page.ID) []byte {
		b := make([]byte, ps)
		if id >= 1<<48 {
			return nil
		}
		if n, _ := db.p.ReadAt(b, int64(id)*int64(ps)); n != ps {
			return nil
		}
		return b
	}
}

// use makes the verified candidate c the latest version. why lists what
// was passed over; passed is the newest valid meta among them.
func (db *DB) use(c *meta.Candidate, fl *freelist.Freelist, why []string, passed page.TxID) error {
	db.ps, db.meta, db.baseSlot, db.baseTx, db.fl = c.PageSize, c.Meta, c.Slot, c.SlotTx, fl
	fl.Buffer = getBuffer
	mp := db.p.Acquire()
	err := db.loadSnapshots(&store{db: db, m: mp, ps: c.PageSize, hwm: c.HWM}, c.Snapshots)
	mp.Release()
	if err != nil {
		return fmt.Errorf("%s: snapshot catalog: %w", db.path, err)
	}
	if len(why) > 0 {
		// Never silent: the dropped meta was either an unacknowledged
		// commit torn by a crash, or rot in the last acknowledged one.
		db.fallback = true
		db.fallbackWhy = strings.Join(why, "; ")
		// The passed-over commit's pages carry its txid. A next commit
		// with that same txid could rewrite some of them byte for byte,
		// and a crash during it would then let the dropped commit verify
		// and come back. So the next commit takes a later txid, and writes
		// a meta slot — not the one this version was found from: the
		// other, which held a dropped or damaged meta, or an older one —
		// wiping it first. A later txid is not enough where the meta
		// survives: only a page's first sector carries the txid, so the
		// next commit may still write a sector a torn page of the
		// dropped commit lacks. Its meta is then gone (the wiped slot) or
		// is the record at the page this version reserved (Next), which
		// the walks from both slots reach: that page is wiped too.
		db.skipTo = max(db.skipTo, passed+1)
		db.wipeSlot, db.forceSlot = true, true
		db.wipeRecord = c.Next
	}
	db.mu.Lock()
	retained := db.retainedLocked()
	db.mu.Unlock()
	db.fl.Release(retained)
	db.publishFreeCounts()
	return nil
}

// verify checks what commit m wrote — every page whose reference carries
// m's txid — and loads the free-space state of that version. Cost:
// O(pages of that commit + free-space state), never O(file).
func (db *DB) verify(m *meta.Meta) (*freelist.Freelist, error) {
	if end := int64(m.HWM) * int64(m.PageSize); end > db.p.Size() {
		return nil, page.Corrupt(page.ID(m.HWM-1), "high-water mark %d pages lies past the end of the file (%d bytes)", m.HWM, db.p.Size())
	}
	mp := db.p.Acquire()
	defer mp.Release()
	s := &store{db: db, m: mp, ps: m.PageSize, hwm: m.HWM, full: true}
	w := walkerFor(s)
	w.Follow = m.WroteRef
	if err := w.Walk(m.Root); err != nil {
		return nil, err
	}
	ws := walkerFor(s)
	ws.Follow = w.Follow
	if err := ws.Walk(m.Snapshots); err != nil {
		return nil, err
	}
	// A commit that wrote a meta slot and a record may have landed
	// without the record, which the walk from the other slot needs.
	if err := meta.CheckOwnRecord(m, db.pageReader(m.PageSize)); err != nil {
		return nil, err
	}
	fl, err := freelist.Load(m.Freelist, m.PageSize, s.readFree)
	if err != nil {
		return nil, err
	}
	if fl.HWM() != m.HWM {
		return nil, page.Corrupt(m.Freelist.ID, "free-space state says %d pages, meta says %d", fl.HWM(), m.HWM)
	}
	return fl, nil
}

// Path returns the path of the file.
func (db *DB) Path() string { return db.path }

// Close waits for open transactions to end, then releases the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.openTx.Wait()
	err := db.checkpointOnClose()
	return errors.Join(err, db.p.Close())
}

// checkpointOnClose writes the latest version's meta to a meta slot,
// flagged clean, when it is held by a commit record alone or by a slot
// flagged recorded (whose own record Open verifies), so that a file closed
// cleanly loses no commit to damage in a commit record: the newest meta
// then depends on none (docs/RELIABILITY.md). Flagged clean, it is used
// without verifying the last commit's pages again (meta.WroteRef). The copy goes to the slot
// the latest version was not found from or written to, with the
// version's txid when that is the slot's parity, else with the next one
// (the same version, as WriteTo's second meta). After a fallback nothing
// is written: the slot may hold a dropped meta, and only a commit, which
// wipes it first and takes a later txid, may overwrite it.
func (db *DB) checkpointOnClose() error {
	if db.opts.ReadOnly || db.failed != nil || db.forceSlot || db.meta.Flags&(meta.FlagRecord|meta.FlagRecorded) == 0 {
		return nil
	}
	m := db.meta
	m.Flags, m.Split = meta.FlagClean, m.ChainLen
	if meta.Slot(m.TxID) == db.baseSlot {
		m.TxID++
	}
	b := make([]byte, db.ps)
	m.Encode(b)
	if err := db.p.WritePages([]pager.Run{{Off: int64(meta.Slot(m.TxID)) * int64(db.ps), Bufs: [][]byte{b}}}); err != nil {
		return db.fail(err)
	}
	if db.opts.Durability != NoSync {
		return db.sync()
	}
	return nil
}

// Begin starts a transaction. A writable transaction waits for the
// previous one to end; read transactions never wait and never block the
// writer. Every transaction must end with Commit or Rollback.
func (db *DB) Begin(writable bool) (*Tx, error) {
	if writable {
		return db.beginWrite()
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrDatabaseNotOpen
	}
	tx := &Tx{db: db, meta: db.meta}
	tx.retains = append(db.snapTxIDsLocked(), tx.meta.TxID)
	db.beginReadLocked(tx)
	db.logReaders[tx.meta.TxID]++
	tx.init(db.p.Acquire())
	return tx, nil
}

// beginReadLocked registers read transaction tx and the txids it retains.
func (db *DB) beginReadLocked(tx *Tx) {
	for _, t := range tx.retains {
		db.readers[t]++
	}
	db.nReaders++
	db.openTx.Add(1)
}

func (db *DB) beginWrite() (*Tx, error) {
	if db.opts.ReadOnly {
		return nil, ErrDatabaseReadOnly
	}
	db.writer.Lock()
	db.mu.Lock()
	if db.closed || db.failed != nil {
		err := db.failed
		if db.closed {
			err = ErrDatabaseNotOpen
		}
		db.mu.Unlock()
		db.writer.Unlock()
		return nil, err
	}
	tx := &Tx{db: db, meta: db.meta, writable: true}
	db.openTx.Add(1)
	retained := db.retainedLocked()
	logFloor := db.oldestLogReaderLocked()
	mp := db.p.Acquire()
	db.mu.Unlock()
	db.fl.Release(retained)
	db.fl.HoldLogs(logFloor)
	db.publishFreeCounts()
	txid, record, slot := db.plan(max(tx.meta.TxID+1, db.skipTo))
	tx.record, tx.slot = record, slot
	db.fl.Begin(txid)
	if record != 0 {
		db.fl.AllocateAt(record) // free: plan checked
	}
	tx.init(mp)
	tx.s.tx = txid
	return tx, nil
}

// plan decides where commit txid writes its meta: as a commit record at
// the page the latest version reserved (Next), in the run of its pages, if
// the durability is Sync and a record fits the chain; and in a meta slot
// too, when Options.MaxChain commits have recorded only since the last
// one or freed more than maxTailFreed pages (which stay pending while
// they are the tail), when the walk from the other slot does not reach
// the latest version (!dual), after a fallback (forceSlot), or when it
// writes no record. A slot commit never writes the slot the latest
// version was found from; when txid would, the commit records only, or,
// writing no record, takes the next txid. It returns the txid the commit
// takes.
func (db *DB) plan(txid page.TxID) (_ page.TxID, record page.ID, slot bool) {
	m := &db.meta
	if db.opts.Durability == Sync && db.opts.MaxChain >= 0 && m.Next != 0 && m.ChainLen < meta.MaxChain &&
		(m.Next == db.fl.HWM() || db.fl.IsFree(m.Next)) {
		record = m.Next
	}
	slot = record == 0 || db.forceSlot || !db.dual || m.ChainLen-m.Split >= db.opts.MaxChain || db.tailFreed > maxTailFreed
	if slot && page.ID(txid%2) == db.baseSlot {
		if record != 0 && !db.forceSlot {
			return txid, record, false // the slot with the next txid
		}
		txid++
	}
	return txid, record, slot
}

// retainedLocked lists, sorted, the txids whose versions must stay
// readable: every open reader's, the latest commit's, and those of the
// commits since the newer meta slot's (the versions Open falls back to
// if a commit record is damaged; a commit writes a meta slot before they
// hold many pages, see plan).
func (db *DB) retainedLocked() []page.TxID {
	r := make([]page.TxID, 0, len(db.readers)+len(db.snaps)+1)
	r = append(r, db.meta.TxID)
	// A tail holds at most MaxChain+1 commits; txids may skip (after a
	// fallback), so look back a little further, never without bound.
	for t := max(db.baseTx, db.meta.TxID-min(db.meta.TxID, 2*meta.MaxChain)); t < db.meta.TxID; t++ {
		r = append(r, t)
	}
	for tx := range db.readers {
		r = append(r, tx)
	}
	r = append(r, db.snapTxIDsLocked()...)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	return slices.Compact(r)
}

// oldestLogReaderLocked returns the oldest version a read transaction
// holds together with its free-space log, or 0.
func (db *DB) oldestLogReaderLocked() page.TxID {
	var oldest page.TxID
	for t := range db.logReaders {
		if oldest == 0 || t < oldest {
			oldest = t
		}
	}
	return oldest
}

// endRead unregisters read transaction tx.
func (db *DB) endRead(tx *Tx) {
	db.mu.Lock()
	for _, t := range tx.retains {
		if db.readers[t]--; db.readers[t] == 0 {
			delete(db.readers, t)
		}
	}
	if tx.snapshotOf == "" {
		if db.logReaders[tx.meta.TxID]--; db.logReaders[tx.meta.TxID] == 0 {
			delete(db.logReaders, tx.meta.TxID)
		}
	}
	db.nReaders--
	db.mu.Unlock()
	db.openTx.Done()
}

// Update runs fn in a write transaction and commits it if fn returns nil;
// otherwise it rolls back and returns fn's error.
func (db *DB) Update(fn func(*Tx) error) error {
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	tx.managed = true
	err = fn(tx)
	tx.managed = false
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// View runs fn in a read transaction. If a read met a corrupt page, View
// returns that error even when fn returned nil.
func (db *DB) View(fn func(*Tx) error) error {
	tx, err := db.Begin(false)
	if err != nil {
		return err
	}
	tx.managed = true
	err = fn(tx)
	tx.managed = false
	if err == nil {
		err = tx.err
	}
	tx.Rollback()
	return err
}

// Stats describes the DB at one moment.
type Stats struct {
	TxID         uint64 // the latest committed transaction
	PageSize     int
	FilePages    uint64 // pages below the high-water mark (in use, free or pending)
	FileSize     int64  // bytes, including preallocated space
	FreePages    int    // reusable now
	PendingPages int    // freed, but still visible to a reader or the last commit
	OpenReaders  int
	Commits      uint64 // commits since Open
	Syncs        uint64 // fdatasync calls since Open
	// FellBack is true when Open found that the newest meta's commit did not
	// verify (a torn, unacknowledged commit — or rot in the last acknowledged
	// one) and used the older meta; FallbackReason says what failed.
	FellBack       bool
	FallbackReason string
	Durability     Durability
}

// publishFreeCounts copies the writer's free-space counts for Stats.
func (db *DB) publishFreeCounts() {
	db.freePages.Store(int64(db.fl.FreeCount()))
	db.pendingPages.Store(int64(db.fl.PendingCount()))
}

// Stats returns statistics of the DB. It never waits for the writer: the
// free-space counts are those of the last commit or write transaction start.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	n := db.nReaders
	return Stats{
		TxID: uint64(db.meta.TxID), PageSize: db.ps, FilePages: uint64(db.meta.HWM),
		FileSize: db.p.Size(), FreePages: int(db.freePages.Load()), PendingPages: int(db.pendingPages.Load()),
		OpenReaders: n, Commits: db.commits.Load(), Syncs: db.syncs.Load(),
		FellBack: db.fallback, FallbackReason: db.fallbackWhy, Durability: db.opts.Durability,
	}
}

// fail makes a write error sticky.
func (db *DB) fail(err error) error {
	err = fmt.Errorf("%w: %s: %w", ErrWriteFailed, db.path, err)
	db.mu.Lock()
	if db.failed == nil {
		db.failed = err
	}
	db.mu.Unlock()
	return err
}
