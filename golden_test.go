package cowfile

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenV1 is the reader's golden file: written by the first writer of
// format version 1, it must open, with the same contents, forever.
// goldenWriter is the writer's: the bytes the current writer produces for
// the same script. Where pages go (the allocation policy) may change
// without a format change; then `go test -run Golden -update .` rewrites
// goldenWriter alone, and goldenV1 still has to open.
const (
	goldenV1     = "testdata/format-v1.cow"
	goldenWriter = "testdata/writer-v4.cow"
)

// goldenScript writes the same database every time: nested buckets, a
// large value, deletes, a deleted bucket, sequences, over several commits.
// It applies each step to the model too.
func goldenScript(db *DB, m *mbucket) error {
	r := rand.New(rand.NewSource(42))
	val := func(n int) []byte { b := make([]byte, n); r.Read(b); return b }
	steps := []func(tx *Tx, m *mbucket) error{
		func(tx *Tx, m *mbucket) error {
			users, _ := tx.CreateBucket([]byte("users"))
			m.sub["users"] = newMBucket()
			for i := 0; i < 300; i++ {
				k, v := fmt.Sprintf("user%04d", i), val(20+r.Intn(60))
				users.Put([]byte(k), v)
				m.sub["users"].kv[k] = string(v)
			}
			return nil
		},
		func(tx *Tx, m *mbucket) error {
			prefs, _ := tx.Bucket([]byte("users")).CreateBucket([]byte("prefs"))
			deep, _ := prefs.CreateBucket([]byte("deep"))
			mp := newMBucket()
			md := newMBucket()
			m.sub["users"].sub["prefs"], mp.sub["deep"] = mp, md
			big := val(5000) // its own multi-page run at 1 KiB pages
			deep.Put([]byte("large"), big)
			md.kv["large"] = string(big)
			prefs.Put([]byte("theme"), []byte("dark"))
			mp.kv["theme"] = "dark"
			for i := 0; i < 3; i++ {
				prefs.NextSequence()
			}
			mp.seq = 3
			logs, _ := tx.CreateBucket([]byte("logs"))
			m.sub["logs"] = newMBucket()
			logs.Put([]byte("0001"), []byte("started"))
			m.sub["logs"].kv["0001"] = "started"
			tx.CreateBucket([]byte("scratch"))
			return nil
		},
		func(tx *Tx, m *mbucket) error {
			users := tx.Bucket([]byte("users"))
			for i := 0; i < 300; i += 3 {
				k := fmt.Sprintf("user%04d", i)
				users.Delete([]byte(k))
				delete(m.sub["users"].kv, k)
			}
			return tx.DeleteBucket([]byte("scratch"))
		},
		func(tx *Tx, m *mbucket) error {
			users := tx.Bucket([]byte("users"))
			for i := 1; i < 300; i += 7 {
				k, v := fmt.Sprintf("user%04d", i), val(10)
				users.Put([]byte(k), v)
				m.sub["users"].kv[k] = string(v)
			}
			return nil
		},
	}
	for _, step := range steps {
		if err := db.Update(func(tx *Tx) error { return step(tx, m) }); err != nil {
			return err
		}
	}
	return nil
}

// writeGolden runs the script into a fresh file and returns its used bytes
// (the pages below the high-water mark; the rest is preallocation).
func writeGolden(t *testing.T, path string, m *mbucket) []byte {
	db := mustOpen(t, path, &Options{PageSize: 1024, Durability: Sync})
	if err := goldenScript(db, m); err != nil {
		t.Fatal(err)
	}
	n := db.Stats().FilePages * 1024
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// The shipped golden file must open and hold what the script wrote.
func TestGoldenFileOpens(t *testing.T) {
	if *update {
		b := writeGolden(t, filepath.Join(t.TempDir(), "g.cow"), newMBucket())
		if err := os.WriteFile(goldenWriter, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	model := newMBucket()
	writeGolden(t, filepath.Join(t.TempDir(), "model.cow"), model)
	// format-v1.cow is the first writer's output; writer-v1.cow the last
	// output of format 1 (deltas and checkpoints), writer-v2 and writer-v3 the
	// last of formats 2 and 3; goldenWriter today's.
	for _, golden := range []string{goldenV1, "testdata/writer-v1.cow", "testdata/writer-v2.cow", "testdata/writer-v3.cow", goldenWriter} {
		img, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "golden.cow")
		os.WriteFile(path, img, 0o600)
		db := mustOpen(t, path, &Options{ReadOnly: true})
		compareDB(t, db, model)
		if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
			t.Errorf("%s: %v", golden, err)
		}
		db.Close()
	}
}

// The writer's output for the same script must not change silently: a
// change in the bytes of a page is a format change and needs a version
// bump (and a new golden file next to the old ones, which must still
// open); a change of placement alone (docs/FORMAT.md unchanged) is
// recorded by rewriting goldenWriter.
func TestWriterOutputUnchanged(t *testing.T) {
	want, err := os.ReadFile(goldenWriter)
	if err != nil {
		t.Fatal(err)
	}
	got := writeGolden(t, filepath.Join(t.TempDir(), "g.cow"), newMBucket())
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the writer's bytes changed (first difference at byte %d, page %d; %d vs %d bytes): "+
			"a format change needs a meta.Version bump and a new golden file (keep %s); "+
			"a placement change alone is recorded with -update", i, i/1024, len(got), len(want), goldenV1)
	}
}

// Files of older formats stay writable: a commit into one mixes pages with
// heads (format 3) with the older pages it leaves alone, and both read
// back, before and after reopening.
func TestOldFormatsStayWritable(t *testing.T) {
	for _, golden := range []string{goldenV1, "testdata/writer-v1.cow", "testdata/writer-v2.cow", "testdata/writer-v3.cow"} {
		model := newMBucket()
		writeGolden(t, filepath.Join(t.TempDir(), "model.cow"), model)
		img, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "old.cow")
		os.WriteFile(path, img, 0o600)
		db := mustOpen(t, path, nil)
		users := model.sub["users"]
		err = db.Update(func(tx *Tx) error {
			b := tx.Bucket([]byte("users"))
			// Change one end of the bucket only, so later leaves keep
			// their old layout.
			for i := 0; i < 40; i++ {
				k := fmt.Sprintf("user%04d", i)
				if i%2 == 0 {
					users.kv[k] = "changed"
					if err := b.Put([]byte(k), []byte("changed")); err != nil {
						return err
					}
				} else {
					delete(users.kv, k)
					if err := b.Delete([]byte(k)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", golden, err)
		}
		compareDB(t, db, model)
		db.Close()
		db = mustOpen(t, path, nil)
		compareDB(t, db, model)
		db.Close()
	}
}
