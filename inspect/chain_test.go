package inspect

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// syncFile writes n single-key commits under Sync durability, so that
// most of them write their meta as a commit record, and returns the path
// of a copy of the file taken before Close (which writes the latest meta
// to a slot), as a crash would leave it, and the txid of the last commit.
// The file itself, closed, is live.cow beside the copy.
func syncFile(t *testing.T, n int) (string, page.TxID) {
	t.Helper()
	dir := t.TempDir()
	db, err := cowfile.Open(filepath.Join(dir, "live.cow"), &cowfile.Options{PageSize: 1024, Durability: cowfile.Sync})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range n {
		err := db.Update(func(tx *cowfile.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chain.cow")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, page.TxID(db.Stats().TxID)
}

// openStats returns what cowfile.Open makes of path.
func openStats(t *testing.T, path string) cowfile.Stats {
	t.Helper()
	db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Stats()
}

// Under Sync most commits write a commit record: Metas picks the record
// Open uses, the records in use are live meta pages, nothing leaks.
func TestChain(t *testing.T) {
	for _, n := range []int{20, 33} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { chain(t, n) })
	}
}

func chain(t *testing.T, n int) {
	path, txid := syncFile(t, n)
	if st := openStats(t, path); page.TxID(st.TxID) != txid || st.FellBack {
		t.Fatalf("open: tx %d fallback %v (%s), wrote tx %d", st.TxID, st.FellBack, st.FallbackReason, txid)
	}
	a := analyze(t, path)
	ms := a.Metas
	m, ok := ms.Meta()
	if !ok || m.TxID != txid || ms.FallBack || ms.OpenErr != nil {
		t.Fatalf("metas: tx %d ok %v fallback %v (%s) err %v; open uses tx %d", m.TxID, ok, ms.FallBack, ms.Reason, ms.OpenErr, txid)
	}
	if !m.IsRecord() {
		t.Fatalf("the meta used is meta slot %d's, want a commit record", m.Page())
	}
	c := ms.UsedCandidate()
	if !c.Verified || int(c.Slot) != ms.Current || len(ms.Records()) == 0 || ms.Slots[ms.Current].Raw.TxID >= txid {
		t.Errorf("used %+v, current slot %d, %d records", c, ms.Current, len(ms.Records()))
	}
	if a.Meta != m || a.Slot != ms.Current {
		t.Errorf("walked slot %d tx %d, want the meta open uses", a.Slot, a.Meta.TxID)
	}
	if len(a.Problems) != 0 {
		t.Fatalf("problems: %v", a.Problems)
	}
	chain := m.ChainPages()
	if len(chain) == 0 || chain[len(chain)-1] != m.Page() {
		t.Fatalf("chain %v, record at page %d", chain, m.Page())
	}
	for _, id := range chain {
		if p := a.Pages[id]; p.Kind != KindMeta || p.Status != StatusLive || p.Problem != "" {
			t.Errorf("commit record at page %d: %+v", id, p)
		}
	}
	d, err := a.Page(m.Page())
	if err != nil || !d.OK() || d.Record == nil || d.Record.Raw != m || !d.Record.InUse || d.Record.Candidate != c {
		t.Fatalf("page %d: %v %+v", m.Page(), err, d)
	}
	for _, p := range a.Pages {
		if p.Status == StatusUnreachable {
			t.Errorf("page %d leaked", p.ID)
		}
	}
	// Closed, the file's latest meta is in a slot, which names the
	// records still in use: they are live, nothing is reported.
	a = analyze(t, filepath.Join(filepath.Dir(path), "live.cow"))
	if m, ok := a.Metas.Meta(); !ok || m.IsRecord() || a.Metas.FallBack || len(a.Problems) != 0 {
		t.Errorf("closed file: tx %d (record %v), fallback %v, problems %v", m.TxID, m.IsRecord(), a.Metas.FallBack, a.Problems)
	}
	for _, id := range a.Meta.ChainPages() {
		if p := a.Pages[id]; p.Kind != KindMeta || p.Status != StatusLive {
			t.Errorf("closed file: commit record at page %d: %+v", id, p)
		}
	}
}

// A flipped byte in the newest commit record: Open falls back to the
// commit before it, and Metas says so, naming the damaged record.
func TestChainDamagedRecord(t *testing.T) {
	path, txid := syncFile(t, 20)
	a := analyze(t, path)
	m, _ := a.Metas.Meta()
	at := m.Page()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[int(at)*1024+600] ^= 1 // in the filler: only the checksum sees it
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openStats(t, path)
	if !st.FellBack || page.TxID(st.TxID) != txid-1 {
		t.Fatalf("open: tx %d fallback %v, want a fallback to tx %d", st.TxID, st.FellBack, txid-1)
	}
	a = analyze(t, path)
	ms := a.Metas
	got, ok := ms.Meta()
	if !ok || got.TxID != page.TxID(st.TxID) || !ms.FallBack || !strings.Contains(ms.Reason, fmt.Sprintf("page %d", at)) {
		t.Fatalf("metas: tx %d fallback %v reason %q; open: tx %d, %q", got.TxID, ms.FallBack, ms.Reason, st.TxID, st.FallbackReason)
	}
	if ms.Reason != st.FallbackReason {
		t.Errorf("reason %q\nopen says %q", ms.Reason, st.FallbackReason)
	}
	if len(a.Problems) == 0 || a.Problems[0].Page != at {
		t.Errorf("problems: %v", a.Problems)
	}
	// The damaged record is free in the version open falls back to.
	if p := a.Pages[at]; p.Status == StatusLive || p.Status == StatusUnreachable {
		t.Errorf("page %d: %+v", at, p)
	}
}

// Metas replays Open's choice: with one byte flipped anywhere in the
// file (a meta slot, a commit record, a page of the last commits), it
// picks the txid Open uses, and falls back or refuses when Open does, for
// the same reasons.
func TestChainMatchesOpen(t *testing.T) {
	for _, n := range []int{20, 33} { // 33: past a second meta slot commit
		t.Run(fmt.Sprint(n), func(t *testing.T) { matchOpen(t, n) })
	}
}

func matchOpen(t *testing.T, n int) {
	path, _ := syncFile(t, n)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 1024
	for id := 0; id < len(orig)/ps; id++ {
		for _, off := range []int{9, 40, 100, 600} { // header txid, meta fields / page body, filler
			b := append([]byte(nil), orig...)
			b[id*ps+off] ^= 0x10
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			ms := f.Metas()
			f.Close()
			m, ok := ms.Meta()
			db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true})
			if err != nil {
				if ok || ms.OpenErr == nil {
					t.Errorf("page %d+%d: open refuses (%v); Metas uses tx %d", id, off, err, m.TxID)
				}
				continue
			}
			st := db.Stats()
			db.Close()
			// An unreadable slot is described in more detail than Open
			// does (it only peeks at slot 0's page size).
			sameWhy := ms.Reason == st.FallbackReason || !ms.Slots[0].Valid() || !ms.Slots[1].Valid()
			if !ok || m.TxID != page.TxID(st.TxID) || ms.FallBack != st.FellBack || !sameWhy {
				t.Errorf("page %d+%d: Metas: tx %d (ok %v) fallback %v %q\nopen: tx %d fallback %v %q",
					id, off, m.TxID, ok, ms.FallBack, ms.Reason, st.TxID, st.FellBack, st.FallbackReason)
			}
		}
	}
}

// Bad input in a file with commit records never panics: bytes of the
// metas and the records flipped, every page decoded.
func TestChainNoPanics(t *testing.T) {
	path, _ := syncFile(t, 33)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(2))
	for range 300 {
		b := append([]byte(nil), orig...)
		for range 1 + r.Intn(3) {
			// Mostly the fields of a meta page: the slots' and the records'.
			id := r.Intn(len(b) / 1024)
			b[id*1024+r.Intn(meta.Size)] ^= byte(1 + r.Intn(255))
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		a := analyze(t, path)
		for id := range a.Pages {
			if _, err := a.Page(page.ID(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
