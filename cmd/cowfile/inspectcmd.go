package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cowfile/cowfile/inspect"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
	"github.com/spf13/cobra"
)

// Options shared by the commands that decode raw pages.
type rawOptions struct {
	json     bool
	pageSize int
	slot     int
}

func (o *rawOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "write JSON")
	cmd.Flags().IntVar(&o.pageSize, "page-size", 0, "decode with this page size (when both metas are unreadable)")
	cmd.Flags().IntVar(&o.slot, "meta", -1, "walk from this meta slot (0 or 1) instead of the one open would use")
}

// analyze opens path for raw decoding and classifies its pages.
func (o *rawOptions) analyze(path string) (*inspect.Analysis, error) {
	if o.slot < -1 || o.slot > 1 {
		return nil, usagef("--meta must be 0 or 1")
	}
	f, err := inspect.Open(path, o.pageSize)
	if err != nil {
		return nil, err
	}
	a, err := f.Analyze(o.slot)
	if err != nil {
		f.Close()
		return nil, usagef("%v", err)
	}
	return a, nil
}

var inspectOpts rawOptions

var inspectCmd = &cobra.Command{
	Use:   "inspect FILE",
	Short: "Show the metas, what open would do, pages by kind and per-bucket statistics",
	Long: `inspect decodes FILE's bytes directly (no engine, no lock), so it works on a
file that open refuses, and says what is wrong with it.

It shows both meta slots (txid, root and free-space references, whether the
checksum holds, whether the pages its commit wrote verify) and the commit
records chained after them (under sync durability most commits write their
meta as a record beside their pages instead of in a slot; open walks the
chain from each slot), which meta open would use, a slot's or a record,
and whether that is a fallback from a newer one, and why; the pages by
kind and status; and for every bucket, nested ones indented under their
parent: keys, nested buckets, tree depth, pages (tree pages and large
value runs), fill of its tree pages, and the bytes of its keys and values.

Page statuses: live (reachable from the meta walked, part of the
free-space log, or a commit record the version keeps in use), free (the
next commit may reuse it; pages the last commit replaced still hold the
older meta's version until then), pending (freed, but kept because a
snapshot's version uses it), unreachable (below the high-water mark, yet
neither reachable nor free: leaked), unused (past the high-water mark:
preallocated).

Exit status 1 when anything is wrong (damaged pages, a fallback, leaks).`,
	Example: `  cowfile inspect app.cow
  cowfile inspect --json app.cow | jq .buckets
  cowfile inspect --meta 0 app.cow   # walk the version in meta slot 0 (its own meta, not a record after it)`,
	Args: nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		a, err := inspectOpts.analyze(args[0])
		if err != nil {
			return err
		}
		defer a.File.Close()
		w := cmd.OutOrStdout()
		if inspectOpts.json {
			if err := writeJSON(w, inspectJSON(a)); err != nil {
				return err
			}
		} else {
			printInspect(w, a)
			if len(a.SnapshotTxIDs) > 0 {
				inspectSnapshots(w, args[0])
			}
		}
		if len(a.Problems) > 0 {
			return problemError{}
		}
		return nil
	},
}

func init() {
	inspectOpts.register(inspectCmd)
	rootCmd.AddCommand(inspectCmd)
}

// refString shows a reference compactly.
func refString(r page.Ref) string {
	if r.IsZero() {
		return "-"
	}
	return fmt.Sprintf("page %d (tx %d)", r.ID, r.TxID)
}

// metaState says what open makes of a meta slot: current (its meta is
// the one used), base (the commit record used was reached from it),
// dropped (newer than the meta used), older, or invalid.
func metaState(a *inspect.Analysis, slot int) string {
	s := &a.Metas.Slots[slot]
	if !s.Valid() {
		return "invalid"
	}
	return candidateState(a, &inspect.Candidate{Meta: s.Raw, Slot: page.ID(slot)})
}

// candidateState says what open makes of a meta it may use.
func candidateState(a *inspect.Analysis, c *inspect.Candidate) string {
	used, ok := a.Metas.Meta()
	switch {
	case !ok:
		return "older"
	case c.Meta == used:
		return "current"
	case c.Meta.TxID > used.TxID:
		return "dropped"
	case !c.Meta.IsRecord() && used.IsRecord() && int(c.Slot) == a.Metas.Current:
		return "base"
	}
	return "older"
}

