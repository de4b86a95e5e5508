package freelist

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// buildChain returns a small real chain: a few commits of allocs and frees,
// and the disk holding its runs.
func buildChain(t testing.TB, commits int) (*disk, page.Ref) {
	d := newDisk(1024)
	f := New(2)
	var live []page.ID
	var head page.Ref
	for tx := page.TxID(2); tx < page.TxID(2+commits); tx++ {
		f.Release([]page.TxID{tx - 1})
		f.Begin(tx)
		for i := 0; i < 5; i++ {
			live = append(live, f.Allocate(1+i%3))
		}
		if len(live) > 6 {
			f.Free(live[0], 1, tx-1)
			live = live[1:]
		}
		runs, ref, err := f.Persist(1024, f.Allocate)
		if err != nil {
			t.Fatal(err)
		}
		d.writeRuns(runs)
		f.Commit()
		head = ref
	}
	return d, head
}

// FuzzLoad feeds Load runs whose bytes the fuzzer chose, re-sealed so that
// the decoding past the checksum is reached. Load must return a state or an
// error wrapping page.ErrCorrupt; never panic, hang or allocate by an
// unchecked count.
func FuzzLoad(f *testing.F) {
	d, head := buildChain(f, 4)
	f.Add(d.pages[head.ID][page.HeaderSize:], uint64(0), uint16(0))
	f.Add(make([]byte, 64), uint64(1<<62), uint16(7))
	f.Fuzz(func(t *testing.T, body []byte, count uint64, at uint16) {
		run := make([]byte, 1024)
		// The head as a run of each type (a format-1 head is read back to
		// a checkpoint or to the empty state).
		typ := runTypes[int(at)%len(runTypes)]
		page.PutHeader(run, page.Header{ID: head.ID, TxID: head.TxID, Type: typ, Span: 1})
		copy(run[page.HeaderSize:], body)
		if len(body) > 48 {
			binary.LittleEndian.PutUint64(run[page.HeaderSize+40:], count) // v1 count; sweep nops and nents
		}
		if int(at) < len(run)-page.HeaderSize {
			run[page.HeaderSize+int(at)] ^= 0x5a
		}
		sum := page.Seal(run)
		ref := page.Ref{ID: head.ID, Checksum: sum, TxID: head.TxID}
		pages := map[page.ID][]byte{}
		for id, p := range d.pages {
			pages[id] = p
		}
		pages[head.ID] = run
		fd := &disk{pageSize: 1024, pages: pages}
		fl, err := Load(ref, 1024, fd.read)
		if err != nil {
			if !errors.Is(err, page.ErrCorrupt) {
				t.Fatalf("Load error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if err := fl.verify(); err != nil {
			t.Fatalf("Load accepted an inconsistent state: %v", err)
		}
	})
}

// fragmented returns the state after transaction 1 allocated
// 2*freeEntries+2 pages and freed every other one: freeEntries extents
// that cannot coalesce. live is the last page, still in use.
func fragmented(freeEntries int) (f *Freelist, live page.ID) {
	f = New(2)
	f.Begin(1)
	ids := make([]page.ID, 0, 2*freeEntries+2)
	for i := 0; i < 2*freeEntries+2; i++ {
		ids = append(ids, f.Allocate(1))
	}
	for i := 0; i < 2*freeEntries; i += 2 {
		f.Free(ids[i], 1, 1)
	}
	f.Commit()
	return f, ids[len(ids)-1]
}

func benchCommit(b *testing.B, freeEntries int) {
	f, live := fragmented(freeEntries)
	tx := page.TxID(2)
	d := newDisk(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Release([]page.TxID{tx - 1})
		f.Begin(tx)
		next := f.Allocate(1) // the commit's one rewritten page
		f.Free(live, 1, tx-1)
		live = next
		runs, _, err := f.Persist(4096, f.Allocate)
		if err != nil {
			b.Fatal(err)
		}
		if i < 3 {
			d.writeRuns(runs)
		}
		f.Commit()
		tx++
	}
}

// The free-space cost of a 1-page commit must not depend on the size of
// the free list (bbolt rewrites the whole list every commit).
func BenchmarkCommitSmallFreelist(b *testing.B) { benchCommit(b, 0) }
func BenchmarkCommitHugeFreelist(b *testing.B)  { benchCommit(b, 1_000_000) }

// BenchmarkLoadHugeFreelist measures Load of a state of a million free
// extents that cannot coalesce, persisted by one-page commits until two
// sweeps have gone through it: what opening such a file reads and builds.
func BenchmarkLoadHugeFreelist(b *testing.B) {
	f, live := fragmented(1_000_000)
	runs := map[page.ID][]byte{} // every run written, by first page
	var head page.Ref
	tx := page.TxID(2)
	for sweeps := 0; sweeps < 2; tx++ {
		f.Release([]page.TxID{tx - 1})
		f.Begin(tx)
		next := f.Allocate(1)
		f.Free(live, 1, tx-1)
		live = next
		written, ref, err := f.Persist(4096, f.Allocate)
		if err != nil {
			b.Fatal(err)
		}
		for _, run := range written {
			runs[page.GetHeader(run).ID] = run
		}
		f.Commit()
		head = ref
		if f.sweepAt == firstPage {
			sweeps++
		}
	}
	read := func(r page.Ref) ([]byte, error) {
		if run, ok := runs[r.ID]; ok {
			return run, nil
		}
		return nil, page.Corrupt(r.ID, "never written")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fl, err := Load(head, 4096, read)
		if err != nil {
			b.Fatal(err)
		}
		if fl.free.len() != f.free.len() || fl.FreeCount() != f.FreeCount() || fl.PendingCount() != f.PendingCount() {
			b.Fatalf("loaded %d free extents (%d pages, %d pending), the state has %d (%d, %d)",
				fl.free.len(), fl.FreeCount(), fl.PendingCount(), f.free.len(), f.FreeCount(), f.PendingCount())
		}
	}
}
