package cowfile

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager"
	"github.com/cowfile/cowfile/pager/page"
)

// Tests of commit records (format 4, docs/FORMAT.md, "Commit records"):
// what a commit writes and syncs, and what Open recovers from the bytes a
// crash, or damage to a meta page, leaves.
//
// A crash is simulated by copying the file while the DB is still open,
// right after a commit returned: every write went to the file through
// pwritev, so the copy holds what the disk holds after that commit's sync,
// without the meta slot Close would write.

// chainFS counts, while on, the write calls (WriteAt, WritevAt) and syncs
// of the files it opens. It passes the optional Allocator and
// WritebackStarter through, so the pager behaves as over the OS files.
// With skipSync it makes no sync reach the disk: the tests that copy a
// file to simulate a crash read what the page cache holds, which a sync
// does not change, and run faster without them.
type chainFS struct {
	on            atomic.Bool
	writes, syncs atomic.Int64
	skipSync      bool
	// onSync, if set, is called with the file before each sync.
	onSync func(f pager.File)
}

func (f *chainFS) OpenFile(name string, flag int, perm os.FileMode) (pager.File, error) {
	file, err := pager.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &chainFile{File: file, fs: f}, nil
}
func (f *chainFS) Rename(a, b string) error { return pager.OSFS.Rename(a, b) }
func (f *chainFS) Remove(name string) error { return pager.OSFS.Remove(name) }
func (f *chainFS) SyncDir(dir string) error {
	if f.skipSync {
		return nil
	}
	return pager.OSFS.SyncDir(dir)
}

// counts returns the write calls and syncs counted so far.
func (f *chainFS) counts() (writes, syncs int64) { return f.writes.Load(), f.syncs.Load() }

type chainFile struct {
	pager.File
	fs *chainFS
}

func (f *chainFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.on.Load() {
		f.fs.writes.Add(1)
	}
	return f.File.WriteAt(p, off)
}

func (f *chainFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	if f.fs.on.Load() {
		f.fs.writes.Add(1)
	}
	return f.File.WritevAt(bufs, off)
}

func (f *chainFile) Sync() error {
	if f.fs.on.Load() {
		f.fs.syncs.Add(1)
	}
	if f.fs.onSync != nil {
		f.fs.onSync(f.File)
	}
	if f.fs.skipSync {
		return nil
	}
	return f.File.Sync()
}

func (f *chainFile) Allocate(off, n int64) error {
	if a, ok := f.File.(pager.Allocator); ok {
		return a.Allocate(off, n)
	}
	return f.File.Truncate(off + n)
}

func (f *chainFile) StartWriteback(off, n int64) error {
	if ws, ok := f.File.(pager.WritebackStarter); ok {
		return ws.StartWriteback(off, n)
	}
	return nil
}

// chainRun is a DB under a fixed workload of small commits, with the
// expected contents of bucket "b" and the txid after each commit:
// models[n] and txids[n] after n commits (models[0] is empty).
type chainRun struct {
	t      *testing.T
	db     *DB
	models []map[string]string
	txids  []uint64
	// records[n]: commit n wrote its meta only as a commit record.
	records []bool
}

func newChainRun(t *testing.T, path string, o *Options) *chainRun {
	t.Helper()
	db := mustOpen(t, path, o)
	return &chainRun{t: t, db: db, models: []map[string]string{{}}, txids: []uint64{db.Stats().TxID}, records: []bool{false}}
}

// commit runs the next commit of the workload: commit i puts a key of 25
// (overwriting from the 26th on) and every seventh also deletes one.
func (r *chainRun) commit() {
	r.t.Helper()
	i := len(r.models) - 1
	m := maps.Clone(r.models[i])
	err := r.db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		k, v := fmt.Sprintf("k%02d", i%25), fmt.Sprintf("v%d", i)
		m[k] = v
		if err := b.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
		if i%7 == 6 {
			k := fmt.Sprintf("k%02d", i*3%25)
			delete(m, k)
			return b.Delete([]byte(k))
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("commit %d: %v", i+1, err)
	}
	r.models = append(r.models, m)
	r.txids = append(r.txids, r.db.Stats().TxID)
	r.db.mu.Lock()
	r.records = append(r.records, r.db.meta.IsRecord())
	r.db.mu.Unlock()
}

