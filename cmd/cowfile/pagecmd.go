package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/inspect"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
	"github.com/spf13/cobra"
)

var (
	pagesOpts   rawOptions
	pagesStatus string
)

var pagesCmd = &cobra.Command{
	Use:   "pages FILE",
	Short: "List every page: kind, status, txid, items, span, fill",
	Long: `pages lists every page of FILE, one row each: its id, kind (meta, branch,
leaf, value, free-sweep; free-delta and free-checkpoint in files of format 1;
empty for a page never written; ? when nothing names it; a meta page past
the two slots is a commit record), status (live, free, pending,
unreachable, unused; see 'cowfile inspect --help'), the txid that wrote it,
its item count, the pages its run spans, how full it is, and the bucket it
belongs to. Later pages of a multi-page run say which run they belong to.

Like inspect, it decodes the bytes directly and works on a file that open
refuses. Exit status 1 when anything is wrong.`,
	Example: `  cowfile pages app.cow
  cowfile pages --status free,pending app.cow
  cowfile pages --json app.cow`,
	Args: nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		want := map[string]bool{}
		for _, s := range strings.Split(pagesStatus, ",") {
			if s = strings.TrimSpace(s); s != "" {
				want[s] = true
			}
		}
		for s := range want {
			if !validStatus(s) {
				return usagef("unknown status %q in --status (want live, free, pending, unreachable, unused)", s)
			}
		}
		a, err := pagesOpts.analyze(args[0])
		if err != nil {
			return err
		}
		defer a.File.Close()
		var rows []*inspect.PageInfo
		for i := range a.Pages {
			if len(want) == 0 || want[a.Pages[i].Status.String()] {
				rows = append(rows, &a.Pages[i])
			}
		}
		w := cmd.OutOrStdout()
		if pagesOpts.json {
			out := []pageJSON{}
			for _, p := range rows {
				out = append(out, toPageJSON(a, p))
			}
			if err := writeJSON(w, out); err != nil {
				return err
			}
		} else {
			t := newTable(w, "ID", "KIND", "STATUS", "TXID", "ITEMS", "SPAN", "FILL", "BUCKET", "NOTE")
			for _, p := range rows {
				c := pageCells(a, p)
				t.row(strconv.FormatUint(uint64(p.ID), 10), c.kind, p.Status.String(), c.txid, c.items, c.span, c.fill, c.bucket, c.note)
			}
			t.flush()
		}
		if len(a.Problems) > 0 {
			return problemError{}
		}
		return nil
	},
}

func validStatus(s string) bool {
	for st := inspect.StatusLive; st <= inspect.StatusUnused; st++ {
		if st.String() == s {
			return true
		}
	}
	return false
}

type cells struct{ kind, txid, items, span, fill, bucket, note string }

// pageCells formats a page's row.
func pageCells(a *inspect.Analysis, p *inspect.PageInfo) cells {
	c := cells{kind: p.Kind.String(), txid: "-", items: "-", span: "-", fill: "-", bucket: bucketName(a, p.Bucket)}
	if p.TxID != 0 || p.Kind == inspect.KindMeta {
		c.txid = strconv.FormatUint(uint64(p.TxID), 10)
	}
	var notes []string
	if p.Run != p.ID {
		notes = append(notes, fmt.Sprintf("in the run at page %d", p.Run))
	} else {
		switch p.Kind {
		case inspect.KindUnknown, inspect.KindEmpty, inspect.KindValue, inspect.KindMeta:
		default:
			c.items = strconv.Itoa(p.Items)
		}
		if p.Span > 0 {
			c.span = strconv.FormatUint(uint64(p.Span), 10)
		}
		c.fill = pct(p.Fill(a.File.PageSize()))
	}
	if p.Status == inspect.StatusPending && p.Freed != 0 && p.Run == p.ID {
		notes = append(notes, fmt.Sprintf("freed by tx %d", p.Freed))
	}
	if n := recordNote(a, p); n != "" {
		notes = append(notes, n)
	}
	if p.Problem != "" {
		notes = append(notes, problemText(fmt.Errorf("%s", p.Problem), p.ID))
	}
	c.note = strings.Join(notes, "; ")
	return c
}

