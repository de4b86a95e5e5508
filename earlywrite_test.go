package cowfile

import (
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
		for i := 0; i < n; i++ {
			if err := b.Put([]byte(fmt.Sprintf("k%06d", i)), bigValue(i, tag)); err != nil {
				return err
			}
		}
		return nil
	})
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
			fs.mu.Lock()
			evs := append([]recEvent(nil), fs.events[from:]...)
			fs.mu.Unlock()
			ps := int64(db.ps)

			hints, metaAt, syncs := 0, -1, 0
			for i, e := range evs {
				switch {
				case e.hint:
					hints++
					// The hint covers the batch written just before it.
					if i == 0 || evs[i-1].data == nil {
						t.Fatalf("hint %d does not follow a write", i)
					}
					w := evs[i-1]
					if w.off < e.off || w.off+int64(len(w.data)) > e.off+e.size {
						t.Fatalf("hint [%d, +%d) does not cover the write before it [%d, +%d)",
							e.off, e.size, w.off, len(w.data))
					}
				case e.sync:
					syncs++
				case e.data != nil && e.off < 2*ps:
					if metaAt >= 0 {
						t.Fatalf("two meta writes, events %d and %d", metaAt, i)
					}
					metaAt = i
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
