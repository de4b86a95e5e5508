package freelist

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// model is the reference the Freelist is checked against: one state per
// page, the lifespan rule applied page by page, allocation by scanning for
// the lowest id that starts a run of free pages (or pages at/after HWM),
// except where the placement rule of Allocate says otherwise: a commit's
// first allocation looks for room for as many pages as the last commit
// allocated (at most runCap), later ones continue where the previous ended.
type model struct {
	hwm   page.ID
	pages map[page.ID]pageState // free or pending; absent = in use or beyond HWM

	cursor    page.ID // 0: no allocation yet in this transaction
	allocated int     // pages allocated in this transaction
	lastAlloc int     // pages the last committed transaction allocated
}

type pageState struct {
	pending     bool
	born, freed page.TxID
}

func newModel() *model { return &model{hwm: 2, pages: map[page.ID]pageState{}} }

func (m *model) clone() *model {
	c := *m
	c.pages = maps.Clone(m.pages)
	return &c
}

// begin and commit delimit a transaction for the placement rule.
func (m *model) begin()  { m.cursor, m.allocated = 0, 0 }
func (m *model) commit() { m.lastAlloc = m.allocated }

// isFree reports whether every page of [s, s+n) is free and below HWM.
func (m *model) isFree(s page.ID, n int) bool {
	for p := s; p < s+page.ID(n); p++ {
		if st, ok := m.pages[p]; !ok || st.pending || p >= m.hwm {
			return false
		}
	}
	return true
}

// takeAtEnd places span pages at HWM, or where the free pages just below
// HWM start (they join the run).
func (m *model) takeAtEnd(span int) page.ID {
	s := m.hwm
	for s > 2 && m.isFree(s-1, 1) {
		s--
	}
	return m.take(s, span)
}

func (m *model) freeCount() int {
	n := 0
	for p, st := range m.pages {
		if !st.pending && p < m.hwm {
			n++
		}
	}
	return n
}

func (m *model) take(s page.ID, span int) page.ID {
	for p := s; p < s+page.ID(span); p++ {
		delete(m.pages, p)
	}
	m.hwm = max(m.hwm, s+page.ID(span))
	m.cursor = s + page.ID(span)
	m.allocated += span
	return s
}

func (m *model) usable(p page.ID) bool {
	if p >= m.hwm {
		return true
	}
	st, ok := m.pages[p]
	return ok && !st.pending
}

func (m *model) alloc(span int) page.ID {
	switch {
	case m.cursor == 0:
		want := max(span, min(m.lastAlloc, runCap))
		for s := page.ID(2); s < m.hwm; s++ {
			if m.isFree(s, want) {
				return m.take(s, span)
			}
		}
		if m.freeCount() < 2*want {
			return m.takeAtEnd(span)
		}
	case m.cursor == m.hwm && m.allocated < runCap:
		return m.takeAtEnd(span)
	case m.cursor < m.hwm && m.isFree(m.cursor, span):
		return m.take(m.cursor, span)
	}
	if m.freeCount() < int(m.hwm/holeShare) {
		hole := max(span, minHole)
		for s := page.ID(2); s < m.hwm; s++ {
			if m.isFree(s, hole) {
				return m.take(s, span)
			}
		}
		return m.takeAtEnd(span)
	}
	for s := page.ID(2); ; s++ {
		fits := true
		for p := s; p < s+page.ID(span); p++ {
			if !m.usable(p) {
				fits = false
				s = p // the next candidate starts after p
				break
			}
		}
		if fits {
			return m.take(s, span)
		}
	}
}

func (m *model) free(id page.ID, span int, born, tx page.TxID) {
	for p := id; p < id+page.ID(span); p++ {
		if _, ok := m.pages[p]; ok || p >= m.hwm {
			panic(fmt.Sprintf("model: page %d freed twice", p))
		}
		if born == tx {
			m.pages[p] = pageState{}
		} else {
			m.pages[p] = pageState{pending: true, born: born, freed: tx}
		}
	}
}

