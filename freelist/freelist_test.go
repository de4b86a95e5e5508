package freelist

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

func mustVerify(t *testing.T, f *Freelist) {
	t.Helper()
	if err := f.verify(); err != nil {
		t.Fatal(err)
	}
}

func entriesOf(f *Freelist) []Entry {
	var es []Entry
	f.Entries(func(e Entry) bool { es = append(es, e); return true })
	slices.SortFunc(es, func(a, b Entry) int { return cmpTx(page.TxID(a.ID), page.TxID(b.ID)) })
	return es
}

// commit persists the current transaction of f to d (1 KiB pages) and
// commits it, returning the runs written and the new head.
func commit(t *testing.T, f *Freelist, d *disk) ([][]byte, page.Ref) {
	t.Helper()
	runs, ref, err := f.Persist(page.MinSize, f.Allocate)
	if err != nil {
		t.Fatal(err)
	}
	d.writeRuns(runs)
	f.Commit()
	return runs, ref
}

// rewriteOne begins tx, releases what tx-1 no longer needs and replaces
// the one live page obj (0: none yet) by a new one, as a one-key commit
// rewrites its leaf. It returns the new page.
func rewriteOne(f *Freelist, tx page.TxID, obj page.ID) page.ID {
	f.Begin(tx)
	f.Release([]page.TxID{tx - 1})
	if obj != 0 {
		f.Free(obj, 1, tx-1)
	}
	return f.Allocate(1)
}

// loadsLikeLive loads the state whose head is ref from d and checks that,
// once both release what tx alone no longer sees, it equals the live f:
// entries, HWM and live runs.
func loadsLikeLive(t *testing.T, f *Freelist, d *disk, ref page.Ref, tx page.TxID) {
	t.Helper()
	g, err := Load(ref, d.pageSize, d.read)
	if err != nil {
		t.Fatalf("tx %d: %v", tx, err)
	}
	g.Release([]page.TxID{tx})
	f.Release([]page.TxID{tx})
	if !slices.Equal(entriesOf(g), entriesOf(f)) || g.HWM() != f.HWM() || !slices.Equal(g.Chain(), f.Chain()) {
		t.Fatalf("tx %d: loaded state differs from the live one: HWM %d/%d, runs %v/%v", tx, g.HWM(), f.HWM(), g.Chain(), f.Chain())
	}
}

func wantAlloc(t *testing.T, f *Freelist, span int, want page.ID) {
	t.Helper()
	if got := f.Allocate(span); got != want {
		t.Fatalf("Allocate(%d) = %d, want %d", span, got, want)
	}
	mustVerify(t, f)
}