// recordNote says what a page has to do with commit records: one in use
// in the version walked (its own, or one the walks from the slots read),
// one no longer in use, or the page the next commit's record is to go to.
func recordNote(a *inspect.Analysis, p *inspect.PageInfo) string {
	switch {
	case a.Slot < 0 || p.ID < 2 || p.Run != p.ID:
		return ""
	case p.Kind == inspect.KindMeta && p.Status == inspect.StatusLive && a.Meta.IsRecord() && p.ID == a.Meta.Page():
		return "commit record of the version walked"
	case p.Kind == inspect.KindMeta && p.Status == inspect.StatusLive:
		return "commit record"
	case p.ID == a.Meta.Next:
		return "reserved for the next commit record"
	case p.Kind == inspect.KindMeta:
		return "commit record, not in use"
	}
	return ""
}

func bucketName(a *inspect.Analysis, i int32) string {
	if i < 0 || int(i) >= len(a.Buckets) {
		return ""
	}
	b := a.Buckets[i]
	switch b.Role {
	case inspect.RoleCatalog:
		return "(bucket catalog)"
	case inspect.RoleSnapshots:
		return "(snapshot catalog)"
	}
	return pathString(b.Path)
}

type pageJSON struct {
	ID      uint64   `json:"id"`
	Kind    string   `json:"kind"`
	Status  string   `json:"status"`
	TxID    uint64   `json:"txid"`
	Items   int      `json:"items"`
	Span    uint32   `json:"span"`
	Run     uint64   `json:"run"`
	Fill    *float64 `json:"fill"`
	Bucket  string   `json:"bucket,omitempty"`
	Freed   uint64   `json:"freed_by,omitempty"`
	Note    string   `json:"note,omitempty"` // what the page has to do with commit records
	Problem string   `json:"problem,omitempty"`
}

func toPageJSON(a *inspect.Analysis, p *inspect.PageInfo) pageJSON {
	j := pageJSON{ID: uint64(p.ID), Kind: p.Kind.String(), Status: p.Status.String(), TxID: uint64(p.TxID),
		Items: p.Items, Span: p.Span, Run: uint64(p.Run), Bucket: bucketName(a, p.Bucket), Freed: uint64(p.Freed),
		Note: recordNote(a, p), Problem: p.Problem}
	if p.Run == p.ID {
		j.Fill = fillJSON(p.Fill(a.File.PageSize()))
	}
	return j
}

func init() {
	pagesOpts.register(pagesCmd)
	pagesCmd.Flags().StringVar(&pagesStatus, "status", "", "only pages of these statuses (comma-separated)")
	rootCmd.AddCommand(pagesCmd)
}

var (
	pageOpts   rawOptions
	pageHex    bool
	pageFull   bool
	pageFormat string
)

var pageCmd = &cobra.Command{
	Use:   "page FILE ID...",
	Short: "Decode pages: header, checksum, items",
	Long: `page decodes each page ID of FILE on its own: its header, its stored and
computed checksums, what the analysis makes of it (kind, status, bucket),
and its items: a leaf's keys and values (nested buckets with their root
reference and sequence, large values with the reference to their run), a
branch's keys and child references, the entries of a free-space log run,
or a meta's fields (a meta slot's, or a commit record's: the meta a commit
wrote beside its pages, with the records in use and the page reserved for
the next one, and what open makes of it). With --hex it adds a hex dump of
the run.

It decodes the bytes directly and works on damaged pages and on files
that open refuses. Exit status 1 when a page shows a problem (stale bytes
in free space do not count).`,
	Example: `  cowfile page app.cow 2
  cowfile page --hex app.cow 0 1
  cowfile page --format hex --full app.cow 57`,
	Args: nargs(2, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		bf, err := parseFormat(pageFormat)
		if err != nil {
			return err
		}
		ids := make([]page.ID, 0, len(args)-1)
		for _, s := range args[1:] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return usagef("page id %q is not a number", s)
			}
			ids = append(ids, page.ID(n))
		}
		a, err := pageOpts.analyze(args[0])
		if err != nil {
			return err
		}
		defer a.File.Close()
		var details []*inspect.PageDetail
		for _, id := range ids {
			d, err := a.Page(id)
			if err != nil {
				return err
			}
			details = append(details, d)
		}
		w := cmd.OutOrStdout()
		bad := 0
		for _, d := range details {
			if !d.OK() {
				bad++
			}
		}
		if pageOpts.json {
			if bf == formatRaw {
				return usagef("--json needs --format escaped or hex")
			}
			out := []any{}
			for _, d := range details {
				out = append(out, pageDetailJSON(a, d, bf))
			}
			if err := writeJSON(w, out); err != nil {
				return err
			}
		} else {
			for i, d := range details {
				if i > 0 {
					fmt.Fprintln(w)
				}
				printPage(w, a, d, bf)
			}
		}
		if bad > 0 {
			return problemError{}
		}
		return nil
	},
}

