package cowfile

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/cowfile/cowfile/pager"
)

// bigCommit puts n keys with 400-byte values in one transaction: about
// a hundred 4 KiB leaves per thousand keys.
func bigCommit(db *DB, n int, tag string) error {
	return db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		return putBig(b, n, tag)
	})
}

// putBig puts keys 0..n-1 with bigValue(i, tag) into b.
func putBig(b *Bucket, n int, tag string) error {
	for i := 0; i < n; i++ {
		if err := b.Put([]byte(fmt.Sprintf("k%06d", i)), bigValue(i, tag)); err != nil {
			return err
		}
	}
	return nil
}

func bigValue(i int, tag string) []byte {
	v := make([]byte, 400)
	for j := range v {
		v[j] = tag[0] + byte((i+j)%7)
	}
	return v
}

// A large durable commit writes its pages in batches as the trees spill,
// each followed by a writeback hint over what it wrote, and only then the
// rest, the meta and the sync: the meta is the last write and the sync the
// last call. A NoSync commit gives no hints. The file reads back whole.
func TestLargeCommitWritesEarly(t *testing.T) {
	for _, mode := range []Durability{Sync, SyncMeta, NoSync} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := &recordFS{}
			path := tempPath(t)
			db := mustOpen(t, path, &Options{FS: fs, Durability: mode})
			from := fs.count()
			if err := bigCommit(db, 3000, "a"); err != nil {
				t.Fatal(err)
			}
			evs := fs.since(from)
			ps := int64(db.ps)

			// Every page written before a hint lies in the range of the
			// first hint after it; only the last batch, the meta and the
			// syncs come after the last hint.
			hints, metaAt, syncs := 0, -1, 0
			var since []recEvent // page writes since the last hint
			for i, e := range evs {
				switch {
				case e.hint:
					hints++
					if len(since) == 0 {
						t.Fatalf("hint %d follows no write", i)
					}
					for _, w := range since {
						if w.off < e.off || w.off+int64(len(w.data)) > e.off+e.size {
							t.Fatalf("hint [%d, +%d) does not cover the write [%d, +%d) before it",
								e.off, e.size, w.off, len(w.data))
						}
					}
					since = since[:0]
				case e.sync:
					syncs++
				case e.data != nil && e.off < 2*ps:
					if metaAt >= 0 {
						t.Fatalf("two meta writes, events %d and %d", metaAt, i)
					}
					metaAt = i
				case e.data != nil:
					since = append(since, e)
				}
			}
			if metaAt < 0 {
				t.Fatal("no meta write")
			}
			for _, e := range evs[metaAt+1:] {
				if !e.sync {
					t.Fatalf("%+v after the meta write", e)
				}
			}
			if mode == NoSync {
				if hints != 0 || syncs != 0 {
					t.Fatalf("NoSync: %d hints, %d syncs", hints, syncs)
				}
			} else {
				// 3000 keys are some 300 leaves: several batches of 64.
				if hints < 3 {
					t.Fatalf("%d early batches in a commit of ~300 pages", hints)
				}
				if !evs[len(evs)-1].sync {
					t.Fatal("the last call is not a sync")
				}
			}

			db.Close()
			db = mustOpen(t, path, nil)
			defer db.Close()
			for _, i := range []int{0, 1, 1234, 2999} {
				if got, want := get(t, db, "b", fmt.Sprintf("k%06d", i)), bigValue(i, "a"); string(got) != string(want) {
					t.Fatalf("key %d: got %q", i, got)
				}
			}
			if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A failed early write, or a failed writeback hint, fails the commit like
// a failed write at the end: ErrWriteFailed, sticky, and a reopen finds
// the acknowledged state or the one in flight, whole.
func TestEarlyWriteErrorsAreSticky(t *testing.T) {
	for _, c := range []struct {
		name string
		fs   func() (pager.FS, func(on bool))
	}{
		{"early write EIO", func() (pager.FS, func(bool)) {
			fs := &faultFS{failWrite: 1, err: syscall.EIO}
			return fs, func(on bool) { fs.armed.Store(on) }
		}},
		{"hint EIO", func() (pager.FS, func(bool)) {
			fs := &recordFS{}
			return fs, func(on bool) {
				fs.mu.Lock()
				defer fs.mu.Unlock()
				fs.hintErr = nil
				if on {
					fs.hintErr = syscall.EIO
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, arm := c.fs()
			path := tempPath(t)
			db := mustOpen(t, path, &Options{FS: fs})
			if err := bigCommit(db, 1000, "a"); err != nil {
				t.Fatal(err)
			}
			arm(true)
			err := bigCommit(db, 3000, "b")
			arm(false)
			if !errors.Is(err, syscall.EIO) || !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("commit: %v", err)
			}
			if err := db.Update(func(tx *Tx) error { return nil }); !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("write after failure: %v", err)
			}
			db.Close()
			db = mustOpen(t, path, nil)
			defer db.Close()
			got := string(get(t, db, "b", "k000500"))
			if got != string(bigValue(500, "a")) && got != string(bigValue(500, "b")) {
				t.Fatalf("after reopen: %q", got)
			}
			if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A commit of large values writes one long run; it is cut into batches
// only at offsets that are multiples of writebackPages pages (or where a
// run ends), each batch hinted but the last, and reads back whole.
func TestLongRunsCutAtAlignedOffsets(t *testing.T) {
	fs := &recordFS{}
	path := tempPath(t)
	db := mustOpen(t, path, &Options{FS: fs})
	value := func(i int) []byte {
		v := make([]byte, 100<<10)
		for j := range v {
			v[j] = byte(i*31 + j/4096)
		}
		return v
	}
	from := fs.count()
	err := db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket([]byte("v"))
		if err != nil {
			return err
		}
		for i := 0; i < 10; i++ {
			if err := b.Put([]byte{byte(i)}, value(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := fs.since(from)
	ps := int64(db.ps)
	align := int64(writebackPages) * ps
	var writes []recEvent
	hints := 0
	for _, e := range evs {
		switch {
		case e.hint:
			hints++
		case e.data != nil && e.off >= 2*ps:
			writes = append(writes, e)
		}
	}
	cuts := 0
	for i, w := range writes[:len(writes)-1] {
		end := w.off + int64(len(w.data))
		if writes[i+1].off == end { // the run goes on in the next write
			cuts++
			if end%align != 0 {
				t.Fatalf("a run cut at offset %d, not a multiple of %d", end, align)
			}
		}
	}
	// 1 MB of values: at least three cuts and hints at 256 KiB.
	if cuts < 3 || hints < 3 {
		t.Fatalf("%d cuts, %d hints in %d writes", cuts, hints, len(writes))
	}
	db.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	for i := 0; i < 10; i++ {
		if got := get(t, db, "v", string([]byte{byte(i)})); !bytes.Equal(got, value(i)) {
			t.Fatalf("value %d differs after reopen", i)
		}
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// withReader opens a new DB on fs, commits n keys of bigValue(i, "a")
// and begins a reader of that state.
func withReader(t *testing.T, fs pager.FS, n int) (string, *DB, *Tx) {
	t.Helper()
	path := tempPath(t)
	db := mustOpen(t, path, &Options{FS: fs})
	if err := bigCommit(db, n, "a"); err != nil {
		t.Fatal(err)
	}
	old, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	return path, db, old
}

// Pages written early and then changed again by the same transaction (a
// Diff writes the transaction's trees out; later puts rewrite the same
// leaves, freeing pages born in this transaction for reuse) reach the file
// in their final form: the commit rewrites them, and the file reads back
// the last values.
func TestEarlyWrittenPagesRewritten(t *testing.T) {
	fs := &recordFS{}
	path, db, old := withReader(t, fs, 1000)
	from := fs.count()
	err := db.Update(func(tx *Tx) error {
		b := tx.Bucket([]byte("b"))
		if err := putBig(b, 3000, "b"); err != nil {
			return err
		}
		changes := 0
		if err := Diff(old, tx, func(Change) error { changes++; return nil }); err != nil {
			return err
		}
		if changes != 3000 {
			return fmt.Errorf("diff: %d changes, want 3000", changes)
		}
		return putBig(b, 3000, "c")
	})
	old.Rollback()
	if err != nil {
		t.Fatal(err)
	}
	evs := fs.since(from)
	// Some page was written twice by this one commit: early, then again.
	ps := int64(db.ps)
	seen := map[int64]bool{}
	twice := 0
	for _, e := range evs {
		if e.data == nil || e.off < 2*ps {
			continue
		}
		for off := e.off; off < e.off+int64(len(e.data)); off += ps {
			if seen[off] {
				twice++
			}
			seen[off] = true
		}
	}
	if twice == 0 {
		t.Fatal("no page was written twice: the test did not rewrite an early page")
	}
	db.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	if err := db.View(func(tx *Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := 0; i < 3000; i++ {
			if got := b.Get([]byte(fmt.Sprintf("k%06d", i))); !bytes.Equal(got, bigValue(i, "c")) {
				return fmt.Errorf("key %d: %.10q", i, got)
			}
		}
		return tx.Check()
	}); err != nil {
		t.Fatal(err)
	}
}

// A Diff inside a write transaction writes the transaction's trees out,
// early writes included: a failed early write there fails the Diff and the
// DB, as it would fail the commit.
func TestEarlyWriteErrorInDiff(t *testing.T) {
	fs := &faultFS{failWrite: 1, err: syscall.EIO}
	path, db, old := withReader(t, fs, 100)
	defer old.Rollback()
	fs.armed.Store(true)
	var diffErr error
	err := db.Update(func(tx *Tx) error {
		if err := putBig(tx.Bucket([]byte("b")), 3000, "b"); err != nil {
			return err
		}
		diffErr = Diff(old, tx, func(Change) error { return nil })
		return nil
	})
	fs.armed.Store(false)
	if !errors.Is(diffErr, syscall.EIO) || !errors.Is(diffErr, ErrWriteFailed) {
		t.Fatalf("Diff after a failed early write: %v", diffErr)
	}
	if !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("commit after a failed early write: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return nil }); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("write after failure: %v", err)
	}
	old.Rollback()
	db.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	if got := get(t, db, "b", "k000050"); !bytes.Equal(got, bigValue(50, "a")) {
		t.Fatalf("after reopen: %.10q", got)
	}
}