func TestAllocatePlacement(t *testing.T) {
	f := New(2)
	f.Begin(1)
	for i := range 40 {
		wantAlloc(t, f, 1, page.ID(2+i)) // one run from the end of the file
	}
	// Born in this tx, so free at once: 20 holes of one page.
	for id := page.ID(2); id < 42; id += 2 {
		f.Free(id, 1, 1)
	}
	mustVerify(t, f)
	f.Commit()

	// No hole holds the 40 pages tx 1 allocated: the run goes to the end.
	f.Begin(2)
	wantAlloc(t, f, 1, 42)
	wantAlloc(t, f, 2, 43) // the run continues at the end
	f.Commit()

	// No hole holds the 3 pages of tx 2, but 20 pages are free: the
	// holes, lowest first, not the end of the file.
	f.Begin(3)
	wantAlloc(t, f, 1, 2)
	wantAlloc(t, f, 1, 4)  // 3 is not free: the lowest hole
	wantAlloc(t, f, 2, 45) // no hole of 2: the file grows
	wantAlloc(t, f, 1, 47) // and the run continues there
	f.Commit()
	if f.HWM() != 48 {
		t.Fatalf("HWM %d, want 48", f.HWM())
	}

	// A run at the end grows by at most runCap pages while holes exist.
	f = New(2)
	f.Begin(1)
	f.Allocate(10) // 2..11
	f.Free(3, 1, 1)
	f.Free(5, 1, 1)
	f.Commit()
	f.Begin(2) // 2 free pages cannot hold 2×10: the end
	for i := range runCap {
		wantAlloc(t, f, 1, page.ID(12+i))
	}
	// Past runCap the run would take holes, but single pages are skipped
	// while less than a quarter of the file is free.
	wantAlloc(t, f, 1, 12+runCap)
	wantAlloc(t, f, 1, 13+runCap)
	f.Commit()
	f.Begin(3)
	f.Free(6, 4, 1) // once released, with 5: the hole 5..9; 3 stays alone
	f.Commit()
	f.Begin(4)
	f.Release([]page.TxID{3})
	wantAlloc(t, f, 1, 3) // tx 3 allocated nothing: the lowest page
	wantAlloc(t, f, 1, 5) // 4 is live; 5..9 holds minHole pages
	for id := page.ID(6); id < 10; id++ {
		wantAlloc(t, f, 1, id)
	}
	wantAlloc(t, f, 1, 14+runCap) // no hole left

	// A hole as large as the last commit takes the whole next commit,
	// even where a lower one holds part of it.
	f = New(2)
	f.Begin(1)
	f.Allocate(20) // 2..21
	f.Free(4, 3, 1)
	f.Free(10, 5, 1)
	f.Commit()
	f.Begin(2)
	for i := range 4 {
		wantAlloc(t, f, 1, page.ID(22+i)) // no hole of 20: the end
	}
	f.Commit()
	f.Begin(3)
	for i := range 4 {
		wantAlloc(t, f, 1, page.ID(10+i)) // 4..6 is lower but holds 3
	}
	wantAlloc(t, f, 1, 14) // the run continues
	wantAlloc(t, f, 1, 26) // 15 is not free, and 4..6 is under minHole pages
}

func TestSmallHolesSkippedUntilAQuarterIsFree(t *testing.T) {
	f := New(2)
	f.Begin(1)
	f.Allocate(100) // 2..101
	for _, id := range []page.ID{10, 12, 14} {
		f.Free(id, 1, 1)
	}
	f.Commit()
	f.Begin(2)
	for i := range runCap {
		wantAlloc(t, f, 1, page.ID(102+i))
	}
	wantAlloc(t, f, 1, 166) // 3 single-page holes in 166 pages: skipped
	f.Free(102, 39, 2)      // born in this tx: free at once
	wantAlloc(t, f, 1, 10)  // 42 of 167 pages free: every hole counts
}