func (m *model) release(retained []page.TxID) {
	for p, st := range m.pages {
		if !st.pending {
			continue
		}
		seen := false
		for _, x := range retained {
			if st.born <= x && x < st.freed {
				seen = true
			}
		}
		if !seen {
			m.pages[p] = pageState{}
		}
	}
}

// pagesOf expands the Freelist's entries into the model's form.
func pagesOf(f *Freelist) map[page.ID]pageState {
	got := map[page.ID]pageState{}
	f.Entries(func(e Entry) bool {
		for p := e.ID; p < e.end(); p++ {
			got[p] = pageState{pending: e.Freed != 0, born: e.Born, freed: e.Freed}
		}
		return true
	})
	return got
}

// disk is an in-memory file of pages. read verifies runs as the engine
// would (checksum and Merkle reference), so a freelist run that was
// overwritten because the freelist handed out its pages is caught.
type disk struct {
	pageSize int
	pages    map[page.ID][]byte
}

func newDisk(pageSize int) *disk { return &disk{pageSize: pageSize, pages: map[page.ID][]byte{}} }

func (d *disk) writeRuns(runs [][]byte) {
	for _, run := range runs {
		h := page.GetHeader(run)
		for i := range page.ID(h.Span) {
			d.pages[h.ID+i] = slices.Clone(run[int(i)*d.pageSize : int(i+1)*d.pageSize])
		}
	}
}

// scribble overwrites pages the way the tree would after allocating them.
func (d *disk) scribble(id page.ID, span int) {
	for p := id; p < id+page.ID(span); p++ {
		b := make([]byte, d.pageSize)
		page.PutHeader(b, page.Header{ID: p, Type: page.TypeLeaf, Span: 1})
		b[page.HeaderSize] = byte(p)
		d.pages[p] = b
	}
}

func (d *disk) read(r page.Ref) ([]byte, error) {
	first, ok := d.pages[r.ID]
	if !ok {
		return nil, page.Corrupt(r.ID, "never written")
	}
	h := page.GetHeader(first)
	run := slices.Clone(first)
	for i := page.ID(1); i < page.ID(h.Span); i++ {
		p, ok := d.pages[r.ID+i]
		if !ok {
			return nil, page.Corrupt(r.ID+i, "never written")
		}
		run = append(run, p...)
	}
	if err := page.VerifySum(run, r.ID); err != nil {
		return nil, err
	}
	if err := page.MatchRef(h, r); err != nil {
		return nil, err
	}
	return run, nil
}

// object is a page run in use by the imaginary tree.
type object struct {
	id   page.ID
	span int
	born page.TxID
}

// harness runs random transactions against a Freelist and the model,
// persisting each commit to a disk and reloading it from time to time.
type harness struct {
	t         *testing.T
	rng       *rand.Rand
	pageSize  int
	f         *Freelist
	m         *model
	d         *disk
	last      page.TxID // latest committed txid
	head      page.Ref
	objects   []object
	readers   []page.TxID
	snapshots []page.TxID
	sweeps    int // runs that completed a sweep
	segments  int // runs that did not
	loads     int
	rollbacks int
}

func newHarness(t *testing.T, seed uint64, pageSize int) *harness {
	return &harness{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		pageSize: pageSize,
		f:        New(2),
		m:        newModel(),
		d:        newDisk(pageSize),
	}
}

func (h *harness) retained() []page.TxID {
	r := append([]page.TxID{h.last}, h.readers...)
	r = append(r, h.snapshots...)
	slices.Sort(r)
	return r
}

// compare checks the Freelist against the model, page by page.
func (h *harness) compare(when string) {
	h.t.Helper()
	if err := h.f.verify(); err != nil {
		h.t.Fatalf("%s: %v", when, err)
	}
	if h.f.HWM() != h.m.hwm {
		h.t.Fatalf("%s: HWM %d, model %d", when, h.f.HWM(), h.m.hwm)
	}
	if got := pagesOf(h.f); !maps.Equal(got, h.m.pages) {
		h.t.Fatalf("%s: state differs from the model:\n got %v\nwant %v", when, got, h.m.pages)
	}
	free, pending := 0, 0
	for _, st := range h.m.pages {
		if st.pending {
			pending++
		} else {
			free++
		}
	}
	if h.f.FreeCount() != free || h.f.PendingCount() != pending {
		h.t.Fatalf("%s: counts %d/%d, model %d/%d", when, h.f.FreeCount(), h.f.PendingCount(), free, pending)
	}
}

