package btree

import (
	"fmt"

	"github.com/cowfile/cowfile/pager/page"
)

// Store is what a tree needs of the file.
type Store interface {
	// PageSize is the size of one page.
	PageSize() int
	// TxID is the transaction that writes new pages (0 in a read-only store).
	TxID() page.TxID
	// Read returns the run ref points at, after checking that its header
	// names ref.ID, matches ref's checksum and txid, has type want (0 means
	// branch or leaf), that its checksum holds, and, for branch and leaf
	// pages, that Validate accepts it.
	Read(ref page.Ref, want page.Type) ([]byte, error)
	// Allocate reserves span contiguous pages for a new run.
	Allocate(span int) page.ID
	// Free releases a run written by transaction born and replaced by the
	// current transaction.
	Free(id page.ID, span int, born page.TxID)
	// Write queues a sealed run for the commit.
	Write(id page.ID, run []byte)
}

// Bufferer is implemented by a Store that recycles the buffers of the runs
// it has written: Buffer returns a buffer of span pages, which the tree
// then owns until it hands it to Write. Its contents are undefined (the
// tree writes or clears every byte) and its capacity may be larger. Trees
// over other stores allocate their buffers.
type Bufferer interface {
	Buffer(span int) []byte
}

// MemStore is an in-memory Store, for tests of this package and others.
// It checks every read as a file-backed store would.
type MemStore struct {
	Size   int
	Tx     page.TxID
	Pages  map[page.ID][]byte
	Next   page.ID               // next never-used page id
	Freed  map[page.ID]page.TxID // freed run -> born txid
	Reads  int                   // runs read, for cost assertions
	Allocs int
}

// NewMemStore returns an empty store with the given page size.
func NewMemStore(pageSize int) *MemStore {
	return &MemStore{Size: pageSize, Tx: 1, Pages: map[page.ID][]byte{}, Next: 2, Freed: map[page.ID]page.TxID{}}
}

func (s *MemStore) PageSize() int   { return s.Size }
func (s *MemStore) TxID() page.TxID { return s.Tx }

func (s *MemStore) Read(ref page.Ref, want page.Type) ([]byte, error) {
	s.Reads++
	run, ok := s.Pages[ref.ID]
	if !ok {
		return nil, page.Corrupt(ref.ID, "no such page")
	}
	run, err := CheckRef(run, ref, want, s.Size)
	if err != nil {
		return nil, err
	}
	return run, VerifyRun(run, ref.ID, s.Size)
}

func (s *MemStore) Allocate(span int) page.ID {
	s.Allocs++
	id := s.Next
	s.Next += page.ID(span)
	return id
}

func (s *MemStore) Free(id page.ID, span int, born page.TxID) {
	if _, dup := s.Freed[id]; dup {
		panic(fmt.Sprintf("MemStore: page %d freed twice", id))
	}
	s.Freed[id] = born
}

func (s *MemStore) Write(id page.ID, run []byte) {
	s.Pages[id] = append([]byte(nil), run...)
	delete(s.Freed, id)
}

// CheckRef performs the cheap checks Store.Read promises on run (which
// holds at least the first page of the run): the header names ref.ID, its
// checksum and txid match ref (the Merkle check), its type is want, and the
// run fits in run. It returns the run cut to its span. File-backed stores
// call it on every read and VerifyRun only the first time a page is read.
func CheckRef(run []byte, ref page.Ref, want page.Type, pageSize int) ([]byte, error) {
	// Fast path, taken by every sound page: the same checks on the raw
	// header, without decoding it. Any failure takes the slow path, which
	// repeats them and says what is wrong.
	if len(run) >= page.HeaderSize && page.MatchesRef(run, ref) {
		if n := int64(page.SpanOf(run)) * int64(pageSize); n != 0 && n <= int64(len(run)) && TypeOK(page.TypeOf(run), want) {
			return run[:n], nil
		}
	}
	return checkRefSlow(run, ref, want, pageSize)
}

// TypeOK reports whether a page of type t is what a read wanting want
// accepts: want 0 means branch or leaf (and a page of type 0 must not
// match it).
func TypeOK(t, want page.Type) bool {
	if want == 0 {
		return t == page.TypeBranch || t == page.TypeLeaf
	}
	return t == want
}

func checkRefSlow(run []byte, ref page.Ref, want page.Type, pageSize int) ([]byte, error) {
	h, err := page.CheckHeader(run, ref.ID, 0)
	if err != nil {
		return nil, err
	}
	if err := page.MatchRef(h, ref); err != nil {
		return nil, err
	}
	switch {
	case want == 0 && (h.Type == page.TypeBranch || h.Type == page.TypeLeaf):
	case want != 0 && h.Type == want:
	default:
		return nil, page.Corrupt(ref.ID, "unexpected page type %v", h.Type)
	}
	n := int64(h.Span) * int64(pageSize)
	if n > int64(len(run)) {
		return nil, page.Corrupt(ref.ID, "run of %d pages extends past the end of the file", h.Span)
	}
	return run[:n], nil
}

// VerifyRun checks a run's checksum and, for branch and leaf pages, its
// structure (Validate).
func VerifyRun(run []byte, id page.ID, pageSize int) error {
	if err := page.VerifySum(run, id); err != nil {
		return err
	}
	if t := page.TypeOf(run); t == page.TypeBranch || t == page.TypeLeaf {
		return Validate(run, pageSize)
	}
	return nil
}