func TestFreeCoalesces(t *testing.T) {
	f := New(2)
	f.Begin(1)
	f.Allocate(40) // pages 2..41
	ids := rand.New(rand.NewPCG(3, 4)).Perm(10)
	for _, i := range ids {
		f.Free(page.ID(20+i), 1, 1)
		mustVerify(t, f)
	}
	got := entriesOf(f)
	if want := []Entry{{ID: 20, Span: 10}}; !slices.Equal(got, want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	// The transaction's run continues at the end of the file; the next
	// one starts in the coalesced hole.
	wantAlloc(t, f, 1, 42)
	f.Commit()
	f.Begin(2)
	f.Commit() // allocates nothing: the next looks for its own size only
	f.Begin(3)
	wantAlloc(t, f, 10, 20)
}

func TestAllocateExtendsTailExtent(t *testing.T) {
	f := New(2)
	f.Begin(1)
	f.Allocate(10) // pages 2..11
	f.Free(10, 2, 1)
	// No hole holds 4 pages, but the free tail 10..11 can start the run:
	// the file grows by 2, not 4, and leaves no hole behind.
	wantAlloc(t, f, 4, 10)
	if f.HWM() != 14 || f.FreeCount() != 0 {
		t.Fatalf("HWM %d free %d, want 14 and 0", f.HWM(), f.FreeCount())
	}
	f.Rollback()
	if f.HWM() != 2 || f.FreeCount() != 0 || len(entriesOf(f)) != 0 {
		t.Fatalf("after rollback: HWM %d entries %+v", f.HWM(), entriesOf(f))
	}
}

// TestLifespanAroundReader is the case an "oldest reader" rule gets wrong:
// a version born after an old reader and freed before the latest commit is
// visible to nobody and must be reused although the old reader is active.
func TestLifespanAroundReader(t *testing.T) {
	f := New(2)
	f.Begin(1)
	a := f.Allocate(1) // born 1
	f.Commit()
	f.Begin(4)
	b := f.Allocate(1) // born 4
	f.Commit()
	f.Begin(6)
	f.Free(a, 1, 1) // visible to [1, 6)
	f.Free(b, 1, 4) // visible to [4, 6)
	f.Commit()
	mustVerify(t, f)

	// A reader at 3 and the latest commit 6: 3 lies in [1, 6) only.
	f.Begin(7)
	f.Release([]page.TxID{3, 6})
	mustVerify(t, f)
	if !f.IsFree(b) || f.IsFree(a) {
		t.Fatalf("IsFree(a)=%v IsFree(b)=%v, want false, true", f.IsFree(a), f.IsFree(b))
	}
	wantAlloc(t, f, 1, b)
	f.Commit()

	// A snapshot at 5 would have pinned b; a reader at 6 (= freed) sees
	// neither. Once the reader at 3 ends, a is free.
	f.Begin(8)
	f.Release([]page.TxID{6, 7})
	if !f.IsFree(a) || f.PendingCount() != 0 {
		t.Fatalf("IsFree(a)=%v pending %d after the reader ended", f.IsFree(a), f.PendingCount())
	}
	mustVerify(t, f)
}

func TestSnapshotPinsOnlyItsVersions(t *testing.T) {
	f := New(2)
	f.Begin(1)
	p := f.Allocate(3) // 2..4, born 1
	f.Commit()
	f.Begin(10)
	f.Free(p, 1, 1)   // [1, 10)
	f.Free(p+1, 1, 1) // [1, 10)
	f.Commit()
	f.Begin(11)
	f.Release([]page.TxID{10, 10, 12})        // duplicates and unsorted tail are fine
	if f.FreeCount() != 2 || !f.IsFree(p+1) { // nothing retained in [1,10)
		t.Fatalf("free %d, want 2", f.FreeCount())
	}
	f.Commit()

	f.Begin(20)
	f.Free(p+2, 1, 1) // [1, 20)
	f.Commit()
	f.Begin(21)
	f.Release([]page.TxID{19, 20}) // snapshot of 19 sees it
	if f.IsFree(p+2) || f.PendingCount() != 1 {
		t.Fatal("a snapshot inside the lifespan did not pin the page")
	}
	f.Release([]page.TxID{20})
	if !f.IsFree(p + 2) {
		t.Fatal("deleting the snapshot did not release the page")
	}
	mustVerify(t, f)
}

// TestReleaseCost checks that Release looks only at groups whose verdict can
// change: with many groups pinned by an old snapshot, advancing the latest
// commit costs O(new groups), an unchanged set costs nothing, and dropping
// the snapshot re-evaluates (and frees) everything.
func TestReleaseCost(t *testing.T) {
	f := New(2)
	f.Begin(1)
	base := f.Allocate(1000) // born 1, pinned by the snapshot at 1
	f.Commit()
	const groups = 200
	for i := range groups {
		tx := page.TxID(2 + i)
		f.Begin(tx)
		f.Release([]page.TxID{1, tx - 1})
		before := f.evals
		f.Release([]page.TxID{1, tx - 1})
		if f.evals != before {
			t.Fatalf("tx %d: unchanged retained set re-evaluated %d groups", tx, f.evals-before)
		}
		f.Free(base+page.ID(i), 1, 1)
		f.Commit()
	}
	// Each new group is looked at when it is new; moving "latest" from
	// tx-1 to tx touches only groups freed after tx-1.
	if f.evals > 2*groups {
		t.Fatalf("%d evaluations for %d groups", f.evals, groups)
	}
	if f.PendingCount() != groups || len(f.groups) != groups {
		t.Fatalf("pending %d groups %d, want %d", f.PendingCount(), len(f.groups), groups)
	}
	before := f.evals
	f.Begin(1000)
	f.Release([]page.TxID{999})
	if f.evals-before != groups || f.PendingCount() != 0 || len(f.groups) != 0 {
		t.Fatalf("dropping the snapshot: %d evaluations, pending %d, groups %d", f.evals-before, f.PendingCount(), len(f.groups))
	}
	if f.FreeCount() != groups {
		t.Fatalf("free %d, want %d", f.FreeCount(), groups)
	}
	mustVerify(t, f)
}

func TestFreeInconsistentIsReportedByPersist(t *testing.T) {
	f := New(2)
	f.Begin(1)
	p := f.Allocate(4)
	f.Commit()
	f.Begin(2)
	f.Free(p, 2, 1)
	cases := []struct {
		id   page.ID
		span int
		born page.TxID
	}{
		{p + 1, 1, 1},  // already pending
		{p + 3, 2, 1},  // beyond HWM
		{1, 1, 1},      // meta page
		{p + 2, 1, 3},  // born after the freeing tx
		{p + 2, 0, 1},  // empty
		{p + 20, 1, 1}, // beyond HWM
		{p + 2, -1, 1}, // negative
		{p + 2, 1 << 40, 1},
	}
	for _, c := range cases {
		before := entriesOf(f)
		f.Free(c.id, c.span, c.born)
		if !slices.Equal(before, entriesOf(f)) {
			t.Fatalf("Free(%d, %d, %d) changed the state", c.id, c.span, c.born)
		}
		_, _, err := f.Persist(page.MinSize, f.Allocate)
		if !errors.Is(err, page.ErrCorrupt) {
			t.Fatalf("Free(%d, %d, %d): Persist error %v, want ErrCorrupt", c.id, c.span, c.born, err)
		}
		f.Rollback()
		f.Begin(2)
		f.Free(p, 2, 1)
	}
	mustVerify(t, f)
}

func TestPersistRejectsForeignAlloc(t *testing.T) {
	f := New(2)
	f.Begin(1)
	f.Allocate(1)
	_, _, err := f.Persist(4096, func(int) page.ID { return 100 })
	if err == nil {
		t.Fatal("Persist accepted a run placed outside the freelist")
	}
	_, _, err = f.Persist(4096, func(n int) page.ID { f.Allocate(n); return f.Allocate(n) })
	if err == nil {
		t.Fatal("Persist accepted two allocations for one run")
	}
	f.Rollback()
	if f.HWM() != 2 {
		t.Fatalf("HWM %d after rollback, want 2", f.HWM())
	}
	f.Begin(1)
	if _, _, err := f.Persist(1000, f.Allocate); err == nil {
		t.Fatal("Persist accepted page size 1000")
	}
}

func TestAllocatePanicsOnBadSpan(t *testing.T) {
	for _, span := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Allocate(%d) did not panic", span)
				}
			}()
			New(2).Allocate(span)
		}()
	}
}