// eachRecordOnly runs commits 1 to last and calls fn after each that
// wrote its meta only as a commit record, with a crash copy of the file
// (img, of ps-byte pages) and that record, the newest meta in it. It
// returns how many such commits there were.
func (r *chainRun) eachRecordOnly(last int, fn func(n int, img []byte, ps int, newest meta.Meta)) int {
	t := r.t
	t.Helper()
	tried := 0
	for n := 1; n <= last; n++ {
		r.commit()
		if !r.records[n] {
			continue
		}
		tried++
		img := chainImage(t, r.db)
		ps := r.db.Stats().PageSize
		_, newest := chainMetas(t, img, ps)
		if newest.TxID != page.TxID(r.txids[n]) || !newest.IsRecord() {
			t.Fatalf("after %d commits: newest meta tx %d (record %v), want the record of tx %d", n, newest.TxID, newest.IsRecord(), r.txids[n])
		}
		fn(n, img, ps, newest)
	}
	return tried
}

// chainImage returns the bytes of db's file as they stand: after a commit
// returned, what a crash then leaves on the disk.
func chainImage(t *testing.T, db *DB) []byte {
	t.Helper()
	b, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chainRO opens a copy only to read it: what Open recovers does not depend
// on the mode, and a read-only open is the cheaper.
var chainRO = &Options{ReadOnly: true}

// chainOpen writes img to a new file and opens it.
func chainOpen(t *testing.T, img []byte, o *Options) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.cow")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return mustOpen(t, path, o)
}

