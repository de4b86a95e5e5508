package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// Kind is what a page holds.
type Kind uint8

const (
	KindUnknown        Kind = iota // no header that names this page, and not part of a known run
	KindEmpty                      // all-zero header: never written
	KindMeta                       // pages 0 and 1, and commit records
	KindBranch                     // B+tree interior node
	KindLeaf                       // B+tree leaf
	KindValue                      // a large value's run
	KindFreeDelta                  // one commit's free-space changes (format 1)
	KindFreeCheckpoint             // a full copy of the free-space state (format 1)
	KindFreeSweep                  // one commit's free-space changes and a segment of the state
)

var kindNames = [...]string{"?", "empty", "meta", "branch", "leaf", "value", "free-delta", "free-checkpoint", "free-sweep"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func kindOf(t page.Type) Kind {
	switch t {
	case page.TypeMeta:
		return KindMeta
	case page.TypeBranch:
		return KindBranch
	case page.TypeLeaf:
		return KindLeaf
	case page.TypeValue:
		return KindValue
	case page.TypeFreeDelta:
		return KindFreeDelta
	case page.TypeFreeCheckp:
		return KindFreeCheckpoint
	case page.TypeFreeSweep:
		return KindFreeSweep
	}
	return KindUnknown
}

// Status is where a page stands in the version walked.
type Status uint8

const (
	StatusUnknown     Status = iota // no meta to walk from
	StatusLive                      // reachable: a meta, a commit record in use, a tree page, a value run, the free-space log
	StatusFree                      // free: the next commit may reuse it
	StatusPending                   // freed, but kept: a snapshot's version still uses it
	StatusUnreachable               // below the high-water mark, neither reachable nor recorded free (leaked)
	StatusUnused                    // at or beyond the high-water mark: preallocated space
)

var statusNames = [...]string{"?", "live", "free", "pending", "unreachable", "unused"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// PageInfo describes one page.
type PageInfo struct {
	ID     page.ID
	Kind   Kind
	Status Status
	// TxID is the transaction its header names (for a run's later pages,
	// the run's).
	TxID page.TxID
	// Items is the header's item count (elements, log entries).
	Items int
	// Span is the run's length in pages; Run is the run's first page
	// (Run != ID: a later page of a multi-page run).
	Span uint32
	Run  page.ID
	// Used is the bytes the run's contents occupy (0 when unknown).
	Used int
	// Bucket indexes Analysis.Buckets for tree and value pages of a bucket
	// (0 is the bucket catalog); -1 otherwise.
	Bucket int32
	// Freed is the transaction that freed a pending page.
	Freed page.TxID
	// Problem is what is wrong with the page, if anything.
	Problem string
}

// Fill returns the fraction of the run its contents occupy, or -1 when
// unknown.
func (p *PageInfo) Fill(pageSize int) float64 {
	if p.Used == 0 || p.Span == 0 {
		return -1
	}
	return float64(p.Used) / (float64(p.Span) * float64(pageSize))
}

// Role says which tree a Bucket describes.
type Role uint8

const (
	RoleBucket    Role = iota // a bucket
	RoleCatalog               // the bucket catalog: the tree of top-level buckets
	RoleSnapshots             // the snapshot catalog: one record per named snapshot
)

// Bucket holds the statistics of one tree: a bucket, or one of the trees
// a meta references directly (Role says which; their Name is nil).
type Bucket struct {
	Role     Role
	Name     []byte
	Path     [][]byte // names from the top level down; empty for the catalog
	Root     page.Ref
	Sequence uint64
	Keys     int // values (nested buckets are not counted here)
	Children []*Bucket
	// Depth is the number of levels of the tree (0: empty).
	Depth                              int
	BranchPages, LeafPages, ValuePages int
	// TreeBytes is what the contents of the branch and leaf pages occupy.
	TreeBytes            int64
	KeyBytes, ValueBytes int64
}

// Fill is the bucket's branch and leaf pages' fill, or -1 with no pages.
func (b *Bucket) Fill(pageSize int) float64 {
	n := b.BranchPages + b.LeafPages
	if n == 0 {
		return -1
	}
	return float64(b.TreeBytes) / (float64(n) * float64(pageSize))
}

// Pages is the bucket's own pages, nested buckets not included.
func (b *Bucket) Pages() int { return b.BranchPages + b.LeafPages + b.ValuePages }

// Problem is one thing found wrong, with the page it concerns.
type Problem struct {
	Page page.ID
	Err  error
}

func (p Problem) Error() string { return p.Err.Error() }

// Analysis is the result of Analyze.
type Analysis struct {
	File  *File
	Metas *Metas
	// Slot is the meta slot the version walked was reached from (-1: none
	// could be). Meta is that version's meta: the slot's own, or the
	// commit record chained after it that Open would use
	// (Meta.IsRecord()).
	Slot int
	Meta meta.Meta
	// Pages holds one entry per whole page of the file.
	Pages []PageInfo
	// Buckets lists every tree walked, depth first; Buckets[0] is the
	// catalog of the version walked.
	Buckets []*Bucket
	// SnapshotTxIDs are the versions the snapshot catalog pins, in its
	// order: with the version walked, the retained txids that decide which
	// freed pages are still pending.
	SnapshotTxIDs []page.TxID
	Problems      []Problem
}

// Catalog returns the bucket catalog of the version walked (nil if none).
func (a *Analysis) Catalog() *Bucket {
	if len(a.Buckets) == 0 {
		return nil
	}
	return a.Buckets[0]
}

// Analyze decodes the metas and classifies every page of the file by
// walking the version of the meta in slot (-1: the meta Open would use, a
// slot's or a commit record, or when Open would refuse the file, the
// newest meta that decodes). Pages not reached are classified from the
// free-space state and their own headers. Every problem met is recorded;
// the error is only for failing to read the file.
func (f *File) Analyze(slot int) (*Analysis, error) {
	a := &Analysis{File: f, Metas: f.Metas(), Slot: -1}
	a.Pages = make([]PageInfo, f.Pages())
	for i := range a.Pages {
		a.Pages[i] = PageInfo{ID: page.ID(i), Run: page.ID(i), Bucket: -1}
	}
	for i := range min(2, len(a.Pages)) {
		s := &a.Metas.Slots[i]
		p := &a.Pages[i]
		p.Kind, p.Status, p.Span, p.Used = KindMeta, StatusLive, 1, meta.Size
		if s.RawOK {
			p.TxID, p.Used = s.Raw.TxID, metaFields(s.Raw.Version)
		}
		if s.Err != nil {
			p.Problem = s.Err.Error()
			a.problem(page.ID(i), s.Err)
		}
	}
	switch ms := a.Metas; {
	case slot == 0 || slot == 1:
		if !ms.Slots[slot].Valid() {
			return nil, fmt.Errorf("meta slot %d is not valid: %v", slot, ms.Slots[slot].Err)
		}
		a.Slot, a.Meta = slot, ms.Slots[slot].Raw
	case ms.Used >= 0:
		c := ms.UsedCandidate()
		a.Slot, a.Meta = int(c.Slot), c.Meta
	case len(ms.Candidates) > 0:
		// Open would refuse the file; the newest meta that decodes at all
		// (Candidates[0]) is still the best map of it.
		c := &ms.Candidates[0]
		a.Slot, a.Meta = int(c.Slot), c.Meta
	}
	if a.Metas.FallBack && slot < 0 {
		a.problem(a.Metas.dropped(), fmt.Errorf("open would fall back to %s: %s", a.Metas.UsedCandidate().Where(), a.Metas.Reason))
	}
	if a.Metas.OpenErr != nil {
		a.problem(0, fmt.Errorf("open would refuse the file: %v", a.Metas.OpenErr))
	}
	if a.Slot < 0 {
		a.classifyRest(0)
		return a, nil
	}
	hwm := a.Meta.HWM
	if uint64(hwm) > uint64(len(a.Pages)) {
		a.problem(page.ID(hwm-1), page.Corrupt(page.ID(hwm-1), "high-water mark %d pages lies past the end of the file (%d pages)", hwm, len(a.Pages)))
	}
	w := &walker{a: a, st: &store{f: f, hwm: hwm}, reached: make([]bool, min(uint64(hwm), uint64(len(a.Pages))))}
	w.walkRoots()
	w.walkChain()
	w.walkFreelist()
	a.classifyRest(hwm)
	return a, nil
}

// dropped returns the page to report a fallback at: the page named by the
// failure of the newest meta Open passes over, else an unreadable slot,
// else the page a walk stopped at on a damaged commit record.
func (ms *Metas) dropped() page.ID {
	for _, c := range ms.Candidates {
		if c.Tried && c.VerifyErr != nil {
			return pageNamed(c.VerifyErr, c.Meta.Page())
		}
	}
	for _, s := range ms.Slots {
		if !s.Valid() {
			return s.Slot
		}
	}
	for _, s := range ms.Slots {
		if s.Walk.Damaged != nil {
			at := s.Raw.Next
			if n := len(s.Walk.Records); n > 0 {
				at = s.Walk.Records[n-1].Next
			}
			return pageNamed(s.Walk.Damaged, at)
		}
	}
	return 0
}

// metaFields returns how many bytes of a meta page of format version v
// carry fields; the rest is filler.
func metaFields(v uint32) int { return meta.FieldsSize(v) }

var pageRe = regexp.MustCompile(`\bpage (\d+)\b`)

// pageNamed returns the page a corruption error names (they all name
// one: page.Corrupt), or def.
func pageNamed(err error, def page.ID) page.ID {
	if m := pageRe.FindStringSubmatch(err.Error()); m != nil {
		if n, perr := strconv.ParseUint(m[1], 10, 64); perr == nil {
			return page.ID(n)
		}
	}
	return def
}

func (a *Analysis) problem(id page.ID, err error) {
	a.Problems = append(a.Problems, Problem{Page: id, Err: err})
}

// walker walks one version, recording what it reaches.
type walker struct {
	a       *Analysis
	st      *store
	reached []bool // pages below min(HWM, file) reached so far
}

// walkRoots walks every tree the version's meta references, each as a
// root entry of a.Buckets: the bucket catalog (a.Buckets[0]) and the
// snapshot catalog. The snapshot catalog's pages are walked as a tree
// whose records count as its keys; of each record only the pinned txid is
// read (into a.SnapshotTxIDs). The versions the snapshots pin are not
// walked: the pages they do not share with this version are pending in
// the free-space state, which is how they are classified. Showing the
// snapshots themselves (names, sizes) belongs with the snapshot commands.
func (w *walker) walkRoots() {
	m := w.a.Meta
	for _, root := range []*Bucket{{Role: RoleCatalog, Root: m.Root}, {Role: RoleSnapshots, Root: m.Snapshots}} {
		if root.Role != RoleCatalog && root.Root.IsZero() {
			continue
		}
		w.a.Buckets = append(w.a.Buckets, root)
		w.tree(root, 0)
	}
}

// claim marks [id, id+span) reached; false if any of it was reached
// before or lies outside the version.
func (w *walker) claim(id page.ID, span uint64) bool {
	if id < 2 || uint64(id) >= uint64(len(w.reached)) || span > uint64(len(w.reached))-uint64(id) {
		return true // Read reports it, naming the page
	}
	for i := uint64(0); i < span; i++ {
		if w.reached[uint64(id)+i] {
			w.a.problem(id+page.ID(i), page.Corrupt(id+page.ID(i), "page reachable twice (cycle or shared page)"))
			return false
		}
	}
	for i := uint64(0); i < span; i++ {
		w.reached[uint64(id)+i] = true
	}
	return true
}

// damaged records a reference that could not be read.
func (w *walker) damaged(r page.Ref, err error, bucket int32) {
	w.a.problem(r.ID, err)
	if uint64(r.ID) < uint64(len(w.a.Pages)) && r.ID >= 2 {
		p := &w.a.Pages[r.ID]
		p.Status, p.Bucket, p.Problem = StatusLive, bucket, err.Error()
		if b, _ := w.a.File.ReadPages(r.ID, 1); len(b) > 0 {
			if h := page.GetHeader(b); h.ID == r.ID {
				p.Kind, p.TxID, p.Items, p.Span = kindOf(h.Type), h.TxID, int(h.Count), h.Span
			}
		}
	}
}

// record fills in the pages of a run that was read and verified.
func (w *walker) record(id page.ID, run []byte, kind Kind, used int, bucket int32) {
	h := page.GetHeader(run)
	span := uint64(len(run) / w.a.File.ps)
	for i := uint64(0); i < span; i++ {
		p := &w.a.Pages[uint64(id)+i]
		*p = PageInfo{ID: id + page.ID(i), Kind: kind, Status: StatusLive, TxID: h.TxID, Items: int(h.Count),
			Span: h.Span, Run: id, Bucket: bucket}
	}
	w.a.Pages[id].Used = used
}

// setItems sets the item count of a free-space run's pages: the log's
// entries, which its body counts (the header's count is unused there).
func (w *walker) setItems(id page.ID, runLen, n int) {
	for i := 0; i < runLen/w.a.File.ps; i++ {
		w.a.Pages[int(id)+i].Items = n
	}
}

func (w *walker) tree(b *Bucket, nest int) {
	if b.Root.IsZero() {
		return
	}
	idx := int32(len(w.a.Buckets) - 1)
	if nest > 1<<12 {
		w.a.problem(b.Root.ID, page.Corrupt(b.Root.ID, "buckets nested deeper than %d", 1<<12))
		return
	}
	w.node(b, idx, b.Root, 1, nest)
}

// node walks the subtree at r, at level depth (1 is the root) of bucket
// b, which is a.Buckets[idx].
func (w *walker) node(b *Bucket, idx int32, r page.Ref, depth, nest int) {
	if depth > btree.MaxDepth {
		w.a.problem(r.ID, page.Corrupt(r.ID, "tree deeper than %d levels", btree.MaxDepth))
		return
	}
	if !w.claim(r.ID, 1) {
		return
	}
	run, err := w.st.Read(r, 0)
	if err != nil {
		w.damaged(r, err, idx)
		return
	}
	els, err := btree.Elements(run)
	if err != nil { // Read validated the page: unreachable, but never trust
		w.damaged(r, err, idx)
		return
	}
	used := btree.UsedBytes(run)
	b.TreeBytes += int64(used)
	if page.TypeOf(run) == page.TypeBranch {
		b.BranchPages++
		w.record(r.ID, run, KindBranch, used, idx)
		for _, e := range els {
			w.node(b, idx, e.Child, depth+1, nest)
		}
		return
	}
	b.LeafPages++
	b.Depth = max(b.Depth, depth)
	w.record(r.ID, run, KindLeaf, used, idx)
	for _, e := range els {
		switch e.Kind {
		case btree.KindBucket:
			c := &Bucket{Name: e.Key, Path: append(append([][]byte{}, b.Path...), e.Key), Root: e.Bucket.Root, Sequence: e.Bucket.Sequence}
			b.Children = append(b.Children, c)
			w.a.Buckets = append(w.a.Buckets, c)
			w.tree(c, nest+1)
		case btree.KindLarge:
			b.Keys++
			b.KeyBytes += int64(len(e.Key))
			b.ValueBytes += int64(e.LargeLen)
			w.value(b, idx, e.Large, e.LargeLen)
		default:
			b.Keys++
			b.KeyBytes += int64(len(e.Key))
			b.ValueBytes += int64(len(e.Value))
			if b.Role == RoleSnapshots {
				w.snapshot(r.ID, e)
			}
		}
	}
}

// walkChain records the commit records in use in the version: neither
// free nor reachable from a tree, they are read by Open's walks from the
// meta slots. Each must be a record of a commit no later than the version
// (as Check re-reads them); after later commits, a meta slot commit may
// have freed them and a later commit reused them, so walking an older
// version may report them, as it may its tree pages.
func (w *walker) walkChain() {
	m := w.a.Meta
	for _, id := range m.ChainPages() {
		if id < 2 {
			w.a.problem(id, page.Corrupt(id, "commit record in use listed at a meta slot"))
			continue
		}
		if uint64(id) >= uint64(len(w.reached)) {
			w.a.problem(id, page.Corrupt(id, "commit record in use lies past the end of the file (%d pages)", len(w.a.Pages)))
			continue
		}
		if !w.claim(id, 1) {
			continue
		}
		b, err := w.a.File.ReadPages(id, 1)
		if err != nil || len(b) < w.a.File.ps {
			w.a.problem(id, page.Corrupt(id, "commit record in use is unreadable: %v", err))
			continue
		}
		h := page.GetHeader(b)
		p := &w.a.Pages[id]
		*p = PageInfo{ID: id, Kind: KindMeta, Status: StatusLive, TxID: h.TxID, Span: 1, Run: id, Bucket: -1}
		r, err := meta.Decode(b, id)
		if err == nil && r.TxID > m.TxID {
			err = page.Corrupt(id, "commit record of tx %d in version %d", r.TxID, m.TxID)
		}
		if err != nil {
			err = fmt.Errorf("%w (a commit record in use)", err)
			p.Problem = err.Error()
			w.a.problem(id, err)
			continue
		}
		p.Used = metaFields(r.Version)
	}
}

// snapshotRecordSize is the size of a snapshot catalog record: the pinned
// version's catalog root (a Ref), its txid (u64), its creation time (i64);
// docs/FORMAT.md, "Snapshot catalog".
const snapshotRecordSize = page.RefSize + 16

// snapshot notes the txid a snapshot catalog record pins.
func (w *walker) snapshot(id page.ID, e btree.Element) {
	if len(e.Value) != snapshotRecordSize {
		w.a.problem(id, page.Corrupt(id, "snapshot record of %d bytes", len(e.Value)))
		return
	}
	tx := page.TxID(binary.LittleEndian.Uint64(e.Value[page.RefSize:]))
	if tx > w.a.Meta.TxID {
		w.a.problem(id, page.Corrupt(id, "snapshot pins tx %d, past the version's tx %d", tx, w.a.Meta.TxID))
		return
	}
	w.a.SnapshotTxIDs = append(w.a.SnapshotTxIDs, tx)
}

// value reads and records a large value's run.
func (w *walker) value(b *Bucket, idx int32, r page.Ref, n uint64) {
	run, err := w.st.Read(r, page.TypeValue)
	if err != nil {
		w.claim(r.ID, 1)
		w.damaged(r, err, idx)
		return
	}
	span := uint64(len(run) / w.a.File.ps)
	if !w.claim(r.ID, span) {
		return
	}
	if page.SpanFor(n, w.a.File.ps) != span {
		err := page.Corrupt(r.ID, "value of %d bytes in a run of %d pages", n, span)
		w.damaged(r, err, idx)
	}
	b.ValuePages += int(span)
	w.record(r.ID, run, KindValue, int(min(n, uint64(len(run)))+page.HeaderSize), idx)
}

// walkFreelist loads the version's free-space state, records its own runs
// as live and its entries as free or pending. As the engine does at open,
// freed versions that no retained txid (the version itself, each
// snapshot's) can see are released to the free set first: the log keeps
// them pending until a commit reuses them, but the next commit may.
func (w *walker) walkFreelist() {
	m := w.a.Meta
	fl, err := freelist.Load(m.Freelist, w.a.File.ps, w.st.readFree)
	if err != nil {
		w.a.problem(m.Freelist.ID, err)
		w.rawChain(m.Freelist)
		return
	}
	retained := append([]page.TxID{m.TxID}, w.a.SnapshotTxIDs...)
	slices.Sort(retained)
	fl.Release(slices.Compact(retained))
	for _, r := range fl.Chain() {
		run, err := w.st.readFree(r)
		if err != nil {
			w.damaged(r, err, -1)
			continue
		}
		if !w.claim(r.ID, uint64(len(run)/w.a.File.ps)) {
			continue
		}
		ri, _ := freelist.DecodeRun(run)
		w.record(r.ID, run, kindOf(page.TypeOf(run)), ri.UsedBytes, -1)
		w.setItems(r.ID, len(run), int(ri.Count))
	}
	fl.Entries(func(e freelist.Entry) bool {
		st := StatusFree
		if e.Freed != 0 {
			st = StatusPending
		}
		for i := uint64(0); i < uint64(e.Span); i++ {
			id := e.ID + page.ID(i)
			if uint64(id) >= uint64(len(w.a.Pages)) {
				break
			}
			if uint64(id) < uint64(len(w.reached)) && w.reached[id] {
				w.a.problem(id, page.Corrupt(id, "page is both reachable and recorded %v", st))
				continue
			}
			p := &w.a.Pages[id]
			p.Status, p.Freed = st, e.Freed
			if st == StatusPending {
				// A pending entry is one version's run: its first page's
				// header describes the rest.
				p.Run = e.ID
			}
		}
		return true
	})
	if fl.HWM() != m.HWM {
		w.a.problem(m.Freelist.ID, page.Corrupt(m.Freelist.ID, "free-space state says %d pages, meta says %d", fl.HWM(), m.HWM))
	}
}

// rawChain marks what can be read of a free-space chain that does not
// load, following prev references back while transactions decrease.
func (w *walker) rawChain(r page.Ref) {
	var base page.TxID // the head's base: the walk stops there
	for n := 0; !r.IsZero() && n < 1<<20; n++ {
		if uint64(r.ID) >= uint64(len(w.reached)) || r.ID < 2 || w.reached[r.ID] {
			return
		}
		b, err := w.a.File.ReadPages(r.ID, 1)
		if err != nil || len(b) == 0 {
			return
		}
		h := page.GetHeader(b)
		if h.ID != r.ID || !freelist.IsRun(h.Type) {
			return
		}
		span := min(uint64(h.Span), uint64(len(w.reached))-uint64(r.ID))
		run, err := w.a.File.ReadPages(r.ID, span)
		if err != nil || span == 0 || !w.claim(r.ID, span) {
			return
		}
		ri, err := freelist.DecodeRun(run)
		w.record(r.ID, run, kindOf(h.Type), ri.UsedBytes, -1)
		w.setItems(r.ID, len(run), int(ri.Count))
		if err != nil {
			w.a.Pages[r.ID].Problem = err.Error()
		}
		if n == 0 {
			base = ri.Base
		}
		if h.Type == page.TypeFreeCheckp || ri.Prev.TxID >= h.TxID || (h.Type == page.TypeFreeSweep && h.TxID <= base) {
			return
		}
		r = ri.Prev
	}
}

// classifyRest gives every page not reached or recorded a status, and a
// kind from its own header; below hwm such a page is unreachable (leaked),
// reported once per contiguous range.
func (a *Analysis) classifyRest(hwm page.ID) {
	var leakStart, leakN uint64
	flush := func() {
		if leakN > 0 {
			id := page.ID(leakStart)
			what := fmt.Sprintf("page %d is", leakStart)
			if leakN > 1 {
				what = fmt.Sprintf("pages %d-%d are", leakStart, leakStart+leakN-1)
			}
			a.problem(id, fmt.Errorf("%w: %s neither reachable nor free (leaked)", page.ErrCorrupt, what))
		}
		leakN = 0
	}
	noMeta := a.Slot < 0
	// A run found by its header among pages nobody references: its later
	// pages (which have no header of their own) belong to it.
	var run *PageInfo
	var runEnd uint64
	for i := 2; i < len(a.Pages); i++ {
		p := &a.Pages[i]
		if p.Status == StatusLive {
			flush()
			run = nil
			continue
		}
		switch {
		case p.Status == StatusFree || p.Status == StatusPending:
		case noMeta:
			p.Status = StatusUnknown
		case page.ID(i) >= hwm:
			p.Status = StatusUnused
		default:
			p.Status = StatusUnreachable
			if leakN == 0 {
				leakStart = uint64(i)
			}
			leakN++
		}
		if p.Status == StatusUnreachable {
			p.Problem = "neither reachable nor free (leaked)"
		} else {
			flush()
		}
		a.headerKind(p)
		switch {
		case p.Status == StatusFree || p.Status == StatusPending:
			run = nil
		case run != nil && uint64(i) < runEnd && p.Status == run.Status && (p.Kind == KindUnknown || p.Kind == KindEmpty):
			p.Run, p.Kind, p.TxID, p.Span = run.ID, run.Kind, run.TxID, run.Span
		case p.Span > 1 && p.Kind != KindUnknown && p.Kind != KindEmpty:
			run, runEnd = p, uint64(i)+uint64(p.Span)
		default:
			run = nil
		}
	}
	flush()
}

var zeroHeader [page.HeaderSize]byte

// headerKind classifies a page that was not reached from its own header:
// a header that names the page gives kind, txid and items. Later pages of
// a pending run take their kind from the run's first page.
func (a *Analysis) headerKind(p *PageInfo) {
	if p.Run != p.ID {
		first := &a.Pages[p.Run]
		p.Kind, p.TxID, p.Span = first.Kind, first.TxID, first.Span
		return
	}
	b, err := a.File.ReadPages(p.ID, 1)
	if err != nil || len(b) < page.HeaderSize {
		return
	}
	h := page.GetHeader(b)
	switch {
	case bytes.Equal(b[:page.HeaderSize], zeroHeader[:]):
		p.Kind = KindEmpty
	case h.ID == p.ID && h.Span > 0 && kindOf(h.Type) != KindUnknown:
		// A meta page here is a commit record no longer in use (or never
		// completed, or of a later commit than the version walked).
		p.Kind, p.TxID, p.Items, p.Span = kindOf(h.Type), h.TxID, int(h.Count), h.Span
		if h.Type == page.TypeBranch || h.Type == page.TypeLeaf {
			p.Used = btree.UsedBytes(b)
		}
	}
}