func init() {
	pageOpts.register(pageCmd)
	pageCmd.Flags().BoolVar(&pageHex, "hex", false, "add a hex dump of the page (the whole run)")
	pageCmd.Flags().BoolVar(&pageFull, "full", false, "show values whole (default: the first 32 bytes)")
	pageCmd.Flags().StringVar(&pageFormat, "format", "escaped", "keys and values as escaped, hex or raw")
	rootCmd.AddCommand(pageCmd)
}

const shortValue = 32

// showValue formats a value, cut to shortValue bytes unless --full.
func showValue(bf byteFormat, v []byte) string {
	if pageFull || len(v) <= shortValue {
		return bf.encode(v)
	}
	return fmt.Sprintf("%s... (%d bytes)", bf.encode(v[:shortValue]), len(v))
}

func printPage(w io.Writer, a *inspect.Analysis, d *inspect.PageDetail, bf byteFormat) {
	p := d.Info
	ps := a.File.PageSize()
	fmt.Fprintf(w, "page %d of %s (%d-byte pages)\n", p.ID, a.File.Path(), ps)
	t := newTable(w)
	what := fmt.Sprintf("%v, %v", p.Kind, p.Status)
	if b := bucketName(a, p.Bucket); b != "" {
		what += ", bucket " + b
	}
	if p.Status == inspect.StatusPending && p.Freed != 0 {
		what += fmt.Sprintf(", freed by tx %d", p.Freed)
	}
	if n := recordNote(a, &p); n != "" {
		what += ", " + n
	}
	if a.Slot >= 0 && !d.Continuation && d.Header.ID == p.ID && d.Header.TxID > a.Meta.TxID {
		what += fmt.Sprintf(", written by tx %d after the version walked (tx %d)", d.Header.TxID, a.Meta.TxID)
	}
	t.row("role", what)
	if d.Continuation {
		t.row("run", fmt.Sprintf("page %d of the %d-page run at page %d (no header of its own)", p.ID-p.Run+1, p.Span, p.Run))
		t.flush()
		printProblemsList(w, d)
		if pageHex {
			fmt.Fprintln(w)
			io.WriteString(w, hex.Dump(d.Bytes))
		}
		return
	}
	h := d.Header
	t.row("header", fmt.Sprintf("id %d, tx %d, type %v, flags %d, count %d, span %d", h.ID, h.TxID, h.Type, h.Flags, h.Count, h.Span))
	if d.SumChecked {
		state := "ok"
		if d.StoredSum != d.ComputedSum {
			state = "MISMATCH"
		}
		t.row("checksum", fmt.Sprintf("stored %016x, computed %016x: %s", d.StoredSum, d.ComputedSum, state))
	}
	if h.Type == page.TypeBranch || h.Type == page.TypeLeaf {
		if w, pre, ok := btree.Heads(d.Bytes); ok {
			t.row("heads", fmt.Sprintf("%d bytes per element, after a common prefix of %d bytes", w, pre))
		} else if h.Flags == 0 {
			t.row("heads", "none (a page of format 1 or 2)")
		}
	}
	if f := p.Fill(ps); f >= 0 && p.Run == p.ID {
		t.row("fill", fmt.Sprintf("%s (%d of %d bytes)", pct(f), p.Used, int(p.Span)*ps))
	}
	if m := d.Meta; m != nil && m.RawOK {
		r := m.Raw
		metaRows(t, &r, m.Valid())
		if m.Valid() && r.Version >= 4 {
			walk := fmt.Sprintf("%d records follow", len(m.Walk.Records))
			if err := m.Walk.Damaged; err != nil {
				walk += "; stops at a damaged record: " + err.Error()
			}
			t.row("walk", walk)
		}
		t.row("state", metaState(a, int(m.Slot))+", commit "+commitState(m))
	}
	if rd := d.Record; rd != nil && rd.RawOK {
		r := rd.Raw
		metaRows(t, &r, rd.Err == nil)
		t.row("state", recordState(a, rd))
	}
	if fr := d.Free; fr != nil {
		switch fr.Type {
		case page.TypeFreeDelta:
			t.row("previous run", refLong(fr.Prev))
			t.row("chain", fmt.Sprintf("%d pages back to the checkpoint", fr.ChainPages))
		case page.TypeFreeSweep:
			t.row("previous run", refLong(fr.Prev))
			t.row("base", fmt.Sprintf("tx %d", fr.Base))
			end := strconv.FormatUint(uint64(fr.Hi), 10)
			if fr.Hi >= 1<<48 {
				end = "end of file"
			}
			t.row("segment", fmt.Sprintf("pages %d to %s", fr.Lo, end))
		}
		t.row("hwm", strconv.FormatUint(uint64(fr.HWM), 10))
		t.row("ops", strconv.Itoa(len(fr.Ops)))
		t.row("entries", strconv.Itoa(len(fr.Entries)))
	}
	if h.Type == page.TypeValue {
		if v := d.Value(); v != nil {
			t.row("value", fmt.Sprintf("%d bytes: %s", len(v), showValue(bf, v)))
		} else {
			t.row("value", "length unknown (no live reference reaches this run)")
		}
	}
	t.flush()
	printProblemsList(w, d)
	if len(d.Elements) > 0 {
		fmt.Fprintln(w)
		if h.Type == page.TypeBranch {
			t = newTable(w, "#", "KEY", "CHILD")
			for i, e := range d.Elements {
				t.row(strconv.Itoa(i), showValue(bf, e.Key), refLong(e.Child))
			}
		} else {
			t = newTable(w, "#", "KIND", "KEY", "VALUE")
			for i, e := range d.Elements {
				t.row(strconv.Itoa(i), e.Kind.String(), showValue(bf, e.Key), elementValue(bf, e))
			}
		}
		t.flush()
	}
	if fr := d.Free; fr != nil && len(fr.Ops) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "#", "OP", "PAGE", "SPAN", "BORN")
		for i, o := range fr.Ops {
			born := "-"
			if o.Kind == "free" {
				born = strconv.FormatUint(uint64(o.Born), 10)
			}
			t.row(strconv.Itoa(i), o.Kind, strconv.FormatUint(uint64(o.ID), 10), strconv.FormatUint(uint64(o.Span), 10), born)
		}
		t.flush()
	}
	if fr := d.Free; fr != nil && len(fr.Entries) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "#", "PAGE", "SPAN", "STATE", "BORN", "FREED")
		for i, e := range fr.Entries {
			state, born, freed := "free", "-", "-"
			if e.Freed != 0 {
				state, born, freed = "pending", strconv.FormatUint(uint64(e.Born), 10), strconv.FormatUint(uint64(e.Freed), 10)
			}
			t.row(strconv.Itoa(i), strconv.FormatUint(uint64(e.ID), 10), strconv.FormatUint(uint64(e.Span), 10), state, born, freed)
		}
		t.flush()
	}
	if pageHex {
		fmt.Fprintln(w)
		io.WriteString(w, hex.Dump(d.Bytes))
	}
}