func commitState(s *inspect.MetaSlot) string {
	switch {
	case !s.Valid():
		return "-"
	case s.Verified:
		return "verifies"
	case s.VerifyErr != nil && !s.Tried:
		return "not intact"
	case s.VerifyErr != nil:
		return "damaged"
	}
	return "-"
}

// usedString names the meta open uses: "slot 1 (tx 5)", or "commit record
// at page 57 (tx 12), reached from meta slot 1".
func usedString(ms *inspect.Metas) string {
	c := ms.UsedCandidate()
	if !c.Meta.IsRecord() {
		return fmt.Sprintf("slot %d (tx %d)", c.Slot, c.Meta.TxID)
	}
	return fmt.Sprintf("%s (tx %d), reached from meta slot %d", c.Where(), c.Meta.TxID, c.Slot)
}

// walkedFrom names the meta of the version walked.
func walkedFrom(a *inspect.Analysis) string {
	if a.Meta.IsRecord() {
		return fmt.Sprintf("commit record at page %d (reached from meta slot %d)", a.Meta.Page(), a.Slot)
	}
	return fmt.Sprintf("meta slot %d", a.Slot)
}

// chainString describes a meta's commit records: those in use, and where
// the next commit writes its own.
func chainString(m *meta.Meta) string {
	s := fmt.Sprintf("%d in use", m.ChainLen)
	if m.ChainLen > 0 {
		s += fmt.Sprintf(" (pages %s; %d written up to the newest meta slot)", pageList(m.ChainPages()), m.Split)
	}
	if m.Next != 0 {
		s += fmt.Sprintf("; the next at page %d", m.Next)
	}
	return s
}

func pageList(ids []page.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ", ")
}

func slotList(slots []page.ID) string {
	s := make([]string, len(slots))
	for i, id := range slots {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ", ")
}

// candidateCommit says whether open verified a meta's commit: it stops at
// the first that verifies, so older ones are not checked.
func candidateCommit(c *inspect.Candidate) string {
	switch {
	case c.Verified:
		return "verifies"
	case c.VerifyErr != nil:
		return "damaged"
	}
	return "-"
}

// pageCounts tallies pages for the summary: live pages by kind; the
// others by status.
type pageCounts struct {
	order  []string
	counts map[string]int
}

func countPages(a *inspect.Analysis) pageCounts {
	c := pageCounts{
		order:  []string{"meta", "branch", "leaf", "value", "free-space log", "free", "pending", "unreachable", "unused", "unknown"},
		counts: map[string]int{},
	}
	for i := range a.Pages {
		p := &a.Pages[i]
		key := p.Status.String()
		switch p.Status {
		case inspect.StatusLive:
			switch p.Kind {
			case inspect.KindFreeDelta, inspect.KindFreeCheckpoint, inspect.KindFreeSweep:
				key = "free-space log"
			default:
				key = p.Kind.String()
			}
		case inspect.StatusUnknown:
			key = "unknown"
		}
		c.counts[key]++
	}
	return c
}

