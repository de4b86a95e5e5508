package cowfile

import (
	"math/bits"
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
	}
	s.db.fl.Free(id, span, born)
}

func (s *store) Write(id page.ID, run []byte) { s.dirty[id] = run }

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