// metaRows shows a meta's fields, a slot's or a commit record's. Those
// of format 4 are known only of a meta that decoded.
func metaRows(t *table, r *meta.Meta, decoded bool) {
	flags := strconv.FormatUint(uint64(r.Flags), 10)
	if r.IsRecord() {
		flags += " (commit record)"
	} else if r.Flags&meta.FlagRecorded != 0 {
		flags += " (also written as a commit record)"
	}
	t.row("meta", fmt.Sprintf("tx %d, format %d, page size %d, flags %s, hwm %d", r.TxID, r.Version, r.PageSize, flags, r.HWM))
	t.row("root", refLong(r.Root))
	t.row("free-space log", refLong(r.Freelist))
	t.row("snapshots", refLong(r.Snapshots))
	if r.Version < 4 {
		return
	}
	if !decoded {
		t.row("records", "not shown: the meta does not decode")
		return
	}
	next := "-"
	if r.Next != 0 {
		next = fmt.Sprintf("page %d", r.Next)
	}
	t.row("next record", next)
	t.row("prev link", fmt.Sprintf("%016x", r.Prev))
	if r.ChainLen == 0 {
		t.row("records", "none in use")
	} else {
		t.row("records", fmt.Sprintf("%d in use: pages %s; %d written up to the newest meta slot", r.ChainLen, pageList(r.ChainPages()), r.Split))
	}
}

