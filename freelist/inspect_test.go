package freelist

import (
	"math/rand"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// DecodeRun reads back what Persist wrote: a delta's ops, and a
// checkpoint's entries.
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
	if ri.Type != page.TypeFreeDelta || !ri.Prev.IsZero() || ri.Count != 3 || len(ri.Ops) != 3 {
		t.Fatalf("delta: %+v", ri)
	}
	if o := ri.Ops[0]; o.Kind != "alloc" || o.ID != a || o.Span != 3 {
		t.Errorf("op 0: %+v", o)
	}
	if o := ri.Ops[1]; o.Kind != "free" || o.ID != a+1 || o.Born != 1 {
		t.Errorf("op 1: %+v", o)
	}
	if ri.UsedBytes != page.HeaderSize+fixedSize+3*opSize || ri.HWM != f.HWM() {
		t.Errorf("used %d hwm %d", ri.UsedBytes, ri.HWM)
	}
	f.Commit()

	// A checkpoint lists the free extent.
	f.Begin(2)
	runs, _, err = f.persistCheckpoint(1024, f.Allocate)
	if err != nil {
		t.Fatal(err)
	}
	ri, err = DecodeRun(runs[0])
	if err != nil || ri.Type != page.TypeFreeCheckp || len(ri.Entries) == 0 {
		t.Fatalf("checkpoint: %+v %v", ri, err)
	}
}

// A count larger than the run is an error, and the items that fit are
// returned; random bytes never panic.
func TestDecodeRunDamaged(t *testing.T) {
	run := make([]byte, 1024)
	page.PutHeader(run, page.Header{ID: 7, Type: page.TypeFreeDelta, Span: 1})
	le.PutUint64(run[page.HeaderSize+offCount:], 1000)
	ri, err := DecodeRun(run)
	if err == nil || len(ri.Ops) != (1024-page.HeaderSize-fixedSize)/opSize {
		t.Fatalf("%d ops, err %v", len(ri.Ops), err)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.Intn(4096))
		r.Read(b)
		if len(b) > 24 {
			b[24] = byte(page.TypeFreeDelta + page.Type(r.Intn(2)))
		}
		DecodeRun(b)
	}
}