func (h *harness) alloc(span int) page.ID {
	id := h.f.Allocate(span)
	if want := h.m.alloc(span); id != want {
		h.t.Fatalf("tx %d: Allocate(%d) = %d, model picks %d", h.last+1, span, id, want)
	}
	return id
}

func (h *harness) step() {
	tx := h.last + 1
	h.f.Begin(tx)
	h.m.begin()
	r := h.retained()
	h.f.Release(r)
	h.m.release(r)
	h.compare(fmt.Sprintf("tx %d after Release(%v)", tx, r))
	savedModel, savedObjects, savedEntries, savedHWM := h.m.clone(), slices.Clone(h.objects), entriesOf(h.f), h.f.HWM()

	for range h.rng.IntN(14) {
		if len(h.objects) > 0 && h.rng.IntN(100) < 40+len(h.objects)/20 {
			i := h.rng.IntN(len(h.objects))
			o := h.objects[i]
			h.objects = slices.Delete(h.objects, i, i+1)
			h.f.Free(o.id, o.span, o.born)
			h.m.free(o.id, o.span, o.born, tx)
			continue
		}
		span := 1
		if h.rng.IntN(5) == 0 {
			span = 2 + h.rng.IntN(6)
		}
		id := h.alloc(span)
		h.d.scribble(id, span)
		h.objects = append(h.objects, object{id: id, span: span, born: tx})
	}
	h.compare(fmt.Sprintf("tx %d after its ops", tx))

	rollback := func() {
		h.f.Rollback()
		h.m, h.objects = savedModel, savedObjects
		h.rollbacks++
		if got := entriesOf(h.f); !slices.Equal(got, savedEntries) || h.f.HWM() != savedHWM {
			h.t.Fatalf("tx %d: Rollback did not restore the state:\n got %+v HWM %d\nwant %+v HWM %d", tx, got, h.f.HWM(), savedEntries, savedHWM)
		}
		h.compare(fmt.Sprintf("tx %d after Rollback", tx))
	}
	if h.rng.IntN(12) == 0 {
		rollback()
		return
	}

	oldChain := h.f.Chain()
	runs, ref, err := h.f.Persist(h.pageSize, h.alloc)
	if err != nil {
		h.t.Fatalf("tx %d: Persist: %v", tx, err)
	}
	if len(runs) != 1 {
		h.t.Fatalf("tx %d: Persist built %d runs", tx, len(runs))
	}
	hd := page.GetHeader(runs[0])
	if hd.ID != ref.ID || hd.TxID != tx || uint64(len(runs[0])) != uint64(hd.Span)*uint64(h.pageSize) {
		h.t.Fatalf("tx %d: run header %+v, ref %v", tx, hd, ref)
	}
	if hd.Type != page.TypeFreeSweep {
		h.t.Fatalf("tx %d: run of type %v", tx, hd.Type)
	}
	// The runs the new head no longer needs are freed as if born by the
	// previous commit (the fallback), which alone still reads them. Load
	// checks that the runs left describe the state (checkLoad).
	dropped := slices.Clone(h.f.live()[:h.f.nextDrop])
	for _, old := range dropped {
		h.m.free(old.ref.ID, int(old.span), max(old.ref.TxID, tx-1), tx)
	}
	if h.f.next.hi == maxPages {
		h.sweeps++
	} else {
		h.segments++
	}
	h.compare(fmt.Sprintf("tx %d after Persist", tx))
	h.d.writeRuns(runs)
	if h.rng.IntN(25) == 0 { // the commit's sync failed
		rollback()
		return
	}
	h.f.Commit()
	h.m.commit()
	h.last, h.head = tx, ref
	want := append([]page.Ref{ref}, oldChain[:len(oldChain)-len(dropped)]...)
	if got := h.f.Chain(); !slices.Equal(got, want) {
		h.t.Fatalf("tx %d: chain %v, want the head and the old chain less the oldest %d: %v", tx, got, len(dropped), want)
	}
	h.churnRetained()
}