// recordState says what open makes of a commit record, and whether the
// version walked keeps it in use.
func recordState(a *inspect.Analysis, rd *inspect.RecordDetail) string {
	var s string
	switch c := rd.Candidate; {
	case c != nil:
		from := a.Metas.ReachedFrom(c)
		slots := "slot"
		if len(from) > 1 {
			slots = "slots"
		}
		commit := candidateCommit(c)
		if commit == "-" {
			commit = "not checked (open uses a later meta)"
		}
		s = fmt.Sprintf("%s, reached from meta %s %s, follows tx %d, commit %s", candidateState(a, c), slots, slotList(from), c.Follows, commit)
	case rd.Err != nil:
		s = "damaged: no walk from a meta slot accepts it"
	default:
		s = "no walk from a meta slot reaches it"
	}
	if rd.InUse {
		s += "; in use in the version walked"
	}
	return s
}

func printProblemsList(w io.Writer, d *inspect.PageDetail) {
	var ps []string
	if d.Info.Problem != "" {
		ps = append(ps, problemText(fmt.Errorf("%s", d.Info.Problem), d.Info.ID))
	}
	for _, e := range d.Problems {
		if s := problemText(e, d.Info.ID); len(ps) == 0 || ps[0] != s {
			ps = append(ps, s)
		}
	}
	if len(ps) == 0 {
		return
	}
	label := "PROBLEM"
	if d.OK() {
		label = "note (free space: stale or never written)"
	}
	for _, s := range ps {
		fmt.Fprintf(w, "%s: %s\n", label, s)
	}
}

func refLong(r page.Ref) string {
	if r.IsZero() {
		return "-"
	}
	return fmt.Sprintf("page %d (tx %d, sum %016x)", r.ID, r.TxID, r.Checksum)
}

func elementValue(bf byteFormat, e btree.Element) string {
	switch e.Kind {
	case btree.KindBucket:
		return fmt.Sprintf("bucket root %s, sequence %d", refLong(e.Bucket.Root), e.Bucket.Sequence)
	case btree.KindLarge:
		return fmt.Sprintf("%d bytes in run %s", e.LargeLen, refLong(e.Large))
	}
	return showValue(bf, e.Value)
}

