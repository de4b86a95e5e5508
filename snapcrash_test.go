package cowfile

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cowfile/cowfile/pager"
)

// A compact crash test of the snapshot operations (the full harness, with
// sector-level tearing and fault injection, is in fuzz/): record every write
// and sync of a workload that creates, restores and deletes snapshots, then
// for every crash point rebuild the files a crash could leave and check
// that each opens, passes Check, and holds exactly the last acknowledged
// state or the one in flight — data and snapshots alike.

type recEvent struct {
	sync bool
	hint bool // a writeback hint over [off, off+size)
	off  int64
	data []byte // nil with size >= 0 (and not a hint): a truncate
	size int64
}

type recordFS struct {
	mu      sync.Mutex
	events  []recEvent
	hintErr error // returned by every writeback hint when set
}

func (r *recordFS) add(e recEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// since returns a copy of the events from the n-th on.
func (r *recordFS) since(n int) []recEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recEvent(nil), r.events[n:]...)
}

func (r *recordFS) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recordFS) OpenFile(name string, flag int, perm os.FileMode) (pager.File, error) {
	f, err := pager.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &recordFile{File: f, r: r}, nil
}
func (r *recordFS) Rename(a, b string) error { return pager.OSFS.Rename(a, b) }
func (r *recordFS) Remove(name string) error { return pager.OSFS.Remove(name) }
func (r *recordFS) SyncDir(dir string) error { return pager.OSFS.SyncDir(dir) }

type recordFile struct {
	pager.File
	r *recordFS
}

func (f *recordFile) WriteAt(p []byte, off int64) (int, error) {
	f.r.add(recEvent{off: off, data: append([]byte(nil), p...)})
	return f.File.WriteAt(p, off)
}

func (f *recordFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
	}
	f.r.add(recEvent{off: off, data: all})
	return f.File.WritevAt(bufs, off)
}

func (f *recordFile) Truncate(size int64) error {
	f.r.add(recEvent{size: size})
	return f.File.Truncate(size)
}

func (f *recordFile) StartWriteback(off, n int64) error {
	f.r.add(recEvent{hint: true, off: off, size: n})
	f.r.mu.Lock()
	err := f.r.hintErr
	f.r.mu.Unlock()
	if err != nil {
		return err
	}
	if ws, ok := f.File.(pager.WritebackStarter); ok {
		return ws.StartWriteback(off, n)
	}
	return nil
}

func (f *recordFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.r.add(recEvent{sync: true})
	}
	return err
}

// apply plays events onto img.
func applyEvents(img []byte, evs []recEvent) []byte {
	for _, e := range evs {
		switch {
		case e.sync, e.hint:
		case e.data == nil:
			if int64(len(img)) > e.size {
				img = img[:e.size]
			} else {
				img = append(img, make([]byte, e.size-int64(len(img)))...)
			}
		default:
			if end := e.off + int64(len(e.data)); end > int64(len(img)) {
				img = append(img, make([]byte, end-int64(len(img)))...)
			}
			copy(img[e.off:], e.data)
		}
	}
	return img
}

// versionDump is the whole observable state: data and snapshots.
func versionDump(t *testing.T, db *DB) string {
	var sb strings.Builder
	dumpView := func(tx *Tx) error {
		return tx.ForEach(func(name []byte, b *Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&sb, "%s/%s=%x\n", name, k, v)
				return nil
			})
		})
	}
	if err := db.View(dumpView); err != nil {
		t.Fatalf("dump: %v", err)
	}
	list, err := db.Snapshots()
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	for _, s := range list {
		fmt.Fprintf(&sb, "snapshot %s:\n", s.Name)
		if err := db.ViewSnapshot(s.Name, dumpView); err != nil {
			t.Fatalf("view %s: %v", s.Name, err)
		}
	}
	return sb.String()
}