// chainHolds checks that bucket "b" of db holds exactly want (no Check).
func chainHolds(t *testing.T, db *DB, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	err := db.View(func(tx *Tx) error {
		b := tx.Bucket([]byte("b"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			got[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("holds %v, want %v", got, want)
	}
}

// chainCheck returns what Check finds in db's latest version.
func chainCheck(db *DB) error { return db.View(func(tx *Tx) error { return tx.Check() }) }

// chainMetas decodes the meta slots of img (ps-byte pages) and follows
// the commit records from each, as Open does; newest is the meta of the
// highest txid among them all.
func chainMetas(t *testing.T, img []byte, ps int) (slots []meta.Meta, newest meta.Meta) {
	t.Helper()
	read := func(id page.ID) []byte {
		off := uint64(id) * uint64(ps)
		if id >= 1<<48 || off+uint64(ps) > uint64(len(img)) {
			return nil
		}
		return img[off : off+uint64(ps)]
	}
	for slot := range page.ID(2) {
		m, err := meta.Decode(read(slot), slot)
		if err != nil {
			continue
		}
		slots = append(slots, m)
		for _, c := range append([]meta.Meta{m}, meta.Follow(m, read).Records...) {
			if c.TxID > newest.TxID {
				newest = c
			}
		}
	}
	if len(slots) == 0 {
		t.Fatal("no meta slot decodes")
	}
	return slots, newest
}

// chainPeriod is how many commits apart meta slot commits (checkpoints)
// are once the chain runs: after maxChain record-only commits the next
// commit writes a slot — unless its txid would write the slot the latest
// version was found from, then it records only and the one after writes
// the slot. Slot commits are thus an odd number of txids apart: maxChain+1
// when maxChain is even, maxChain+2 when it is odd (so an odd
// Options.MaxChain lets one more commit in a row record only).
func chainPeriod(maxChain int) int { return maxChain + 1 + maxChain%2 }

// Under Sync a commit writes its pages and its meta, as a commit record
// at the page the previous commit reserved, with one write call and one
// fdatasync. The first two commits of a new file also write a meta slot
// (the first has no reserved page; the second makes the walk from either
// slot reach the latest version), and so does every chainPeriod-th commit
// after: two write calls, still one sync. Without records (MaxChain -1)
// every commit writes its pages then its slot; SyncMeta syncs between
// them; NoSync writes the same two and syncs nothing. Close of a version
// held only by a record writes it to a slot: one write, one sync.
func TestChainOneWritePerCommit(t *testing.T) {
	for _, c := range []struct {
		name   string
		o      Options
		period int // 0: no records, every commit writes the same
		w, s   int64
	}{
		{name: "default", period: chainPeriod(maxChain)},
		{name: "MaxChain 3", o: Options{MaxChain: 3}, period: chainPeriod(3)},
		{name: "MaxChain 4", o: Options{MaxChain: 4}, period: chainPeriod(4)},
		{name: "MaxChain -1", o: Options{MaxChain: -1}, w: 2, s: 1},
		{name: "SyncMeta", o: Options{Durability: SyncMeta}, w: 2, s: 2},
		{name: "NoSync", o: Options{Durability: NoSync}, w: 2, s: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := &chainFS{}
			o := c.o
			o.FS = fs
			r := newChainRun(t, tempPath(t), &o)
			defer r.db.Close()
			fs.on.Store(true)
			var recordOnly, twoWrites int
			for j := range 40 {
				w0, s0 := fs.counts()
				r.commit()
				w1, s1 := fs.counts()
				w, s := w1-w0, s1-s0
				wantW, wantS := c.w, c.s
				if c.period != 0 {
					// Commits 0 and 1 write a slot; then every period-th.
					slot := j < 2 || (j-1)%c.period == 0
					wantW, wantS = 1, 1
					if slot {
						wantW = 2
					}
					if r.records[j+1] == slot {
						t.Fatalf("commit %d (tx %d): meta is a record: %v, want %v", j, r.txids[j+1], r.records[j+1], !slot)
					}
				} else if r.records[j+1] {
					t.Fatalf("commit %d (tx %d) wrote a commit record", j, r.txids[j+1])
				}
				if w != wantW || s != wantS {
					t.Fatalf("commit %d (tx %d): %d writes, %d syncs; want %d, %d", j, r.txids[j+1], w, s, wantW, wantS)
				}
				if w == 1 {
					recordOnly++
				} else {
					twoWrites++
				}
			}
			if c.period != 0 {
				// The first two, then one in period from commit 1 on.
				wantTwo := 2 + 38/c.period
				if twoWrites != wantTwo || recordOnly != 40-wantTwo {
					t.Errorf("%d record-only and %d two-write commits, want %d and %d", recordOnly, twoWrites, 40-wantTwo, wantTwo)
				}
			}
			last := r.records[len(r.records)-1]
			w0, s0 := fs.counts()
			if err := r.db.Close(); err != nil {
				t.Fatal(err)
			}
			w, s := fs.counts()
			wantW, wantS := int64(0), int64(0)
			if last {
				wantW, wantS = 1, 1
			}
			if w-w0 != wantW || s-s0 != wantS {
				t.Errorf("Close after a record-only commit (%v): %d writes, %d syncs; want %d, %d", last, w-w0, s-s0, wantW, wantS)
			}
		})
	}
}

// A crash right after any commit — record-only or checkpoint, early in
// the file's life or once the chain runs — loses nothing: Open finds that
// very commit, with no fallback, and its contents, which Check accepts.
func TestChainCrashRecoversLatest(t *testing.T) {
	for _, mc := range []int{3, 0} {
		t.Run(fmt.Sprintf("MaxChain %d", mc), func(t *testing.T) {
			o := &Options{MaxChain: mc, FS: &chainFS{skipSync: true}}
			r := newChainRun(t, tempPath(t), o)
			defer r.db.Close()
			kinds := map[bool]int{}
			for n := 1; n <= 40; n++ {
				r.commit()
				kinds[r.records[n]]++
				db := chainOpen(t, chainImage(t, r.db), chainRO)
				st := db.Stats()
				if st.TxID != r.txids[n] || st.FellBack {
					t.Fatalf("after %d commits (record %v): opened tx %d, fallback %v (%s); want tx %d", n, r.records[n], st.TxID, st.FellBack, st.FallbackReason, r.txids[n])
				}
				chainHolds(t, db, r.models[n])
				if err := chainCheck(db); err != nil {
					t.Fatalf("after %d commits: %v", n, err)
				}
				db.Close()
			}
			if kinds[true] == 0 || kinds[false] < 3 {
				t.Fatalf("crashes after %d record-only and %d slot commits: the test covers too little", kinds[true], kinds[false])
			}
		})
	}
}

// A crash copy whose newest commit wrote a record only, with that record
// damaged — its body, or the txid in its header — opens the previous
// commit, and says so: the walk tells a damaged record from the end of
// the chain by the header it claims or the Prev it carries. The fallen
// back DB takes commits again, and a reopen after Close finds them with
// no fallback.
func TestRecordDamagedNewestFallsBack(t *testing.T) {
	for _, mc := range []int{3, 0} {
		t.Run(fmt.Sprintf("MaxChain %d", mc), func(t *testing.T) {
			o := &Options{MaxChain: mc, FS: &chainFS{skipSync: true}}
			r := newChainRun(t, tempPath(t), o)
			defer r.db.Close()
			tried := r.eachRecordOnly(40, func(n int, img []byte, ps int, newest meta.Meta) {
				at := newest.Page()
				for _, d := range []struct {
					what string
					off  int
					mask byte
				}{
					{"body", 200, 0xff},
					{"txid low byte", 16, 0xff},
					{"txid high byte", 23, 0x80},
				} {
					bad := append([]byte(nil), img...)
					bad[int(at)*ps+d.off] ^= d.mask
					// Every fifth, opened to write after the fallback.
					write, opts := n%5 == 0, chainRO
					if write {
						opts = o
					}
					db := chainOpen(t, bad, opts)
					st := db.Stats()
					if st.TxID != r.txids[n-1] || !st.FellBack || !strings.Contains(st.FallbackReason, fmt.Sprintf("page %d: ", at)) {
						t.Fatalf("after %d commits, %s of the record at page %d damaged: opened tx %d, fallback %v (%s); want tx %d, a fallback naming the page",
							n, d.what, at, st.TxID, st.FellBack, st.FallbackReason, r.txids[n-1])
					}
					chainHolds(t, db, r.models[n-1])
					if err := chainCheck(db); err != nil {
						t.Fatalf("after %d commits, %s damaged: %v", n, d.what, err)
					}
					if write {
						put(t, db, "b", "after", "fallback")
						want := maps.Clone(r.models[n-1])
						want["after"] = "fallback"
						path := db.Path()
						if err := db.Close(); err != nil {
							t.Fatal(err)
						}
						db = mustOpen(t, path, o)
						if st := db.Stats(); st.FellBack {
							t.Fatalf("after %d commits, %s damaged, a commit and Close: fallback (%s)", n, d.what, st.FallbackReason)
						}
						chainHolds(t, db, want)
						if err := chainCheck(db); err != nil {
							t.Fatal(err)
						}
					}
					db.Close()
				}
			})
			if tried < 20 {
				t.Fatalf("only %d record-only commits", tried)
			}
		})
	}
}

// The record of a dropped commit must not come back. A crash copy whose
// newest commit wrote its record intact but one of its pages torn (a
// sector of its root page stale) opens the previous commit. The commit
// after it writes its own record at the same reserved page and, maybe,
// the very sector the torn page lacks (only a page's first sector carries
// the txid): torn in turn, that write could leave the old record and
// complete its commit. So before that commit writes anything, the
// reserved page is wiped and synced with the meta slot (bug 10 of
// docs/RELIABILITY.md; the FuzzCrash corpus entry
// regression-dropped-record-completed is the case it was found with).
func TestFallbackWipesDroppedRecord(t *testing.T) {
	o := &Options{MaxChain: 3, FS: &chainFS{skipSync: true}}
	r := newChainRun(t, tempPath(t), o)
	defer r.db.Close()
	tried := r.eachRecordOnly(12, func(n int, img []byte, ps int, newest meta.Meta) {
		at, root := newest.Page(), newest.Root.ID
		if newest.Root.TxID != newest.TxID {
			t.Fatalf("after %d commits: the newest commit did not write its root page", n)
		}
		bad := append([]byte(nil), img...)
		bad[int(root)*ps+ps-1] ^= 0xff // the root page's last sector is stale
		var atFirstSync []byte
		fs := &chainFS{skipSync: true}
		fs.onSync = func(f pager.File) {
			if atFirstSync == nil {
				atFirstSync = make([]byte, ps)
				if _, err := f.ReadAt(atFirstSync, int64(at)*int64(ps)); err != nil {
					t.Error(err)
				}
			}
		}
		db := chainOpen(t, bad, &Options{MaxChain: 3, FS: fs})
		if st := db.Stats(); st.TxID != r.txids[n-1] || !st.FellBack {
			t.Fatalf("after %d commits, root page %d torn: opened tx %d, fallback %v; want tx %d and a fallback", n, root, st.TxID, st.FellBack, r.txids[n-1])
		}
		put(t, db, "b", "after", "fallback")
		if atFirstSync == nil {
			t.Fatal("the commit after the fallback never synced")
		}
		if _, err := meta.Decode(atFirstSync, at); err == nil || !bytes.Equal(atFirstSync, bytes.Repeat([]byte{0xff}, ps)) {
			t.Fatalf("after %d commits: at the first sync after the fallback, page %d (the dropped record) is not wiped (decode error %v)", n, at, err)
		}
		db.Close()
	})
	if tried < 3 {
		t.Fatalf("only %d record-only commits", tried)
	}
}

// Once the walks from both meta slots reach the latest version (from the
// second commit of a new file on), either slot may be lost — zeroed —
// with no commit lost: Open follows the records from the other slot to
// the latest commit, and reports the slot it could not read.
func TestChainSurvivesLostSlot(t *testing.T) {
	for _, mc := range []int{3, 0} {
		t.Run(fmt.Sprintf("MaxChain %d", mc), func(t *testing.T) {
			o := &Options{MaxChain: mc, FS: &chainFS{skipSync: true}}
			r := newChainRun(t, tempPath(t), o)
			defer r.db.Close()
			for n := 1; n <= 40; n++ {
				r.commit()
				if n < 2 {
					continue
				}
				img := chainImage(t, r.db)
				ps := r.db.Stats().PageSize
				for slot := range 2 {
					bad := append([]byte(nil), img...)
					clear(bad[slot*ps : (slot+1)*ps])
					db := chainOpen(t, bad, chainRO)
					st := db.Stats()
					if st.TxID != r.txids[n] || !st.FellBack || !strings.Contains(st.FallbackReason, fmt.Sprintf("page %d: ", slot)) {
						t.Fatalf("after %d commits (record %v), slot %d zeroed: opened tx %d, fallback %v (%s); want tx %d, a fallback naming page %d",
							n, r.records[n], slot, st.TxID, st.FellBack, st.FallbackReason, r.txids[n], slot)
					}
					chainHolds(t, db, r.models[n])
					if err := chainCheck(db); err != nil {
						t.Fatalf("after %d commits, slot %d zeroed: %v", n, slot, err)
					}
					db.Close()
				}
			}
		})
	}
}

// Close leaves the latest version in a meta slot, so a reopen needs no
// record and reports nothing; and damage to a record the version still
// lists as in use neither changes what Open recovers nor goes unnoticed:
// Check names the page. The exception, the newest slot's own record, is
// pinned below as it stands today.
func TestChainCleanClose(t *testing.T) {
	for _, mc := range []int{3, 0} {
		t.Run(fmt.Sprintf("MaxChain %d", mc), func(t *testing.T) {
			o := &Options{MaxChain: mc, FS: &chainFS{skipSync: true}}
			// Runs of every length through two chain periods, and
			// around the checkpoints after (a file per length).
			ns := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 19, 31, 32, 33, 34}
			var otherDamaged int
			for _, n := range ns {
				path := tempPath(t)
				r := newChainRun(t, path, o)
				for range n {
					r.commit()
				}
				ps := r.db.Stats().PageSize
				if err := r.db.Close(); err != nil {
					t.Fatal(err)
				}
				img, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				slots, newest := chainMetas(t, img, ps)
				top := slots[0]
				for _, m := range slots[1:] {
					if m.TxID > top.TxID {
						top = m
					}
				}
				if top.TxID < page.TxID(r.txids[n]) || newest.TxID != top.TxID {
					t.Fatalf("after %d commits (record %v) and Close: newest slot tx %d, newest meta tx %d; want a slot of tx %d or later, and no later record",
						n, r.records[n], top.TxID, newest.TxID, r.txids[n])
				}
				db := mustOpen(t, path, o)
				st := db.Stats()
				if st.FellBack || st.TxID != uint64(top.TxID) {
					t.Fatalf("after %d commits and Close: opened tx %d, fallback %v (%s); want tx %d", n, st.TxID, st.FellBack, st.FallbackReason, top.TxID)
				}
				chainHolds(t, db, r.models[n])
				if err := chainCheck(db); err != nil {
					t.Fatal(err)
				}
				db.Close()
				for _, at := range top.ChainPages() {
					bad := append([]byte(nil), img...)
					bad[int(at)*ps+200] ^= 0xff
					db := chainOpen(t, bad, chainRO)
					st := db.Stats()
					if top.Flags&meta.FlagRecorded != 0 {
						t.Fatalf("after %d commits and Close: the newest slot is flagged recorded; Close should have written a clean one", n)
					}
					otherDamaged++
					if st.TxID != uint64(top.TxID) || st.FellBack {
						t.Errorf("after %d commits (record %v) and Close, record at page %d of %v damaged: opened tx %d, fallback %v (%s); want tx %d",
							n, r.records[n], at, top.ChainPages(), st.TxID, st.FellBack, st.FallbackReason, top.TxID)
						db.Close()
						continue
					}
					chainHolds(t, db, r.models[n])
					if err := chainCheck(db); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("page %d: ", at)) {
						t.Errorf("after %d commits and Close, record at page %d damaged: Check: %v", n, at, err)
					}
					db.Close()
				}
			}
			if otherDamaged < 40 {
				t.Fatalf("damaged %d records in use: the test covers too little", otherDamaged)
			}
		})
	}
}

// A file of format 3 (no Next in its metas) moves on to records: its
// first commit writes a slot only, its second a record and a slot, then
// commits write one record each, with the old pages and the new read
// back together — after a crash and after Close.
func TestChainOlderFormats(t *testing.T) {
	img, err := os.ReadFile("testdata/writer-v3.cow")
	if err != nil {
		t.Fatal(err)
	}
	want := newMBucket()
	writeGolden(t, filepath.Join(t.TempDir(), "model.cow"), want)
	fs := &chainFS{}
	o := &Options{FS: fs}
	path := filepath.Join(t.TempDir(), "v3.cow")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	db := mustOpen(t, path, o)
	defer db.Close()
	fs.on.Store(true)
	want.sub["new"] = newMBucket()
	period := chainPeriod(maxChain)
	for j := range 20 {
		k, v := fmt.Sprintf("n%02d", j), fmt.Sprint(j)
		w0, _ := fs.counts()
		put(t, db, "new", k, v)
		want.sub["new"].kv[k] = v
		w, _ := fs.counts()
		wantW := int64(1)
		if j < 2 || (j-1)%period == 0 {
			wantW = 2
		}
		if w-w0 != wantW {
			t.Fatalf("commit %d into a format 3 file: %d writes, want %d", j, w-w0, wantW)
		}
	}
	last := db.Stats().TxID
	crash := chainOpen(t, chainImage(t, db), chainRO)
	if st := crash.Stats(); st.TxID != last || st.FellBack {
		t.Fatalf("crash copy: opened tx %d, fallback %v (%s); want tx %d", st.TxID, st.FellBack, st.FallbackReason, last)
	}
	compareDB(t, crash, want)
	crash.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, nil)
	if st := db.Stats(); st.TxID < last || st.FellBack {
		t.Fatalf("after Close: opened tx %d, fallback %v (%s); want tx %d or later", st.TxID, st.FellBack, st.FallbackReason, last)
	}
	compareDB(t, db, want)
}