// churnRetained starts and ends readers and snapshots. Both only ever
// start at the latest commit, as in the engine.
func (h *harness) churnRetained() {
	if h.rng.IntN(4) == 0 {
		h.readers = append(h.readers, h.last)
	}
	if len(h.readers) > 0 && h.rng.IntN(3) == 0 {
		i := h.rng.IntN(len(h.readers))
		h.readers = slices.Delete(h.readers, i, i+1)
	}
	if h.rng.IntN(40) == 0 {
		h.snapshots = append(h.snapshots, h.last)
	}
	if len(h.snapshots) > 0 && h.rng.IntN(15) == 0 {
		i := h.rng.IntN(len(h.snapshots))
		h.snapshots = slices.Delete(h.snapshots, i, i+1)
	}
}

// checkLoad rebuilds the state from the disk and compares it, entry for
// entry, with the live state after the same Release. With reopen the
// loaded state replaces the live one (readers do not survive a reopen).
func (h *harness) checkLoad(reopen bool) {
	h.t.Helper()
	if reopen {
		h.readers = nil
	}
	g, err := Load(h.head, h.pageSize, h.d.read)
	if err != nil {
		h.t.Fatalf("after tx %d: Load: %v", h.last, err)
	}
	h.loads++
	r := h.retained()
	g.Release(r)
	h.f.Release(r)
	h.m.release(r)
	if err := g.verify(); err != nil {
		h.t.Fatalf("after tx %d: loaded state: %v", h.last, err)
	}
	if got, want := entriesOf(g), entriesOf(h.f); !slices.Equal(got, want) || g.HWM() != h.f.HWM() {
		h.t.Fatalf("after tx %d: loaded state differs:\n got %+v HWM %d\nwant %+v HWM %d", h.last, got, g.HWM(), want, h.f.HWM())
	}
	if !slices.Equal(g.Chain(), h.f.Chain()) || g.FreeCount() != h.f.FreeCount() || g.PendingCount() != h.f.PendingCount() {
		h.t.Fatalf("after tx %d: loaded chain or counts differ", h.last)
	}
	if reopen {
		h.f = g
		h.m.lastAlloc = 0 // a loaded state knows nothing of the last commit's size
	}
	h.compare(fmt.Sprintf("after Load at tx %d", h.last))
}

// TestModel runs random transactions (allocations of pages and runs, frees,
// rollbacks, failed commits, readers and snapshots coming and going) and
// compares the Freelist with the model after every step, and a Load of the
// persisted chain with the live state after many commits.
func TestModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newHarness(t, seed, page.MinSize)
			for range 700 {
				h.step()
				if h.rng.IntN(6) == 0 {
					h.checkLoad(h.rng.IntN(3) == 0)
				}
			}
			h.checkLoad(false)
			if h.sweeps < 3 || h.segments < 20 || h.loads < 50 || h.rollbacks < 20 {
				t.Fatalf("workload too weak: %d sweeps, %d partial segments, %d loads, %d rollbacks", h.sweeps, h.segments, h.loads, h.rollbacks)
			}
			t.Logf("%d sweeps, %d partial segments, %d loads, %d rollbacks, HWM %d, %d free, %d pending",
				h.sweeps, h.segments, h.loads, h.rollbacks, h.f.HWM(), h.f.FreeCount(), h.f.PendingCount())
		})
	}
}

// TestRoundTripEveryCommit loads after every single commit, through several
// sweeps, with the default page size.
func TestRoundTripEveryCommit(t *testing.T) {
	h := newHarness(t, 99, page.DefaultSize)
	for range 400 {
		h.step()
		h.checkLoad(h.rng.IntN(10) == 0)
	}
	if h.sweeps < 3 {
		t.Fatalf("only %d sweeps", h.sweeps)
	}
}
