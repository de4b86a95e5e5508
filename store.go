package cowfile

import (
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/pager"
	"github.com/cowfile/cowfile/pager/page"
)

// store is a transaction's view of the file as btree.Store: committed pages
// from the map, the pages this transaction wrote from memory, allocation
// and freeing through the free-space state.
type store struct {
	db   *DB
	m    *pager.Mapping
	ps   int
	hwm  page.ID   // pages beyond are outside this version
	tx   page.TxID // writing txid; 0 for readers
	full bool      // verify every checksum, ignoring the cache (open, Check)

	dirty map[page.ID][]byte // runs written by this transaction
	reads int

	// Early writes (see writeEarly): the one-page runs Write got since
	// the last one; the pages of dirty already in the file; the first
	// early write's error, which fails the commit.
	unwritten []page.ID
	written   map[page.ID]bool
	writeErr  error
}

func (s *store) PageSize() int   { return s.ps }
func (s *store) TxID() page.TxID { return s.tx }

// Read returns the run ref points at. Every read checks the header against
// the reference (id, checksum, txid: cheap); the checksum over the run and
// the structure of the page are verified the first time this process reads
// the page, and remembered until the page is rewritten.
func (s *store) Read(ref page.Ref, want page.Type) ([]byte, error) {
	s.reads++
	if s.dirty != nil {
		if run, ok := s.dirty[ref.ID]; ok {
			return btree.CheckRef(run, ref, want, s.ps)
		}
	}
	hwm := s.hwm
	if s.tx != 0 {
		hwm = s.db.fl.HWM()
	}
	if ref.ID < 2 || ref.ID >= hwm {
		return nil, page.Corrupt(ref.ID, "reference past the high-water mark %d", hwm)
	}
	off := int64(ref.ID) * int64(s.ps)
	first, err := s.m.Bytes(off, int64(s.ps))
	if err != nil {
		return nil, page.Corrupt(ref.ID, "unreadable: %v", err)
	}
	span := int64(page.SpanOf(first))
	if span == 0 || span > int64(hwm-ref.ID) {
		return nil, page.Corrupt(ref.ID, "run of %d pages runs past the high-water mark", span)
	}
	run := first
	// A one-page branch or leaf whose header matches ref passes CheckRef:
	// test that here, without the call, as every level of every lookup
	// reads such a page. Anything else goes through CheckRef, which also
	// says what is wrong.
	if span != 1 || !page.MatchesRef(first, ref) || !btree.TypeOK(page.TypeOf(first), want) {
		if span > 1 {
			if run, err = s.m.Bytes(off, span*int64(s.ps)); err != nil {
				return nil, page.Corrupt(ref.ID, "unreadable run: %v", err)
			}
		}
		if run, err = btree.CheckRef(run, ref, want, s.ps); err != nil {
			return nil, err
		}
	}
	if s.full || !s.db.verified.has(ref.ID) {
		if err := btree.VerifyRun(run, ref.ID, s.ps); err != nil {
			return nil, err
		}
		s.db.verified.add(ref.ID)
	}
	return run, nil
}

// readFree reads a run of the free-space log.
func (s *store) readFree(ref page.Ref) ([]byte, error) { return freelist.ReadRun(ref, s.Read) }

func (s *store) Allocate(span int) page.ID { return s.db.fl.Allocate(span) }

func (s *store) Free(id page.ID, span int, born page.TxID) {
	if born == s.tx {
		delete(s.dirty, id)
		delete(s.written, id)
	}
	s.db.fl.Free(id, span, born)
}

func (s *store) Write(id page.ID, run []byte) {
	s.dirty[id] = run
	delete(s.written, id) // rewritten: it goes to the file again
	if len(run) != s.ps || s.db.opts.Durability == NoSync {
		return // a large value's run, or a NoSync commit: written at the end (see writeEarly)
	}
	s.unwritten = append(s.unwritten, id)
	if len(s.unwritten) >= writebackPages {
		s.writeEarly()
	}
}