// A rolled-back write transaction writes nothing and gives back the page
// it reserved for its record — whether it changed one key or allocated
// many pages — so the next commit still writes its record there, with its
// pages, in one write, and a crash after it recovers it.
func TestRecordRollbackKeepsReservation(t *testing.T) {
	fs := &chainFS{}
	o := &Options{FS: fs}
	r := newChainRun(t, tempPath(t), o)
	defer r.db.Close()
	for range 4 {
		r.commit()
	}
	if !r.records[4] {
		t.Fatal("the fourth commit wrote a slot")
	}
	fs.on.Store(true)
	rollbacks := []func(){
		func() {
			tx, err := r.db.Begin(true)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tx.CreateBucketIfNotExists([]byte("b"))
			if err := b.Put([]byte("gone"), []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			errFn := errors.New("fn failed")
			if err := r.db.Update(func(tx *Tx) error {
				b, _ := tx.CreateBucketIfNotExists([]byte("b"))
				b.Put([]byte("gone"), []byte("x"))
				return errFn
			}); !errors.Is(err, errFn) {
				t.Fatalf("Update: %v", err)
			}
		},
		func() {
			// Many pages allocated, more than the run the record
			// page was reserved at the start of.
			errFn := errors.New("fn failed")
			if err := r.db.Update(func(tx *Tx) error {
				b, _ := tx.CreateBucketIfNotExists([]byte("big"))
				if err := putBig(b, 3000, "x"); err != nil {
					return err
				}
				return errFn
			}); !errors.Is(err, errFn) {
				t.Fatalf("Update: %v", err)
			}
		},
	}
	for i, rollback := range rollbacks {
		w0, s0 := fs.counts()
		rollback()
		w1, s1 := fs.counts()
		if w1 != w0 || s1 != s0 {
			t.Fatalf("rollback %d: %d writes, %d syncs", i, w1-w0, s1-s0)
		}
		r.commit()
		n := len(r.models) - 1
		w, s := fs.counts()
		if !r.records[n] || w-w1 != 1 || s-s1 != 1 {
			t.Fatalf("rollback %d, then a commit: record %v, %d writes, %d syncs; want a record, 1 write, 1 sync", i, r.records[n], w-w1, s-s1)
		}
		db := chainOpen(t, chainImage(t, r.db), chainRO)
		if st := db.Stats(); st.TxID != r.txids[n] || st.FellBack {
			t.Fatalf("rollback %d, a commit, a crash: opened tx %d, fallback %v (%s); want tx %d", i, st.TxID, st.FellBack, st.FallbackReason, r.txids[n])
		}
		chainHolds(t, db, r.models[n])
		err := db.View(func(tx *Tx) error {
			if tx.Bucket([]byte("big")) != nil {
				return errors.New("the rolled-back bucket exists")
			}
			return tx.Check()
		})
		if err != nil {
			t.Fatalf("rollback %d: %v", i, err)
		}
		db.Close()
	}
}

// A backup taken by a reader is the reader's version, whatever commits
// follow while it copies: their commit records, written into pages free in
// that version and copied with them, must not extend the copy's chain.
func TestWriteToIgnoresLaterRecords(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, &Options{PageSize: 1024, MaxChain: 1})
	defer db.Close()
	// Churn, so that the version read has free pages below its
	// high-water mark, where its reserved page and the next commits go.
	for i := 0; i < 30; i++ {
		put(t, db, "churn", "k", strings.Repeat("x", 100+i*100))
	}
	for i := 0; i < 5; i++ {
		put(t, db, "b", fmt.Sprint("k", i), "v")
	}
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	at := tx.ID()
	for i := 5; i < 10; i++ {
		put(t, db, "b", fmt.Sprint("k", i), "v")
	}
	var buf bytes.Buffer
	if _, err := tx.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	copyPath := tempPath(t)
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, copyPath, &Options{ReadOnly: true})
	defer c.Close()
	if st := c.Stats(); st.TxID < at || st.TxID > at+1 || st.FellBack {
		t.Fatalf("backup of tx %d opened at tx %d (fallback %v: %s)", at, st.TxID, st.FellBack, st.FallbackReason)
	}
	err = c.View(func(tx *Tx) error {
		n := 0
		tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error { n++; return nil })
		if n != 5 {
			t.Errorf("backup holds %d keys, want the reader's 5", n)
		}
		return tx.Check()
	})
	if err != nil {
		t.Fatal(err)
	}
}