// TestSweepFreesWhatItSupersedes keeps a state of 400 isolated free pages
// under one-page commits, so that a sweep takes many commits: each commit
// must free about as many runs as it writes (no commit rewrites or frees
// the whole state), the live runs must stay about one sweep long, and the
// state must load from them after every commit.
func TestSweepFreesWhatItSupersedes(t *testing.T) {
	d := newDisk(page.MinSize)
	f := New(2)
	f.Begin(1)
	first := f.Allocate(800)
	commit(t, f, d)
	f.Begin(2)
	for i := 0; i < 800; i += 2 {
		f.Free(first+page.ID(i), 1, 1)
	}
	commit(t, f, d)
	perSweep := 400/budget(4, page.MinSize) + 1 // a commit below logs about 4 ops
	sweeps, maxChain := 0, 0
	var obj page.ID
	for tx := page.TxID(3); tx < 300; tx++ {
		obj = rewriteOne(f, tx, obj)
		before := f.Chain()
		pending := f.PendingCount()
		runs, ref := commit(t, f, d)
		ri, err := DecodeRun(runs[0])
		if err != nil {
			t.Fatal(err)
		}
		after := f.Chain()
		dropped := len(before) + 1 - len(after)
		if dropped < 0 || !slices.Equal(after[1:], before[:len(before)-dropped]) || after[0] != ref {
			t.Fatalf("tx %d: chain %v after %v", tx, after, before)
		}
		if tx > 2*page.TxID(perSweep)+10 && dropped > 3 {
			t.Fatalf("tx %d: one commit freed %d runs", tx, dropped)
		}
		// The dropped runs are pending (the fallback still reads them).
		if got := f.PendingCount() - pending; got < dropped {
			t.Fatalf("tx %d: %d runs dropped, %d pages became pending", tx, dropped, got)
		}
		if ri.Hi == maxPages {
			sweeps++
		}
		maxChain = max(maxChain, len(after))
		loadsLikeLive(t, f, d, ref, tx)
	}
	if sweeps < 5 {
		t.Fatalf("only %d sweeps completed", sweeps)
	}
	if maxChain < perSweep/2 || maxChain > 2*perSweep+2 {
		t.Fatalf("live chain up to %d runs, a sweep is about %d", maxChain, perSweep)
	}
	t.Logf("%d sweeps of about %d runs, live chain up to %d runs", sweeps, perSweep, maxChain)
}

