package freelist

import (
	"math/rand"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// DecodeRun reads back what Persist wrote: a small state whole, without
// ops; a larger one as the commit's ops and a segment.
func TestDecodeRun(t *testing.T) {
	f := New(2)
	f.Begin(1)
	a := f.Allocate(3)
	f.Free(a+1, 1, 1) // written and freed by this tx: free at once
	runs, _, err := f.Persist(1024, f.Allocate)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := DecodeRun(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ri.Type != page.TypeFreeSweep || !ri.Prev.IsZero() || ri.Base != 1 || ri.Count != 1 || len(ri.Ops) != 0 {
		t.Fatalf("whole run: %+v", ri)
	}
	if ri.Lo != firstPage || ri.Hi != maxPages || len(ri.Entries) != 1 || ri.Entries[0] != (Entry{ID: a + 1, Span: 1}) {
		t.Errorf("segment [%d, %d): %+v", ri.Lo, ri.Hi, ri.Entries)
	}
	if ri.UsedBytes != page.HeaderSize+sweepFixed+entrySize || ri.HWM != f.HWM() {
		t.Errorf("used %d hwm %d", ri.UsedBytes, ri.HWM)
	}
	f.Commit()

	// 100 isolated free pages: a one-page commit's run holds its ops and
	// the first entries.
	f.Begin(2)
	first := f.Allocate(200)
	for i := 0; i < 200; i += 2 {
		f.Free(first+page.ID(i), 1, 2)
	}
	if _, _, err := f.Persist(1024, f.Allocate); err != nil {
		t.Fatal(err)
	}
	f.Commit()
	f.Begin(3)
	b := f.Allocate(1)
	runs, _, err = f.Persist(1024, f.Allocate)
	if err != nil {
		t.Fatal(err)
	}
	if ri, err = DecodeRun(runs[0]); err != nil {
		t.Fatal(err)
	}
	n := budget(2, 1024)
	if len(ri.Ops) != 2 || ri.Ops[0] != (Op{ID: b, Span: 1, Kind: "alloc"}) || ri.Lo != firstPage || len(ri.Entries) != n {
		t.Fatalf("run of tx 3: ops %+v, segment from %d with %d entries, want %d", ri.Ops, ri.Lo, len(ri.Entries), n)
	}
	if last := ri.Entries[n-1]; ri.Hi != last.ID+2 || ri.Count != uint64(2+n) {
		t.Errorf("segment ends at %d, its last entry is %+v", ri.Hi, last)
	}
}

// A count larger than the run is an error, and the items that fit are
// returned; random bytes never panic.
func TestDecodeRunDamaged(t *testing.T) {
	run := make([]byte, 1024)
	page.PutHeader(run, page.Header{ID: 7, Type: page.TypeFreeDelta, Span: 1})
	le.PutUint64(run[page.HeaderSize+v1OffCount:], 1000)
	ri, err := DecodeRun(run)
	if err == nil || len(ri.Ops) != (1024-page.HeaderSize-v1Fixed)/opSize {
		t.Fatalf("format 1: %d ops, err %v", len(ri.Ops), err)
	}
	page.PutHeader(run, page.Header{ID: 7, Type: page.TypeFreeSweep, Span: 1})
	le.PutUint32(run[page.HeaderSize+offNops:], 10)
	le.PutUint32(run[page.HeaderSize+offNents:], 1000)
	ri, err = DecodeRun(run)
	if err == nil || len(ri.Ops) != 10 || len(ri.Entries) != (1024-page.HeaderSize-sweepFixed-10*opSize)/entrySize {
		t.Fatalf("sweep: %d ops, %d entries, err %v", len(ri.Ops), len(ri.Entries), err)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.Intn(4096))
		r.Read(b)
		if len(b) > 24 {
			b[24] = byte(runTypes[r.Intn(len(runTypes))])
		}
		DecodeRun(b)
	}
}
