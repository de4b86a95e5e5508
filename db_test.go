package cowfile

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowfile/cowfile/pager/page"
)

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "db.cow") }

func mustOpen(t testing.TB, path string, o *Options) *DB {
	t.Helper()
	db, err := Open(path, o)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return db
}

func put(t testing.TB, db *DB, bucket, key, value string) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
}

func get(t testing.TB, db *DB, bucket, key string) (v []byte) {
	t.Helper()
	err := db.View(func(tx *Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			if x := b.Get([]byte(key)); x != nil {
				v = append([]byte{}, x...)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return v
}

func TestPutGetReopen(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, nil)
	put(t, db, "b", "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi.Mode(), err)
	}
	db = mustOpen(t, path, nil)
	defer db.Close()
	if got := get(t, db, "b", "k"); string(got) != "v" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestMisuse(t *testing.T) {
	db := mustOpen(t, tempPath(t), nil)
	defer db.Close()
	tx, _ := db.Begin(false)
	if _, err := tx.CreateBucket([]byte("x")); !errors.Is(err, ErrTxNotWritable) {
		t.Fatalf("create in read tx: %v", err)
	}
	if err := tx.Commit(); !errors.Is(err, ErrTxNotWritable) {
		t.Fatalf("commit read tx: %v", err)
	}
	tx.Rollback()
	if err := tx.Rollback(); !errors.Is(err, ErrTxClosed) {
		t.Fatalf("second rollback: %v", err)
	}
	wtx, _ := db.Begin(true)
	b, _ := wtx.CreateBucket([]byte("b"))
	if _, err := wtx.CreateBucket([]byte("b")); !errors.Is(err, ErrBucketExists) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := wtx.CreateBucket(nil); !errors.Is(err, ErrBucketNameRequired) {
		t.Fatalf("empty name: %v", err)
	}
	if err := wtx.DeleteBucket([]byte("nope")); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := b.Put(nil, []byte("v")); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("empty key: %v", err)
	}
	if err := b.Put(make([]byte, MaxKeySize(4096)+1), nil); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	b.CreateBucket([]byte("sub"))
	if err := b.Put([]byte("sub"), []byte("v")); !errors.Is(err, ErrIncompatibleValue) {
		t.Fatalf("put over bucket: %v", err)
	}
	if err := b.Delete([]byte("sub")); !errors.Is(err, ErrIncompatibleValue) {
		t.Fatalf("delete bucket as key: %v", err)
	}
	b.Put([]byte("val"), []byte("v"))
	if _, err := b.CreateBucket([]byte("val")); !errors.Is(err, ErrIncompatibleValue) {
		t.Fatalf("bucket over value: %v", err)
	}
	if err := b.DeleteBucket([]byte("val")); !errors.Is(err, ErrIncompatibleValue) {
		t.Fatalf("delete value as bucket: %v", err)
	}
	if err := b.Delete([]byte("missing")); err != nil {
		t.Fatalf("delete missing key: %v", err)
	}
	if err := wtx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := wtx.Commit(); !errors.Is(err, ErrTxClosed) {
		t.Fatalf("commit twice: %v", err)
	}
	if err := b.Put([]byte("k"), nil); !errors.Is(err, ErrTxClosed) {
		t.Fatalf("put after commit: %v", err)
	}
	db.Close()
	if _, err := db.Begin(false); !errors.Is(err, ErrDatabaseNotOpen) {
		t.Fatalf("begin after close: %v", err)
	}
}

func TestReadOnlyAndLock(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, nil)
	put(t, db, "b", "k", "v")
	if _, err := Open(path, &Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second writer: %v", err)
	}
	db.Close()
	r1 := mustOpen(t, path, &Options{ReadOnly: true})
	r2 := mustOpen(t, path, &Options{ReadOnly: true})
	defer r1.Close()
	defer r2.Close()
	if err := r1.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrDatabaseReadOnly) {
		t.Fatalf("update on read-only: %v", err)
	}
	if got := get(t, r2, "b", "k"); string(got) != "v" {
		t.Fatalf("read-only get: %q", got)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cow")
	db := mustOpen(t, good, &Options{PageSize: 1024})
	put(t, db, "b", "k", "v")
	db.Close()
	img, _ := os.ReadFile(good)
	r := rand.New(rand.NewSource(1))
	random := make([]byte, 64<<10)
	r.Read(random)
	badMagic := append([]byte(nil), img...)
	badMagic[page.HeaderSize] ^= 0xff
	badMagic[1024+page.HeaderSize] ^= 0xff
	cases := map[string][]byte{
		"empty":     {},
		"short":     img[:100],
		"truncated": img[:2*1024+100],
		"random":    random,
		"zeros":     make([]byte, 8192),
		"bad magic": badMagic,
		"one meta":  img[:1024],
		"text":      []byte("hello, this is not a database\n"),
	}
	for name, b := range cases {
		path := filepath.Join(dir, name+".cow")
		os.WriteFile(path, b, 0o600)
		for _, ro := range []bool{false, true} {
			db, err := Open(path, &Options{ReadOnly: ro})
			if err == nil {
				// A file that opens must read back what it holds or report
				// corruption; it must never hand out wrong data.
				// The only acceptable open is a reported fallback to the
				// older (empty) commit, which must then check clean.
				verr := db.View(func(tx *Tx) error { return tx.Check() })
				st := db.Stats()
				db.Close()
				if name != "truncated" || verr != nil || !st.FellBack {
					t.Errorf("%s (ro=%v): opened (fallback %v), check = %v", name, ro, st.FellBack, verr)
				}
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrIncompatible) {
				t.Errorf("%s (ro=%v): error %v does not wrap ErrCorrupt", name, ro, err)
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "x.cow"), &Options{PageSize: 3000}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad page size: %v", err)
	}
}

func TestUnsupportedVersion(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, &Options{PageSize: 1024})
	db.Close()
	img, _ := os.ReadFile(path)
	for slot := 0; slot < 2; slot++ {
		p := img[slot*1024 : (slot+1)*1024]
		p[page.HeaderSize+4] = 99 // version field
		page.Seal(p)
	}
	os.WriteFile(path, img, 0o600)
	if _, err := Open(path, nil); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("version 99: %v", err)
	}
}