// writeEarly writes the tree pages Write collected to the file before the
// commit is complete, and starts their writeback (writePages, writeRuns):
// a commit of a thousand pages then has the disk writing while it encodes
// the rest, and its sync waits for less. NoSync commits, which never wait
// for the disk, skip it.
//
// Large values' runs are left to the end of the commit, where writeRuns
// cuts a long run only at aligned offsets: an early batch would end at a
// value's end, and a megabyte of 100 KiB values written so came back
// through the map 1.5× slower right after the commit (docs/PERFORMANCE.md).
//
// It is as safe as writing them at the end: every page a transaction
// writes is free in every version a meta or a reader can reach (the
// free-space rule), so until the meta is written these bytes are garbage
// in free space, which a crash or a failed commit leaves unreferenced. A
// page written early and then freed and rewritten by the same transaction
// goes to the file again with the rest (Write and Free forget it).
func (s *store) writeEarly() {
	slices.Sort(s.unwritten)
	ids := slices.Compact(s.unwritten)
	keep := ids[:0]
	for _, id := range ids {
		if _, ok := s.dirty[id]; ok && !s.written[id] {
			keep = append(keep, id)
		}
	}
	s.unwritten = s.unwritten[:0]
	if s.writeErr != nil || len(keep) == 0 {
		return
	}
	if err := s.db.writePages(s.tx, s.db.fl.HWM(), keep, s.dirty); err != nil {
		s.writeErr = err
		return
	}
	if s.written == nil {
		s.written = make(map[page.ID]bool, 4*len(keep))
	}
	for _, id := range keep {
		s.written[id] = true
	}
}

// Buffer returns a buffer of span pages for a tree to fill, recycled from
// an earlier commit when one of its size class is at hand: a commit that
// rewrites a thousand pages, or writes ten 100 KiB values, would otherwise
// allocate, zero and later collect as much memory. The contents are
// undefined; the capacity is the class's, a power of two.
func (s *store) Buffer(span int) []byte { return getBuffer(span * s.ps) }

// getBuffer returns an n-byte buffer with undefined contents, from
// runBuffers when one of its size class is there.
func getBuffer(n int) []byte {
	c := bufClass(n)
	if c >= len(runBuffers) {
		return make([]byte, n)
	}
	if p, ok := runBuffers[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<c)
}

// runBuffers holds, per size class (capacity 1<<class bytes, up to 4 MiB),
// the buffers of runs whose commit has been written (the kernel has its
// copy), for Buffer to hand out again.
var runBuffers [23]sync.Pool

// bufClass is the size class of an n-byte buffer: the smallest c with
// 1<<c >= n.
func bufClass(n int) int { return bits.Len(uint(n - 1)) }

// recycleRuns gives the buffers of a written commit back to runBuffers.
// Nothing refers to them any more: readers read the map, the
// transaction's trees were spilled to references, and the transaction is
// over, so the slices its Get calls returned are no longer valid (as the
// documentation of Get says). Buffers Buffer did not make (their capacity
// is not a power of two) are left to the collector.
func recycleRuns(dirty map[page.ID][]byte) {
	for _, b := range dirty {
		putBuffer(b)
	}
}

// putBuffer gives b, which nothing refers to any more, to runBuffers.
func putBuffer(b []byte) {
	c := cap(b)
	if c&(c-1) != 0 || bufClass(c) >= len(runBuffers) {
		return
	}
	b = b[:c]
	runBuffers[bufClass(c)].Put(&b)
}

// walkerFor returns the one tree walker configured for s.
func walkerFor(s *store) *btree.Walker { return &btree.Walker{Store: s} }

// verifiedSet remembers which pages passed their checksum in this process:
// one bit per page id. Readers set bits concurrently (atomically); the
// writer clears the bits of pages it is about to overwrite and grows the
// set. A bit lost to a concurrent grow only costs one more verification.
type verifiedSet struct {
	mu   sync.Mutex // serializes grow
	bits atomic.Pointer[[]uint64]
}

func (v *verifiedSet) has(id page.ID) bool {
	b := v.bits.Load()
	if b == nil || int(id/64) >= len(*b) {
		return false
	}
	return atomic.LoadUint64(&(*b)[id/64])&(1<<(id%64)) != 0
}

func (v *verifiedSet) add(id page.ID) {
	b := v.bits.Load()
	if b == nil || int(id/64) >= len(*b) {
		return
	}
	atomic.OrUint64(&(*b)[id/64], 1<<(id%64))
}

func (v *verifiedSet) clear(id page.ID) {
	b := v.bits.Load()
	if b == nil || int(id/64) >= len(*b) {
		return
	}
	atomic.AndUint64(&(*b)[id/64], ^uint64(1<<(id%64)))
}

// grow makes room for n page ids.
func (v *verifiedSet) grow(n page.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.bits.Load()
	words := int(n/64) + 1
	if old != nil && len(*old) >= words {
		return
	}
	nb := make([]uint64, words+words/2)
	if old != nil {
		for i := range *old {
			nb[i] = atomic.LoadUint64(&(*old)[i])
		}
	}
	v.bits.Store(&nb)
}