func printInspect(w io.Writer, a *inspect.Analysis) {
	f := a.File
	t := newTable(w)
	t.row("file", f.Path())
	t.row("size", fmt.Sprintf("%d bytes: %d pages of %d bytes (page size from %s)", f.Size(), f.Pages(), f.PageSize(), f.PageSizeFrom))
	if a.Slot >= 0 {
		hwm := uint64(a.Meta.HWM)
		t.row("version", fmt.Sprintf("tx %d, format %d, from %s", a.Meta.TxID, a.Meta.Version, walkedFrom(a)))
		t.row("high-water", fmt.Sprintf("%d pages; %d pages past it (preallocated)", hwm, f.Pages()-min(f.Pages(), hwm)))
		if a.Meta.ChainLen > 0 || a.Meta.Next != 0 {
			t.row("records", chainString(&a.Meta))
		}
	}
	t.flush()

	fmt.Fprintln(w)
	t = newTable(w, "SLOT", "TXID", "STATE", "CHECKSUM", "ROOT", "FREE-SPACE LOG", "SNAPSHOTS", "HWM", "COMMIT")
	for i := range a.Metas.Slots {
		s := &a.Metas.Slots[i]
		sum := "ok"
		if s.StoredSum != s.ComputedSum {
			sum = "mismatch"
		}
		if !s.RawOK {
			t.row(strconv.Itoa(i), "-", metaState(a, i), "-", "-", "-", "-", "-", "-")
			continue
		}
		t.row(strconv.Itoa(i), strconv.FormatUint(uint64(s.Raw.TxID), 10), metaState(a, i), sum,
			refString(s.Raw.Root), refString(s.Raw.Freelist), refString(s.Raw.Snapshots),
			strconv.FormatUint(uint64(s.Raw.HWM), 10), commitState(s))
	}
	t.flush()
	for i := range a.Metas.Slots {
		s := &a.Metas.Slots[i]
		if s.Err != nil {
			fmt.Fprintf(w, "slot %d: %v\n", i, s.Err)
		} else if s.VerifyErr != nil && !s.Tried {
			// Open uses a later meta; the commits since may have reused
			// this version's pages.
			fmt.Fprintf(w, "slot %d: older version no longer intact (open does not read it): %v\n", i, s.VerifyErr)
		} else if s.VerifyErr != nil {
			fmt.Fprintf(w, "slot %d: commit does not verify: %v\n", i, s.VerifyErr)
		}
	}
	ms := a.Metas
	if recs := ms.Records(); len(recs) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "RECORD", "TXID", "STATE", "FROM SLOT", "ROOT", "FREE-SPACE LOG", "SNAPSHOTS", "HWM", "COMMIT")
		for _, c := range recs {
			t.row(fmt.Sprintf("page %d", c.Meta.Page()), strconv.FormatUint(uint64(c.Meta.TxID), 10), candidateState(a, c),
				slotList(ms.ReachedFrom(c)), refString(c.Meta.Root), refString(c.Meta.Freelist), refString(c.Meta.Snapshots),
				strconv.FormatUint(uint64(c.Meta.HWM), 10), candidateCommit(c))
		}
		t.flush()
		for _, c := range recs {
			if c.VerifyErr != nil {
				fmt.Fprintf(w, "record at page %d: commit does not verify: %v\n", c.Meta.Page(), c.VerifyErr)
			}
		}
	}
	for i := range ms.Slots {
		if err := ms.Slots[i].Walk.Damaged; err != nil {
			fmt.Fprintf(w, "walk from slot %d: stops at a damaged record: %v\n", i, err)
		}
	}
	switch c := ms.UsedCandidate(); {
	case c == nil:
		fmt.Fprintf(w, "open: refuses the file: %v\n", ms.OpenErr)
	case ms.FallBack:
		fmt.Fprintf(w, "open: FALLS BACK to %s: %s\n", usedString(ms), ms.Reason)
	default:
		fmt.Fprintf(w, "open: uses %s, no fallback\n", usedString(ms))
	}
	if used, ok := ms.Meta(); a.Slot >= 0 && (!ok || used != a.Meta) {
		fmt.Fprintf(w, "pages below are classified from %s (tx %d)\n", walkedFrom(a), a.Meta.TxID)
	}

	fmt.Fprintln(w)
	c := countPages(a)
	t = newTable(w, "PAGES", "COUNT", "SHARE")
	for _, k := range c.order {
		if n, ok := c.counts[k]; ok || k != "unknown" {
			t.row(k, strconv.Itoa(n), pct(float64(n)/float64(max(1, len(a.Pages)))))
		}
	}
	t.row("total", strconv.Itoa(len(a.Pages)), "")
	t.flush()

	if len(a.Buckets) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "BUCKET", "KEYS", "BUCKETS", "DEPTH", "PAGES", "FILL", "KEY BYTES", "VALUE BYTES", "SEQUENCE")
		var walk func(b *inspect.Bucket, indent string)
		walk = func(b *inspect.Bucket, indent string) {
			name := indent + escapeName(b.Name)
			switch b.Role {
			case inspect.RoleCatalog:
				name = "(bucket catalog)"
			case inspect.RoleSnapshots:
				name = "(snapshot catalog)"
			}
			t.row(name, strconv.Itoa(b.Keys), strconv.Itoa(len(b.Children)), strconv.Itoa(b.Depth), strconv.Itoa(b.Pages()),
				pct(b.Fill(f.PageSize())), strconv.FormatInt(b.KeyBytes, 10), strconv.FormatInt(b.ValueBytes, 10),
				strconv.FormatUint(b.Sequence, 10))
			if b.Role == inspect.RoleBucket {
				indent += "  "
			}
			for _, ch := range b.Children {
				walk(ch, indent)
			}
		}
		for _, b := range a.Buckets {
			if b.Role != inspect.RoleBucket {
				walk(b, "")
			}
		}
		t.flush()
	}

	fmt.Fprintln(w)
	printProblems(w, a.Problems)
}

