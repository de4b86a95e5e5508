package cowfile

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cowfile/cowfile/pager/page"
)

func TestSnapshotBasics(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, nil)
	put(t, db, "b", "k", "v1")
	if err := db.CreateSnapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSnapshot("s1"); !errors.Is(err, ErrSnapshotExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := db.DeleteSnapshot("nope"); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := db.ViewSnapshot("nope", func(*Tx) error { return nil }); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("view missing: %v", err)
	}
	put(t, db, "b", "k", "v2")
	db.Close()
	db = mustOpen(t, path, nil) // snapshots survive reopen
	defer db.Close()
	err := db.ViewSnapshot("s1", func(tx *Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("k")); string(v) != "v1" {
			t.Fatalf("snapshot sees %q", v)
		}
		if tx.Writable() {
			t.Fatal("snapshot tx is writable")
		}
		if _, err := tx.CreateBucket([]byte("x")); !errors.Is(err, ErrTxNotWritable) {
			t.Fatalf("write in snapshot: %v", err)
		}
		return tx.Check()
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := db.Snapshots()
	if err != nil || len(list) != 1 || list[0].Name != "s1" || list[0].Created.IsZero() {
		t.Fatalf("Snapshots() = %+v, %v", list, err)
	}
	if err := db.Restore("s1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, "b", "k"); string(got) != "v1" {
		t.Fatalf("after restore: %q", got)
	}
	if err := db.DeleteSnapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// copyModel deep-copies a model version.
func snapModel(m *mbucket) *mbucket { return m.clone() }

// TestSnapshotModel runs random data changes interleaved with snapshot
// create, delete, restore, view and diff, against a model that keeps a copy
// of every pinned version; after each step every live snapshot must equal
// its copy and Check (with full page accounting) must be clean.
func TestSnapshotModel(t *testing.T) {
	for _, ps := range []int{1024, 4096} {
		for seed := 1; seed <= 2; seed++ {
			t.Run(fmt.Sprintf("ps%d/seed%d", ps, seed), func(t *testing.T) {
				r := rand.New(rand.NewSource(int64(seed) * 77))
				mr := &modelRun{t: t, r: r, ps: ps}
				path := tempPath(t)
				opts := &Options{PageSize: ps, Durability: NoSync}
				db := mustOpen(t, path, opts)
				defer func() { db.Close() }()
				current := newMBucket()
				snaps := map[string]*mbucket{}
				next, restores, diffs := 0, 0, 0
				for step := 0; step < 160; step++ {
					switch op := r.Intn(20); {
					case op < 3:
						name := fmt.Sprintf("s%d", next)
						next++
						if err := db.CreateSnapshot(name); err != nil {
							t.Fatal(err)
						}
						snaps[name] = snapModel(current)
					case op < 5 && len(snaps) > 0:
						name := pickName(r, snaps)
						if err := db.DeleteSnapshot(name); err != nil {
							t.Fatal(err)
						}
						delete(snaps, name)
					case op < 7 && len(snaps) > 0:
						name := pickName(r, snaps)
						if err := db.Restore(name); err != nil {
							t.Fatalf("restore %s: %v", name, err)
						}
						current = snapModel(snaps[name])
						restores++
					case op < 8 && len(snaps) > 0:
						name := pickName(r, snaps)
						checkDiff(t, db, name, snaps[name], current)
						diffs++
					case op < 9:
						db.Close()
						db = mustOpen(t, path, opts)
					default:
						work := current.clone()
						err := db.Update(func(tx *Tx) error {
							for i := 0; i < 1+r.Intn(30); i++ {
								mr.step(tx, work)
							}
							return nil
						})
						if err != nil {
							t.Fatal(err)
						}
						current = work
					}
					compareDB(t, db, current)
					for name, m := range snaps {
						err := db.ViewSnapshot(name, func(tx *Tx) error {
							for bname, bm := range m.sub {
								b := tx.Bucket([]byte(bname))
								if b == nil {
									t.Fatalf("snapshot %s: missing bucket %s", name, bname)
								}
								compareBucket(t, name+":"+bname, b, bm)
							}
							return tx.Check()
						})
						if err != nil {
							t.Fatalf("step %d: snapshot %s: %v", step, name, err)
						}
					}
				}
				t.Logf("%d snapshots made, %d restores, %d diffs, %d alive at the end", next, restores, diffs, len(snaps))
				if restores < 3 || diffs < 3 {
					t.Fatalf("workload too weak: %d restores, %d diffs", restores, diffs)
				}
			})
		}
	}
}

func pickName(r *rand.Rand, m map[string]*mbucket) string {
	names := sortedNames(m)
	return names[r.Intn(len(names))]
}

// flatten lists a model as "path key=value" lines, buckets as "path/".
func flatten(prefix string, m *mbucket, out map[string]string) {
	for k, v := range m.kv {
		out[prefix+"\x00"+k] = v
	}
	for name, sub := range m.sub {
		out[prefix+"/"+name] = "<bucket>"
		flatten(prefix+"/"+name, sub, out)
	}
}

// checkDiff compares Diff(snapshot, current) with the model's difference.
func checkDiff(t *testing.T, db *DB, name string, from, to *mbucket) {
	t.Helper()
	a, b := map[string]string{}, map[string]string{}
	flatten("", from, a)
	flatten("", to, b)
	var want []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			want = append(want, "-"+k)
		} else if w != v {
			want = append(want, "~"+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			want = append(want, "+"+k)
		}
	}
	var got []string
	err := db.ViewSnapshot(name, func(old *Tx) error {
		return db.View(func(cur *Tx) error {
			return Diff(old, cur, func(c Change) error {
				var path string
				for _, p := range c.Bucket {
					path += "/" + string(p)
				}
				key := path
				if c.Key != nil {
					key = path + "\x00" + string(c.Key)
				}
				switch {
				case c.Old == nil:
					got = append(got, "+"+key)
				case c.New == nil:
					got = append(got, "-"+key)
				default:
					got = append(got, "~"+key)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Diff(%s, current):\n got  %q\n want %q", name, got, want)
	}
}

// Pages written and freed between two snapshots must be reused while both
// snapshots live: the lifespan rule, not an oldest-pin rule.
func TestPagesBetweenSnapshotsAreReused(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	val := bytes.Repeat([]byte("x"), 500)
	churn := func(rounds int) {
		for i := 0; i < rounds; i++ {
			db.Update(func(tx *Tx) error {
				b, _ := tx.CreateBucketIfNotExists([]byte("b"))
				for k := 0; k < 100; k++ {
					b.Put([]byte(fmt.Sprintf("k%03d", k)), val)
				}
				return nil
			})
		}
	}
	churn(1)
	db.CreateSnapshot("old")
	churn(50)
	db.CreateSnapshot("new")
	before := db.Stats().FilePages
	churn(300)
	after := db.Stats().FilePages
	if after > before+60 {
		t.Fatalf("file grew from %d to %d pages with two snapshots alive: pages between them not reused", before, after)
	}
	list, _ := db.Snapshots()
	for _, s := range list {
		if s.Pages == 0 {
			t.Fatalf("snapshot %s pins no pages of its own", s.Name)
		}
	}
	// Deleting a snapshot frees the pages it reported (plus the few the
	// deleting commit itself replaced).
	want := list[0].Pages
	if err := db.DeleteSnapshot(list[0].Name); err != nil {
		t.Fatal(err)
	}
	before2 := db.Stats().FreePages
	db.Update(func(tx *Tx) error { return nil }) // a write transaction releases
	gained := db.Stats().FreePages - before2
	if gained < want || gained > want+10 {
		t.Fatalf("deleting a snapshot that pinned %d pages freed %d", want, gained)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// 1000 commits of churn with 3 snapshots alive: the file stays within the
// current live data plus the snapshots' unique pages plus a constant, and
// the share of small holes the allocator may leave.
func TestSpaceWithSnapshots(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	r := rand.New(rand.NewSource(4))
	for c := 0; c < 1000; c++ {
		if c == 100 || c == 400 || c == 700 {
			if err := db.CreateSnapshot(fmt.Sprintf("s%d", c)); err != nil {
				t.Fatal(err)
			}
		}
		err := db.Update(func(tx *Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("b"))
			for i := 0; i < 20; i++ {
				v := make([]byte, 50+r.Intn(100))
				if err := b.Put([]byte(fmt.Sprintf("k%04d", r.Intn(2000))), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var live int
	db.View(func(tx *Tx) error {
		w := walkerFor(tx.s)
		w.Visit = func(_ page.Ref, run []byte, _ int) error { live += len(run) / tx.s.ps; return nil }
		return w.Walk(tx.meta.Root)
	})
	list, _ := db.Snapshots()
	unique := 0
	for _, s := range list {
		unique += s.Pages
	}
	st := db.Stats()
	// The allocator may leave up to a quarter of the file in small holes
	// rather than scatter a commit over them (freelist.minHole).
	limit := (uint64(live+unique) + 200) * 4 / 3
	t.Logf("file %d pages: live %d, snapshots' own %d, free %d, pending %d", st.FilePages, live, unique, st.FreePages, st.PendingPages)
	if st.FilePages > limit {
		t.Fatalf("file of %d pages, want <= %d", st.FilePages, limit)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// Diff of a 1M-key bucket with 10 changed keys reads only the changed
// paths.
func TestDiffCost(t *testing.T) {
	n := 1 << 20
	if testing.Short() {
		n = 1 << 17
	}
	db := loadBench(t, n)
	defer db.Close()
	db.CreateSnapshot("before")
	db.Update(func(tx *Tx) error {
		b := tx.Bucket([]byte("bench"))
		for i := 0; i < 10; i++ {
			b.Put(benchKey(uint64(i*(n/10)+3)), []byte("changed"))
		}
		return nil
	})
	changes, reads := 0, 0
	err := db.ViewSnapshot("before", func(old *Tx) error {
		return db.View(func(cur *Tx) error {
			r0, r1 := old.s.reads, cur.s.reads
			err := Diff(old, cur, func(c Change) error { changes++; return nil })
			reads = old.s.reads - r0 + cur.s.reads - r1
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	t.Logf("Diff of %d keys (%d pages) with 10 changed keys: %d changes, %d page reads", n, st.FilePages, changes, reads)
	if changes != 10 {
		t.Fatalf("%d changes, want 10", changes)
	}
	if reads > 150 {
		t.Fatalf("Diff read %d pages for 10 changes", reads)
	}
}

func TestKeepVersions(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync, KeepVersions: 3})
	defer db.Close()
	for i := 1; i <= 6; i++ {
		put(t, db, "b", "k", fmt.Sprint(i))
	}
	list, _ := db.Snapshots()
	if len(list) != 3 {
		t.Fatalf("%d automatic versions, want 3: %+v", len(list), list)
	}
	for i, s := range list {
		err := db.ViewSnapshot(s.Name, func(tx *Tx) error {
			if v := tx.Bucket([]byte("b")).Get([]byte("k")); string(v) != fmt.Sprint(4+i) {
				t.Fatalf("%s sees %q, want %d", s.Name, v, 4+i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// Stats and Snapshots are called from anywhere, inside Update too: they
// must not wait for the write transaction.
func TestStatsInsideUpdateDoesNotDeadlock(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	put(t, db, "b", "k", "v")
	db.CreateSnapshot("s")
	done := make(chan error, 1)
	go func() {
		done <- db.Update(func(tx *Tx) error {
			st := db.Stats()
			list, err := db.Snapshots()
			if err == nil && (len(list) != 1 || st.TxID == 0) {
				err = fmt.Errorf("stats %+v, snapshots %+v", st, list)
			}
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stats or Snapshots inside Update deadlocked")
	}
}