func TestSnapshotCrashes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.cow")
	opts := &Options{PageSize: 1024}
	db := mustOpen(t, path, opts)
	db.Close()
	base, _ := os.ReadFile(path)

	rec := &recordFS{}
	ro := *opts
	ro.FS = rec
	db = mustOpen(t, path, &ro)
	putN := func(bucket string, from, n int, val string) func() error {
		return func() error {
			return db.Update(func(tx *Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte(bucket))
				if err != nil {
					return err
				}
				for i := from; i < from+n; i++ {
					if err := b.Put([]byte(fmt.Sprintf("k%04d", i)), []byte(val)); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	ops := []func() error{
		putN("a", 0, 200, "one"),
		func() error { return db.CreateSnapshot("s1") },
		putN("a", 100, 200, "two"),
		func() error { return db.Update(func(tx *Tx) error { return tx.DeleteBucket([]byte("a")) }) },
		putN("b", 0, 50, "three"),
		func() error { return db.CreateSnapshot("s2") },
		func() error { return db.Restore("s1") },
		putN("a", 0, 30, "four"),
		func() error { return db.Restore("s2") },
		func() error { return db.DeleteSnapshot("s1") },
		func() error { return db.Restore("s2") },
	}
	// states[i] is the state after i acknowledged operations; ackAt[i] the
	// number of events recorded when operation i-1 returned.
	states := []string{versionDump(t, db)}
	ackAt := []int{rec.count()}
	for i, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		states = append(states, versionDump(t, db))
		ackAt = append(ackAt, rec.count())
	}
	db.Close()

	evs := rec.events
	images, crashes := 0, 0
	for cut := 0; cut <= len(evs); cut++ {
		// The operation in flight at this crash point, and the state of the
		// last one acknowledged.
		op := sort.SearchInts(ackAt, cut)
		if op < len(ackAt) && ackAt[op] == cut {
			op++ // everything up to and including op-1 returned
		}
		acked := states[op-1]
		inflight := acked
		if op < len(states) {
			inflight = states[op]
		}
		lastSync := 0
		for i := 0; i < cut; i++ {
			if evs[i].sync {
				lastSync = i + 1
			}
		}
		durable := applyEvents(append([]byte(nil), base...), evs[:lastSync])
		pending := evs[lastSync:cut]
		variants := [][]recEvent{pending, nil}
		for i := range pending {
			if len(pending) <= 12 {
				v := append(append([]recEvent(nil), pending[:i]...), pending[i+1:]...)
				variants = append(variants, v)
			}
			if d := pending[i].data; d != nil && len(d) > 512 {
				torn := append([]recEvent(nil), pending[:i+1]...)
				torn[i].data = d[:len(d)/2/512*512+512]
				variants = append(variants, torn)
			}
		}
		crashes++
		for vi, v := range variants {
			img := applyEvents(append([]byte(nil), durable...), v)
			p := filepath.Join(dir, "crash.cow")
			os.WriteFile(p, img, 0o600)
			images++
			cdb, err := Open(p, opts)
			if err != nil {
				t.Fatalf("crash point %d/%d (op %d), variant %d: open: %v", cut, len(evs), op, vi, err)
			}
			got := versionDump(t, cdb)
			if got != acked && got != inflight {
				t.Fatalf("crash point %d (op %d), variant %d: recovered state is neither the acknowledged nor the in-flight one:\n%s", cut, op, vi, got)
			}
			if err := cdb.View(func(tx *Tx) error { return tx.Check() }); err != nil {
				t.Fatalf("crash point %d (op %d), variant %d: check: %v", cut, op, vi, err)
			}
			// Recovery must be repeatable: write again, reopen.
			if err := cdb.Update(func(tx *Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("after"))
				if err == nil {
					err = b.Put([]byte("k"), []byte("v"))
				}
				return err
			}); err != nil {
				t.Fatalf("crash point %d, variant %d: write after recovery: %v", cut, vi, err)
			}
			cdb.Close()
			cdb, err = Open(p, opts)
			if err != nil {
				t.Fatalf("crash point %d, variant %d: second open: %v", cut, vi, err)
			}
			cdb.Close()
		}
	}
	t.Logf("%d operations, %d events, %d crash points, %d images verified", len(ops), len(evs), crashes, images)
}