// printProblems lists problems as a table, or says there are none.
func printProblems(w io.Writer, ps []inspect.Problem) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no problems found")
		return
	}
	fmt.Fprintf(w, "%d problem(s):\n", len(ps))
	t := newTable(w, "PAGE", "PROBLEM")
	for _, p := range ps {
		t.row(strconv.FormatUint(uint64(p.Page), 10), problemText(p.Err, p.Page))
	}
	t.flush()
}

// problemText drops the prefixes the PAGE column already says.
func problemText(err error, id page.ID) string {
	s := err.Error()
	s = strings.TrimPrefix(s, page.ErrCorrupt.Error()+": ")
	s = strings.TrimPrefix(s, fmt.Sprintf("page %d: ", id))
	return s
}

// JSON shapes.

type refJSON struct {
	Page     uint64 `json:"page"`
	TxID     uint64 `json:"txid"`
	Checksum string `json:"checksum"`
}

func toRefJSON(r page.Ref) *refJSON {
	if r.IsZero() {
		return nil
	}
	return &refJSON{Page: uint64(r.ID), TxID: uint64(r.TxID), Checksum: fmt.Sprintf("%016x", r.Checksum)}
}

type metaJSON struct {
	Slot             int      `json:"slot"`
	State            string   `json:"state"`
	Valid            bool     `json:"valid"`
	Error            string   `json:"error,omitempty"`
	TxID             uint64   `json:"txid"`
	Version          uint32   `json:"version"`
	PageSize         int      `json:"page_size"`
	Flags            uint32   `json:"flags"`
	StoredChecksum   string   `json:"stored_checksum"`
	ComputedChecksum string   `json:"computed_checksum"`
	Root             *refJSON `json:"root"`
	Freelist         *refJSON `json:"freelist"`
	Snapshots        *refJSON `json:"snapshots"`
	HWM              uint64   `json:"hwm"`
	Verified         bool     `json:"commit_verified"`
	VerifyError      string   `json:"commit_error,omitempty"`
	Tried            bool     `json:"commit_tried"` // open verifies it (no newer meta verifies)
	// Format 4: commit records.
	chainJSON
}

// chainJSON is a meta's commit record fields (format 4).
type chainJSON struct {
	Next       uint64   `json:"next_record,omitempty"`
	Prev       string   `json:"prev_link,omitempty"`
	Chain      []uint64 `json:"records_in_use,omitempty"`
	Split      int      `json:"records_split,omitempty"`
	WalkErr    string   `json:"walk_error,omitempty"`
	WalkTxID   uint64   `json:"walk_error_txid,omitempty"`
	WalkLength int      `json:"walk_records,omitempty"`
}

func toChainJSON(m *meta.Meta) chainJSON {
	j := chainJSON{Next: uint64(m.Next), Split: m.Split}
	if m.Prev != 0 {
		j.Prev = fmt.Sprintf("%016x", m.Prev)
	}
	for _, id := range m.ChainPages() {
		j.Chain = append(j.Chain, uint64(id))
	}
	return j
}

