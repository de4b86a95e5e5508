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

const golden = "../testdata/format-v1.cow"

func analyze(t *testing.T, path string) *Analysis {
	t.Helper()
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	a, err := f.Analyze(-1)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The golden file, as the golden script in the root package wrote it:
// five commits at 1 KiB pages; the last (tx 5) in slot 1 rewrote users.
func TestGoldenFile(t *testing.T) {
	a := analyze(t, golden)
	f := a.File
	if f.PageSize() != 1024 || f.Pages() != 62 || f.PageSizeFrom != "meta slot 0" {
		t.Fatalf("page size %d (%s), %d pages", f.PageSize(), f.PageSizeFrom, f.Pages())
	}
	ms := a.Metas
	if ms.Current != 1 || ms.FallBack || ms.OpenErr != nil || ms.Slots[1].Raw.TxID != 5 || ms.Slots[0].Raw.TxID != 4 {
		t.Fatalf("metas: current %d fallback %v err %v", ms.Current, ms.FallBack, ms.OpenErr)
	}
	for _, s := range ms.Slots {
		if !s.Valid() || !s.Verified || s.StoredSum != s.ComputedSum {
			t.Errorf("slot %d: valid %v verified %v", s.Slot, s.Valid(), s.Verified)
		}
	}
	if len(a.Problems) != 0 {
		t.Fatalf("problems: %v", a.Problems)
	}
	count := map[string]int{}
	for _, p := range a.Pages {
		count[p.Kind.String()+"/"+p.Status.String()]++
	}
	// The 23 pages tx 5 replaced are free: no snapshot pins tx 4, so the
	// next commit may reuse them (they still hold tx 4's version, which
	// slot 0 describes, until then).
	wantCount := map[string]int{
		"meta/live": 2, "branch/live": 1, "leaf/live": 25, "value/live": 5,
		"free-delta/live": 6, "leaf/free": 22, "branch/free": 1,
	}
	if fmt.Sprint(count) != fmt.Sprint(wantCount) {
		t.Errorf("pages by kind/status: %v\nwant %v", count, wantCount)
	}
	// users: 300 keys, every third deleted, 14 of those re-added; prefs
	// with its sequence 3; deep holding one 5000-byte value in 5 pages.
	var names []string
	for _, b := range a.Buckets {
		if b.Role == RoleBucket {
			names = append(names, fmt.Sprintf("%s:%d:%d:%d", b.Path, b.Keys, b.Pages(), b.Sequence))
		}
	}
	if got := strings.Join(names, " "); got != "[logs]:1:1:0 [users]:214:22:0 [users prefs]:1:1:3 [users prefs deep]:1:6:0" {
		t.Errorf("buckets: %s", got)
	}
	if a.Catalog().Role != RoleCatalog || len(a.Catalog().Children) != 2 {
		t.Errorf("catalog: %+v", a.Catalog())
	}
	// Page 28 is the second page of the value run at 27.
	if p := a.Pages[28]; p.Run != 27 || p.Kind != KindValue {
		t.Errorf("page 28: %+v", p)
	}
	d, err := a.Page(27)
	if err != nil || !d.OK() || len(d.Value()) != 5000 {
		t.Errorf("page 27: %v ok=%v value %d bytes", err, d.OK(), len(d.Value()))
	}
	d, err = a.Page(35)
	if err != nil || !d.OK() || len(d.Elements) != 21 || string(d.Elements[1].Key) != "user0016" {
		t.Errorf("page 35: %v %+v", err, d)
	}
	if _, err := a.Page(62); err == nil {
		t.Error("page 62 of 62: no error")
	}
}

// writeCopy writes the golden file, changed by fn, to a temp file.
func writeCopy(t *testing.T, fn func(b []byte)) string {
	t.Helper()
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	path := filepath.Join(t.TempDir(), "c.cow")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A flipped byte in a page of the last commit: open would fall back to
// slot 0 and say which page failed; the walk from slot 0 is clean.
func TestFallback(t *testing.T) {
	path := writeCopy(t, func(b []byte) { b[36*1024+100] ^= 1 }) // page 36: tx 5's catalog root
	a := analyze(t, path)
	ms := a.Metas
	if ms.Current != 0 || !ms.FallBack || !strings.Contains(ms.Reason, "page 36: checksum mismatch") {
		t.Fatalf("current %d fallback %v reason %q", ms.Current, ms.FallBack, ms.Reason)
	}
	if ms.Slots[1].Verified || ms.Slots[1].VerifyErr == nil {
		t.Error("slot 1 verified")
	}
	if len(a.Problems) != 1 || a.Problems[0].Page != 36 {
		t.Errorf("problems: %v", a.Problems)
	}
	// Walked from slot 0 (tx 4): its tree is intact.
	if a.Slot != 0 || a.Pages[57].Status != StatusLive || a.Pages[36].Status == StatusLive {
		t.Errorf("slot %d, page 57 %v, page 36 %v", a.Slot, a.Pages[57].Status, a.Pages[36].Status)
	}
}

// A damaged meta: the other is used, the damaged one is reported.
func TestBadMeta(t *testing.T) {
	path := writeCopy(t, func(b []byte) { b[1024+meta.Size-1] ^= 0xff })
	a := analyze(t, path)
	if a.Metas.Current != 0 || !a.Metas.FallBack || a.Metas.Slots[1].Valid() {
		t.Fatalf("metas %+v", a.Metas)
	}
	if !a.Metas.Slots[1].RawOK || a.Metas.Slots[1].StoredSum == a.Metas.Slots[1].ComputedSum {
		t.Error("damaged meta not decoded raw, or its checksum holds")
	}
	if a.Pages[1].Problem == "" {
		t.Error("page 1 has no problem")
	}
}

// An older page, not part of the last commit, fails its checksum: open
// does not see it, the walk does, and names it.
func TestDamagedOlderPage(t *testing.T) {
	path := writeCopy(t, func(b []byte) { b[26*1024+40] ^= 1 }) // page 26: logs' leaf, tx 3
	a := analyze(t, path)
	if a.Metas.FallBack || a.Metas.Current != 1 {
		t.Fatalf("fallback %v", a.Metas.FallBack)
	}
	if len(a.Problems) != 1 || a.Problems[0].Page != 26 || !strings.Contains(a.Problems[0].Error(), "checksum mismatch") {
		t.Fatalf("problems: %v", a.Problems)
	}
	if p := a.Pages[26]; p.Status != StatusLive || p.Problem == "" || a.Buckets[p.Bucket].Name == nil {
		t.Errorf("page 26: %+v", p)
	}
	d, err := a.Page(26)
	if err != nil || d.OK() || d.StoredSum == d.ComputedSum {
		t.Errorf("page 26 detail: %v %+v", err, d)
	}
}

// Walking the older slot on request: pages of the newer commit past the
// older high-water mark are unused, the pages the newer commit freed are
// live again, and nothing is out of place.
func TestWalkOlderSlot(t *testing.T) {
	f, err := Open(golden, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Analyze(0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Slot != 0 || a.Pages[60].Status != StatusUnused || a.Pages[2].Status != StatusLive || len(a.Problems) != 0 {
		t.Fatalf("slot %d page 60 %v page 2 %v problems %v", a.Slot, a.Pages[60].Status, a.Pages[2].Status, a.Problems)
	}
}

// Pages nobody reaches and nobody records free are leaked, reported once
// per range: here the users branch of tx 5 (page 35) is damaged, so when
// slot 1 is walked anyway its leaves (pages 3-22 and 34) are cut off, and
// with them the nested buckets prefs (33) and deep (32, its value run
// 27-31).
func TestLeak(t *testing.T) {
	path := writeCopy(t, func(b []byte) { b[35*1024+500] ^= 1 })
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Analyze(1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range a.Problems {
		got = append(got, fmt.Sprintf("%d: %v", p.Page, p.Err))
	}
	want := []string{
		"35: cowfile: corrupt: page 35: checksum mismatch",
		"3: cowfile: corrupt: pages 3-22 are neither reachable nor free (leaked)",
		"27: cowfile: corrupt: pages 27-34 are neither reachable nor free (leaked)",
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %s\nwant %s...", i, got[i], want[i])
		}
	}
	if p := a.Pages[10]; p.Status != StatusUnreachable || p.Kind != KindLeaf {
		t.Errorf("page 10: %+v", p)
	}
}

// Bad input never panics: every byte position of the metas and a sample
// of the rest, flipped, truncated files, and garbage.
func TestNoPanics(t *testing.T) {
	orig, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	dir := t.TempDir()
	try := func(b []byte) {
		path := filepath.Join(dir, "x.cow")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		a, err := f.Analyze(-1)
		if err != nil {
			t.Fatal(err)
		}
		for id := range a.Pages {
			if _, err := a.Page(page.ID(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	positions := []int{}
	for i := 0; i < 2*1024; i += 13 {
		positions = append(positions, i)
	}
	for i := 0; i < 200; i++ {
		positions = append(positions, 2*1024+r.Intn(len(orig)-2*1024))
	}
	for _, pos := range positions {
		b := append([]byte(nil), orig...)
		b[pos] ^= byte(1 + r.Intn(255))
		try(b)
	}
	for _, n := range []int{1, 100, 1024, 1500, 2048, 5000, 30000} {
		try(append([]byte(nil), orig[:n]...))
	}
	for i := 0; i < 20; i++ {
		b := make([]byte, 1024*(1+r.Intn(64)))
		r.Read(b)
		try(b)
	}
	try(make([]byte, 8192))
}

// Snapshots: the snapshot catalog's pages are live, the pages only the
// snapshots keep are pending, and nothing is reported.
func TestSnapshots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.cow")
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: 1024, Durability: cowfile.NoSync, KeepVersions: 2})
	if err != nil {
		t.Fatal(err)
	}
	put := func(n int, v string) {
		err := db.Update(func(tx *cowfile.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if err := b.Put([]byte(fmt.Sprintf("k%04d", i)), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(200, "first")
	if err := db.CreateSnapshot("before"); err != nil {
		t.Fatal(err)
	}
	put(200, "second")
	put(100, "third")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	a := analyze(t, path)
	if len(a.Problems) != 0 {
		t.Fatalf("problems: %v", a.Problems)
	}
	var snaps *Bucket
	for _, b := range a.Buckets {
		if b.Role == RoleSnapshots {
			snaps = b
		}
	}
	// "before" and the two automatic versions of KeepVersions.
	if snaps == nil || snaps.Keys != 3 || snaps.LeafPages == 0 {
		t.Fatalf("snapshot catalog: %+v", snaps)
	}
	pending := 0
	for _, p := range a.Pages {
		if p.Status == StatusPending {
			pending++
		}
	}
	if pending == 0 {
		t.Error("no pending pages: the snapshots' versions should hold some")
	}
}