// TestSmallStateSweepsEveryCommit checks that while the state fits in one
// run, every commit's segment is the whole state,
// so the next commit frees every page this one wrote, and the commit after
// that finds them as one extent and writes its pages there, together.
func TestSmallStateSweepsEveryCommit(t *testing.T) {
	d := newDisk(page.MinSize)
	f := New(2)
	var obj page.ID // the one live page of the "tree"
	runStart := map[page.TxID]page.ID{}
	for tx := page.TxID(1); tx <= 50; tx++ {
		obj = rewriteOne(f, tx, obj)
		chain := f.Chain()
		runs, ref := commit(t, f, d)
		runStart[tx] = obj
		if ref.ID != obj+1 {
			t.Fatalf("tx %d: free-space run at page %d, not next to the commit's page %d", tx, ref.ID, obj)
		}
		if ri, err := DecodeRun(runs[0]); err != nil || ri.Lo != firstPage || ri.Hi != maxPages {
			t.Fatalf("tx %d: a segment of part of a state that fits in one page: %+v %v", tx, ri, err)
		}
		if len(chain) > 1 {
			t.Fatalf("tx %d: chain of %d runs", tx, len(chain))
		}
		if tx > 4 && obj != runStart[tx-2] {
			t.Fatalf("tx %d: pages at %d, not in the extent commit %d wrote at %d", tx, obj, tx-2, runStart[tx-2])
		}
	}
	if f.HWM() > 10 {
		t.Fatalf("HWM %d after 50 one-page commits", f.HWM())
	}
}