// recordJSON is a commit record a walk from a meta slot found.
type recordJSON struct {
	Page        uint64   `json:"page"`
	TxID        uint64   `json:"txid"`
	State       string   `json:"state"`
	From        []int    `json:"reached_from"`
	Follows     uint64   `json:"follows_txid"`
	Flags       uint32   `json:"flags"`
	Root        *refJSON `json:"root"`
	Freelist    *refJSON `json:"freelist"`
	Snapshots   *refJSON `json:"snapshots"`
	HWM         uint64   `json:"hwm"`
	Tried       bool     `json:"commit_tried"`
	Verified    bool     `json:"commit_verified"`
	VerifyError string   `json:"commit_error,omitempty"`
	chainJSON
}

func toRecordsJSON(a *inspect.Analysis) []recordJSON {
	var out []recordJSON
	for _, c := range a.Metas.Records() {
		m := &c.Meta
		j := recordJSON{Page: uint64(m.Page()), TxID: uint64(m.TxID), State: candidateState(a, c), From: []int{},
			Follows: uint64(c.Follows), Flags: m.Flags, Root: toRefJSON(m.Root), Freelist: toRefJSON(m.Freelist),
			Snapshots: toRefJSON(m.Snapshots), HWM: uint64(m.HWM), Tried: c.Tried, Verified: c.Verified, chainJSON: toChainJSON(m)}
		for _, s := range a.Metas.ReachedFrom(c) {
			j.From = append(j.From, int(s))
		}
		if c.VerifyErr != nil {
			j.VerifyError = c.VerifyErr.Error()
		}
		out = append(out, j)
	}
	return out
}

func toMetaJSON(a *inspect.Analysis, i int) metaJSON {
	s := &a.Metas.Slots[i]
	j := metaJSON{Slot: i, State: metaState(a, i), Valid: s.Valid(), Verified: s.Verified, Tried: s.Tried,
		StoredChecksum: fmt.Sprintf("%016x", s.StoredSum), ComputedChecksum: fmt.Sprintf("%016x", s.ComputedSum)}
	if s.Err != nil {
		j.Error = s.Err.Error()
	}
	if s.VerifyErr != nil {
		j.VerifyError = s.VerifyErr.Error()
	}
	if s.RawOK {
		m := s.Raw
		j.TxID, j.Version, j.PageSize, j.Flags, j.HWM = uint64(m.TxID), m.Version, m.PageSize, m.Flags, uint64(m.HWM)
		j.Root, j.Freelist, j.Snapshots = toRefJSON(m.Root), toRefJSON(m.Freelist), toRefJSON(m.Snapshots)
		j.chainJSON = toChainJSON(&m)
	}
	if w := s.Walk; w.Damaged != nil {
		j.WalkErr, j.WalkTxID = w.Damaged.Error(), uint64(w.DamagedTxID)
	}
	j.WalkLength = len(s.Walk.Records)
	return j
}

type bucketJSON struct {
	Name       string        `json:"name"`
	Path       string        `json:"path"`
	Root       *refJSON      `json:"root"`
	Sequence   uint64        `json:"sequence"`
	Keys       int           `json:"keys"`
	Depth      int           `json:"depth"`
	Branch     int           `json:"branch_pages"`
	Leaf       int           `json:"leaf_pages"`
	Value      int           `json:"value_pages"`
	Fill       *float64      `json:"fill"`
	KeyBytes   int64         `json:"key_bytes"`
	ValueBytes int64         `json:"value_bytes"`
	Buckets    []*bucketJSON `json:"buckets"`
}

func toBucketJSON(b *inspect.Bucket, ps int) *bucketJSON {
	j := &bucketJSON{Name: escapeName(b.Name), Path: pathString(b.Path), Root: toRefJSON(b.Root), Sequence: b.Sequence,
		Keys: b.Keys, Depth: b.Depth, Branch: b.BranchPages, Leaf: b.LeafPages, Value: b.ValuePages,
		Fill: fillJSON(b.Fill(ps)), KeyBytes: b.KeyBytes, ValueBytes: b.ValueBytes, Buckets: []*bucketJSON{}}
	for _, c := range b.Children {
		j.Buckets = append(j.Buckets, toBucketJSON(c, ps))
	}
	return j
}

type problemJSON struct {
	Page    uint64 `json:"page"`
	Problem string `json:"problem"`
}