func pageDetailJSON(a *inspect.Analysis, d *inspect.PageDetail, bf byteFormat) any {
	type elemJSON struct {
		Kind     string   `json:"kind,omitempty"`
		Key      string   `json:"key"`
		Value    *string  `json:"value,omitempty"`
		Child    *refJSON `json:"child,omitempty"`
		Root     *refJSON `json:"root,omitempty"`
		Sequence *uint64  `json:"sequence,omitempty"`
		Run      *refJSON `json:"run,omitempty"`
		Length   *uint64  `json:"length,omitempty"`
	}
	j := struct {
		pageJSON
		Continuation     bool           `json:"continuation,omitempty"`
		Header           map[string]any `json:"header,omitempty"`
		StoredChecksum   string         `json:"stored_checksum,omitempty"`
		ComputedChecksum string         `json:"computed_checksum,omitempty"`
		OK               bool           `json:"ok"`
		Problems         []string       `json:"problems"`
		Elements         []elemJSON     `json:"elements,omitempty"`
		Meta             *metaJSON      `json:"meta,omitempty"`
		Record           *recordJSON    `json:"record,omitempty"`
		Free             any            `json:"free_space_run,omitempty"`
		Value            *string        `json:"value,omitempty"`
		Hex              string         `json:"hex,omitempty"`
	}{pageJSON: toPageJSON(a, &d.Info), Continuation: d.Continuation, OK: d.OK(), Problems: []string{}}
	for _, e := range d.Problems {
		j.Problems = append(j.Problems, problemText(e, d.Info.ID))
	}
	if !d.Continuation {
		h := d.Header
		j.Header = map[string]any{"id": h.ID, "txid": h.TxID, "type": h.Type.String(), "flags": h.Flags, "count": h.Count, "span": h.Span}
	}
	if d.SumChecked {
		j.StoredChecksum, j.ComputedChecksum = fmt.Sprintf("%016x", d.StoredSum), fmt.Sprintf("%016x", d.ComputedSum)
	}
	for _, e := range d.Elements {
		ej := elemJSON{Key: bf.encode(e.Key)}
		switch {
		case d.Header.Type == page.TypeBranch:
			ej.Child = toRefJSON(e.Child)
		case e.Kind == btree.KindBucket:
			ej.Kind, ej.Root, ej.Sequence = "bucket", toRefJSON(e.Bucket.Root), &e.Bucket.Sequence
		case e.Kind == btree.KindLarge:
			ej.Kind, ej.Run, ej.Length = "large", toRefJSON(e.Large), &e.LargeLen
		default:
			v := bf.encode(e.Value)
			ej.Kind, ej.Value = "value", &v
		}
		j.Elements = append(j.Elements, ej)
	}
	if d.Meta != nil {
		m := toMetaJSON(a, int(d.Meta.Slot))
		j.Meta = &m
	}
	if rd := d.Record; rd != nil && rd.RawOK {
		m := &rd.Raw
		r := recordJSON{Page: uint64(d.Info.ID), TxID: uint64(m.TxID), State: recordState(a, rd), From: []int{}, Flags: m.Flags,
			Root: toRefJSON(m.Root), Freelist: toRefJSON(m.Freelist), Snapshots: toRefJSON(m.Snapshots), HWM: uint64(m.HWM),
			chainJSON: toChainJSON(m)}
		if c := rd.Candidate; c != nil {
			r.State, r.Follows, r.Tried, r.Verified = candidateState(a, c), uint64(c.Follows), c.Tried, c.Verified
			for _, s := range a.Metas.ReachedFrom(c) {
				r.From = append(r.From, int(s))
			}
			if c.VerifyErr != nil {
				r.VerifyError = c.VerifyErr.Error()
			}
		}
		j.Record = &r
	}
	if fr := d.Free; fr != nil {
		type opJSON struct {
			Op   string `json:"op"`
			Page uint64 `json:"page"`
			Span uint32 `json:"span"`
			Born uint64 `json:"born,omitempty"`
		}
		type entryJSON struct {
			Page  uint64 `json:"page"`
			Span  uint32 `json:"span"`
			Born  uint64 `json:"born,omitempty"`
			Freed uint64 `json:"freed,omitempty"`
		}
		ops, entries := []opJSON{}, []entryJSON{}
		for _, o := range fr.Ops {
			ops = append(ops, opJSON{o.Kind, uint64(o.ID), o.Span, uint64(o.Born)})
		}
		for _, e := range fr.Entries {
			entries = append(entries, entryJSON{uint64(e.ID), e.Span, uint64(e.Born), uint64(e.Freed)})
		}
		j.Free = map[string]any{"prev": toRefJSON(fr.Prev), "chain_pages": fr.ChainPages, "hwm": fr.HWM, "count": fr.Count, "ops": ops, "entries": entries}
	}
	if v := d.Value(); v != nil {
		s := bf.encode(v)
		j.Value = &s
	}
	if pageHex {
		j.Hex = hex.EncodeToString(d.Bytes)
	}
	return j
}