func TestLoadEmpty(t *testing.T) {
	f, err := Load(page.Ref{}, 4096, func(page.Ref) ([]byte, error) {
		t.Fatal("read called for a zero head")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.HWM() != 2 || len(entriesOf(f)) != 0 || len(f.Chain()) != 0 {
		t.Fatalf("empty load: HWM %d entries %v chain %v", f.HWM(), entriesOf(f), f.Chain())
	}
}

// TestHoldLogsKeepsSupersededChain checks that a commit frees the runs it
// supersedes as born no later than the version HoldLogs names, so that a
// reader of that version keeps them; without it they are released.
func TestHoldLogsKeepsSupersededChain(t *testing.T) {
	for _, hold := range []bool{false, true} {
		d := newDisk(page.MinSize)
		f := New(2)
		// A state of 100 isolated free pages: a sweep takes a few commits.
		f.Begin(1)
		first := f.Allocate(200)
		for i := 0; i < 200; i += 2 {
			f.Free(first+page.ID(i), 1, 1)
		}
		commit(t, f, d)
		const reader = 2 // a reader holds version 2 and its runs
		for tx := page.TxID(2); ; tx++ {
			if tx > 300 {
				t.Fatal("the reader's runs were never superseded")
			}
			f.Begin(tx)
			f.Release([]page.TxID{reader, tx - 1})
			if hold {
				f.HoldLogs(reader)
			}
			f.Allocate(1)
			chain := f.Chain()
			commit(t, f, d)
			now := f.Chain()
			var old []page.Ref // superseded runs of the reader's version or older
			for _, r := range chain {
				if r.TxID <= reader && !slices.Contains(now, r) {
					old = append(old, r)
				}
			}
			if len(old) == 0 || tx <= reader {
				continue
			}
			// The next transaction releases what no retained txid sees.
			f.Begin(tx + 1)
			f.Release([]page.TxID{reader, tx})
			kept := 0
			for _, r := range old {
				if !f.IsFree(r.ID) {
					kept++
				}
			}
			if hold && kept != len(old) || !hold && kept != 0 {
				t.Fatalf("hold %v: %d of the %d superseded runs of version %d kept", hold, kept, len(old), reader)
			}
			break
		}
	}
}

// TestFormat1CheckpointBase writes a format-1 checkpoint of a state too
// large for one sweep run by hand, loads it, and goes on committing: the
// checkpoint stays the base until the first sweep completes, then is
// superseded. Every head loads to the live state.
func TestFormat1CheckpointBase(t *testing.T) {
	const ps = page.MinSize
	d := newDisk(ps)
	f := New(2)
	f.Begin(1)
	first := f.Allocate(400)
	for i := 0; i < 400; i += 2 {
		f.Free(first+page.ID(i), 1, 1) // born by this tx: free at once
	}
	es := entriesOf(f)
	span := page.SpanFor(uint64(v1Fixed+entrySize*len(es)), ps)
	id := f.Allocate(int(span))
	run := make([]byte, span*ps)
	page.PutHeader(run, page.Header{ID: id, TxID: 1, Type: page.TypeFreeCheckp, Span: uint32(span)})
	b := run[page.HeaderSize:]
	le.PutUint64(b[offHWM:], uint64(f.HWM()))
	le.PutUint64(b[v1OffCount:], uint64(len(es)))
	for i, e := range es {
		putEntry(b[v1Fixed+i*entrySize:], e)
	}
	head := page.Ref{ID: id, Checksum: page.Seal(run), TxID: 1}
	d.writeRuns([][]byte{run})

	g, err := Load(head, ps, d.read)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(entriesOf(g), es) || g.HWM() != f.HWM() {
		t.Fatalf("format-1 checkpoint loads to %v, want %v", entriesOf(g), es)
	}
	var obj page.ID
	superseded := false
	for tx := page.TxID(2); tx < 60; tx++ {
		obj = rewriteOne(g, tx, obj)
		_, ref := commit(t, g, d)
		chain := g.Chain()
		if chain[len(chain)-1] != head {
			superseded = true
		} else if superseded {
			t.Fatalf("tx %d: the checkpoint came back into the chain", tx)
		}
		loadsLikeLive(t, g, d, ref, tx)
		if tx == 2 && superseded {
			t.Fatal("a one-page commit wrote the whole state: the test needs a larger one")
		}
	}
	if !superseded {
		t.Fatal("the first sweep never completed")
	}
}

// TestMoveMergedMatchesMoveEach runs the same random transactions (runs
// allocated, freed, released under random readers) with releases moved
// one by one and in merged passes: after every Release the states must be
// equal and valid.
func TestMoveMergedMatchesMoveEach(t *testing.T) {
	defer func(old func(int, int) bool) { mergeMoves = old }(mergeMoves)
	type run struct {
		id   page.ID
		span int
		born page.TxID
	}
	for seed := uint64(0); seed < 30; seed++ {
		var states [2][][]Entry
		for mode := range 2 {
			mergeMoves = func(int, int) bool { return mode == 1 }
			rng := rand.New(rand.NewPCG(seed, 5))
			f := New(2)
			var live []run
			for tx := page.TxID(1); tx <= 25; tx++ {
				f.Begin(tx)
				retained := []page.TxID{tx - 1}
				for r := page.TxID(1); r+1 < tx; r++ {
					if rng.IntN(4) == 0 {
						retained = append(retained, r)
					}
				}
				f.Release(retained)
				mustVerify(t, f)
				states[mode] = append(states[mode], entriesOf(f))
				keep := live[:0]
				for _, r := range live {
					if rng.IntN(3) == 0 {
						f.Free(r.id, r.span, r.born)
					} else {
						keep = append(keep, r)
					}
				}
				live = keep
				for range 20 + rng.IntN(60) {
					span := 1 + rng.IntN(3)
					live = append(live, run{f.Allocate(span), span, tx})
				}
				f.Commit()
			}
		}
		for i := range states[0] {
			if !slices.Equal(states[0][i], states[1][i]) {
				t.Fatalf("seed %d, tx %d: releasing one by one and merged give different states", seed, i+1)
			}
		}
	}
}