func toProblemsJSON(ps []inspect.Problem) []problemJSON {
	out := []problemJSON{}
	for _, p := range ps {
		out = append(out, problemJSON{Page: uint64(p.Page), Problem: problemText(p.Err, p.Page)})
	}
	return out
}

func inspectJSON(a *inspect.Analysis) any {
	f := a.File
	type openJSON struct {
		// Slot is the meta slot the meta used was reached from: the slot
		// holding it, or whose walk found the commit record used.
		Slot     int     `json:"slot"`
		TxID     *uint64 `json:"txid,omitempty"`
		Record   *uint64 `json:"record,omitempty"` // the commit record used: its page
		FallBack bool    `json:"fallback"`
		Reason   string  `json:"reason,omitempty"`
		Error    string  `json:"error,omitempty"`
	}
	o := openJSON{Slot: a.Metas.Current, FallBack: a.Metas.FallBack, Reason: a.Metas.Reason}
	if m, ok := a.Metas.Meta(); ok {
		tx := uint64(m.TxID)
		o.TxID = &tx
		if m.IsRecord() {
			at := uint64(m.Page())
			o.Record = &at
		}
	}
	if a.Metas.OpenErr != nil {
		o.Error = a.Metas.OpenErr.Error()
	}
	c := countPages(a)
	var catalog, snapshots *bucketJSON
	for _, b := range a.Buckets {
		switch b.Role {
		case inspect.RoleCatalog:
			catalog = toBucketJSON(b, f.PageSize())
		case inspect.RoleSnapshots:
			snapshots = toBucketJSON(b, f.PageSize())
		}
	}
	var snapList []snapshotJSON
	var snapErr string
	if len(a.SnapshotTxIDs) > 0 {
		if list, err := listSnapshots(f.Path()); err != nil {
			snapErr = err.Error()
		} else {
			snapList = toSnapshotsJSON(list)
		}
	}
	var hwm, walkedTx, walkedRecord *uint64
	var walkedChain []uint64
	if a.Slot >= 0 {
		h, tx := uint64(a.Meta.HWM), uint64(a.Meta.TxID)
		hwm, walkedTx = &h, &tx
		if a.Meta.IsRecord() {
			at := uint64(a.Meta.Page())
			walkedRecord = &at
		}
		walkedChain = toChainJSON(&a.Meta).Chain
	}
	return struct {
		File         string         `json:"file"`
		Size         int64          `json:"size"`
		PageSize     int            `json:"page_size"`
		PageSizeFrom string         `json:"page_size_from"`
		Pages        uint64         `json:"pages"`
		Metas        []metaJSON     `json:"metas"`
		Open         openJSON       `json:"open"`
		Records      []recordJSON   `json:"records,omitempty"`
		WalkedSlot   int            `json:"walked_slot"`
		WalkedTxID   *uint64        `json:"walked_txid,omitempty"`
		WalkedRecord *uint64        `json:"walked_record,omitempty"`
		WalkedChain  []uint64       `json:"walked_records_in_use,omitempty"`
		HWM          *uint64        `json:"hwm"`
		Counts       map[string]int `json:"page_counts"`
		Catalog      *bucketJSON    `json:"catalog"`
		Snapshots    *bucketJSON    `json:"snapshot_catalog,omitempty"`
		SnapshotList []snapshotJSON `json:"snapshots,omitempty"`
		SnapshotsErr string         `json:"snapshots_error,omitempty"`
		Problems     []problemJSON  `json:"problems"`
	}{
		File: f.Path(), Size: f.Size(), PageSize: f.PageSize(), PageSizeFrom: f.PageSizeFrom, Pages: f.Pages(),
		Metas: []metaJSON{toMetaJSON(a, 0), toMetaJSON(a, 1)}, Open: o, Records: toRecordsJSON(a),
		WalkedSlot: a.Slot, WalkedTxID: walkedTx, WalkedRecord: walkedRecord, WalkedChain: walkedChain, HWM: hwm,
		Counts: c.counts, Catalog: catalog, Snapshots: snapshots, SnapshotList: snapList, SnapshotsErr: snapErr,
		Problems: toProblemsJSON(a.Problems),
	}
}