// Rewriting the same data over and over must reuse freed pages.
func TestSpaceReuse(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	val := bytes.Repeat([]byte("x"), 1000)
	for round := 0; round < 400; round++ {
		err := db.Update(func(tx *Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("b"))
			for i := 0; i < 200; i++ { // 200 KB
				if err := b.Put([]byte(fmt.Sprintf("key%03d", i)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st := db.Stats()
	// 200 KB of payload is ~60 pages; three versions' worth is the most that
	// can be pinned (current, previous, in flight).
	if st.FilePages > 250 {
		t.Fatalf("file grew to %d pages rewriting 200 KB", st.FilePages)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

// A reader's snapshot must stay the same while a writer changes everything.
func TestConcurrentReadersSeeSnapshots(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	const keys = 200
	write := func(gen int) error {
		return db.Update(func(tx *Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("b"))
			for i := 0; i < keys; i++ {
				if err := b.Put([]byte(fmt.Sprintf("%04d", i)), []byte(fmt.Sprintf("gen%06d", gen))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := db.View(func(tx *Tx) error {
					var first []byte
					n := 0
					err := tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error {
						if first == nil {
							first = append([]byte{}, v...)
						} else if !bytes.Equal(v, first) {
							return fmt.Errorf("tx %d: mixed versions %q and %q", tx.ID(), first, v)
						}
						n++
						return nil
					})
					if err == nil && n != keys {
						err = fmt.Errorf("saw %d keys", n)
					}
					return err
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for gen := 1; gen <= 300; gen++ {
		if err := write(gen); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// bbolt deadlocks when a read transaction is open in the goroutine that
// runs an Update growing the file; cowfile must not.
func TestGrowthWithOpenReaderDoesNotDeadlock(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync, MmapSize: 1 << 16})
	defer db.Close()
	put(t, db, "b", "k", "old")
	rtx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.Update(func(tx *Tx) error {
			b := tx.Bucket([]byte("b"))
			for i := 0; i < 5000; i++ { // several MiB: far past the 64 KiB map
				if err := b.Put([]byte(fmt.Sprintf("k%05d", i)), make([]byte, 1000)); err != nil {
					return err
				}
			}
			return b.Put([]byte("k"), []byte("new"))
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Update blocked by an open reader")
	}
	if v := rtx.Bucket([]byte("b")).Get([]byte("k")); string(v) != "old" {
		t.Fatalf("old reader sees %q", v)
	}
	rtx.Rollback()
	if got := get(t, db, "b", "k"); string(got) != "new" {
		t.Fatalf("new reader sees %q", got)
	}
}

func TestLargeValues(t *testing.T) {
	size := 64 << 20
	if os.Getenv("COWFILE_LONG") != "" {
		size = 1 << 30
	}
	path := tempPath(t)
	db := mustOpen(t, path, &Options{Durability: NoSync})
	val := make([]byte, size)
	rand.New(rand.NewSource(5)).Read(val)
	put(t, db, "b", "big", string(val))
	db.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	if got := get(t, db, "b", "big"); !bytes.Equal(got, val) {
		t.Fatalf("large value of %d bytes differs after reopen (got %d bytes)", size, len(got))
	}
	err := db.Update(func(tx *Tx) error { return tx.Bucket([]byte("b")).Delete([]byte("big")) })
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

func TestZeroAllocGetAndCursor(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{Durability: NoSync})
	defer db.Close()
	db.Update(func(tx *Tx) error {
		b, _ := tx.CreateBucket([]byte("b"))
		for i := 0; i < 10000; i++ {
			b.Put([]byte(fmt.Sprintf("%08d", i)), []byte("value"))
		}
		return nil
	})
	tx, _ := db.Begin(false)
	defer tx.Rollback()
	b := tx.Bucket([]byte("b"))
	key := []byte("00004567")
	if n := testing.AllocsPerRun(1000, func() { b.Get(key) }); n != 0 {
		t.Errorf("Get: %v allocations", n)
	}
	c := b.Cursor()
	c.First()
	if n := testing.AllocsPerRun(1000, func() {
		if k, _ := c.Next(); k == nil {
			c.First()
		}
	}); n != 0 {
		t.Errorf("Cursor.Next: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Seek(key) }); n != 0 {
		t.Errorf("Cursor.Seek: %v allocations", n)
	}
}

func TestWriteTo(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, filepath.Join(dir, "src.cow"), &Options{Durability: NoSync})
	defer db.Close()
	for i := 0; i < 50; i++ {
		put(t, db, fmt.Sprintf("b%d", i%3), fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	var buf bytes.Buffer
	err := db.View(func(tx *Tx) error {
		put(t, db, "b0", "k0", "changed after the backup began")
		_, err := tx.WriteTo(&buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "copy.cow")
	os.WriteFile(dst, buf.Bytes(), 0o600)
	cp := mustOpen(t, dst, nil)
	defer cp.Close()
	if st := cp.Stats(); st.FellBack {
		t.Fatalf("backup opened with a fallback: %s", st.FallbackReason)
	}
	if got := get(t, cp, "b0", "k0"); string(got) != "v0" {
		t.Fatalf("backup has %q, want the value at the backup's start", got)
	}
	if got := get(t, cp, "b2", "k47"); string(got) != "v47" {
		t.Fatalf("backup has %q", got)
	}
	if err := cp.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
}

func TestBatch(t *testing.T) {
	db := mustOpen(t, tempPath(t), nil)
	defer db.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- db.Batch(func(tx *Tx) error {
				if i == 13 {
					return errors.New("unlucky")
				}
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				return b.Put([]byte(fmt.Sprintf("%03d", i)), []byte("v"))
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d Batch calls failed, want 1", failed)
	}
	n := 0
	db.View(func(tx *Tx) error {
		return tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error { n++; return nil })
	})
	if n != 99 {
		t.Fatalf("%d keys after batch, want 99", n)
	}
	if st := db.Stats(); st.Commits >= 99 {
		t.Fatalf("%d commits for 100 batched calls: not batched", st.Commits)
	}
}

// Rot in the pages of the last commit makes Open fall back to the previous
// commit, and say so.
// twoCommits writes "first" then "second" under b/k in a new file at 1
// KiB pages and returns the open DB and the leaf the last commit wrote.
func twoCommits(t *testing.T, path string) (*DB, page.Ref) {
	t.Helper()
	db := mustOpen(t, path, &Options{PageSize: 1024})
	put(t, db, "b", "k", "first")
	put(t, db, "b", "k", "second")
	var leaf page.Ref
	db.View(func(tx *Tx) error {
		leaf = tx.Bucket([]byte("b")).tree.Root()
		return nil
	})
	return db, leaf
}

func TestFallbackIsReported(t *testing.T) {
	path := tempPath(t)
	db, leaf := twoCommits(t, path)
	// The file as a power loss right after the commit leaves it (before
	// Close writes a clean meta), with the last commit's leaf torn.
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	img[int(leaf.ID)*1024+200] ^= 0xff
	path = tempPath(t)
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, nil)
	defer db.Close()
	st := db.Stats()
	if !st.FellBack || st.FallbackReason == "" {
		t.Fatalf("no fallback reported: %+v", st)
	}
	if got := get(t, db, "b", "k"); string(got) != "first" {
		t.Fatalf("after fallback: %q", got)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatal(err)
	}
	put(t, db, "b", "k", "third") // the next commit overwrites the bad slot
	if got := get(t, db, "b", "k"); string(got) != "third" {
		t.Fatalf("after fallback and commit: %q", got)
	}
}

// After a clean Close nothing is in flight: damage to the last commit's
// pages is rot, which reads and Check report naming the page, not a torn
// commit to fall back from quietly.
func TestCleanCloseSurfacesRot(t *testing.T) {
	path := tempPath(t)
	db, leaf := twoCommits(t, path)
	last := db.Stats().TxID
	db.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xee}, int64(leaf.ID)*1024+200)
	f.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	if st := db.Stats(); st.FellBack || st.TxID < last {
		t.Fatalf("after a clean Close: opened tx %d (last commit %d), fallback %v (%s)", st.TxID, last, st.FellBack, st.FallbackReason)
	}
	want := fmt.Sprintf("page %d:", leaf.ID)
	err := db.View(func(tx *Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("k")); v != nil {
			t.Fatalf("read %q from a damaged leaf", v)
		}
		return nil
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("read of the damaged leaf: %v", err)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check: %v", err)
	}
}

// A corrupt page read through Get must surface as an error from View.
func TestCorruptReadIsReported(t *testing.T) {
	path := tempPath(t)
	db := mustOpen(t, path, &Options{PageSize: 1024})
	for i := 0; i < 3; i++ {
		put(t, db, "b", fmt.Sprintf("k%d", i), "v")
	}
	put(t, db, "other", "x", "y") // the last commit does not touch bucket b
	var leaf page.Ref
	db.View(func(tx *Tx) error { leaf = tx.Bucket([]byte("b")).tree.Root(); return nil })
	db.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, int64(leaf.ID)*1024+300)
	f.Close()
	db = mustOpen(t, path, nil)
	defer db.Close()
	err := db.View(func(tx *Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("k1")); v != nil {
			t.Errorf("Get on a corrupt page returned %q", v)
		}
		return nil
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("View after a corrupt read: %v", err)
	}
	if err := db.View(func(tx *Tx) error { return tx.Check() }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check: %v", err)
	}
}
