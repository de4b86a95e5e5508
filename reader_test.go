package cowfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// putAll writes n keys with values of size vsize, each made of fill.
func putAll(t *testing.T, db *DB, n, vsize int, fill byte) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := b.Put([]byte(fmt.Sprintf("k%05d", i)), bytes.Repeat([]byte{fill}, vsize)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// copyOf writes tx's version with WriteTo, opens the copy and checks it.
func copyOf(t *testing.T, tx *Tx) *DB {
	t.Helper()
	var buf bytes.Buffer
	if _, err := tx.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.cow")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	if err := cp.View(func(tx *Tx) error { return tx.Check() }); err != nil {
		t.Fatalf("the copy does not check: %v", err)
	}
	return cp
}

// A reader's version lists the snapshots that existed when it began; its
// Check and WriteTo read them, so they stay readable while it lives, even
// if a snapshot is deleted meanwhile and later commits reuse free pages.
func TestReaderRetainsItsSnapshots(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{PageSize: 1024, Durability: NoSync})
	defer db.Close()
	putAll(t, db, 300, 40, 'a')
	if err := db.CreateSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	putAll(t, db, 300, 40, 'b') // the snapshot now owns pages of its own
	rd, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Rollback()
	if err := db.DeleteSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		putAll(t, db, 300, 40, byte('c'+i)) // reuses every free page
	}
	if err := rd.Check(); err != nil {
		t.Fatalf("the reader's version no longer checks: %v", err)
	}
	cp := copyOf(t, rd)
	defer cp.Close()
	err = cp.ViewSnapshot("s", func(tx *Tx) error {
		v := tx.Bucket([]byte("b")).Get([]byte("k00123"))
		if !bytes.Equal(v, bytes.Repeat([]byte{'a'}, 40)) {
			return fmt.Errorf("snapshot value %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A reader's WriteTo copies its version's free-space log. With a state too
// large for one run, a sweep takes many commits, and each commit
// supersedes runs of the previous sweep; those runs must stay pending while
// a reader that holds them lives, or its copy reads overwritten runs at
// open.
func TestReaderWriteToKeepsFreeSpaceLog(t *testing.T) {
	db := mustOpen(t, tempPath(t), &Options{PageSize: 1024, Durability: NoSync})
	defer db.Close()
	// 1,500 values of their own page each, then every other one deleted:
	// ~750 isolated free pages, a state of ~24 pages.
	putAll(t, db, 1500, 600, 'a')
	err := db.Update(func(tx *Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := 0; i < 1500; i += 2 {
			if err := b.Delete([]byte(fmt.Sprintf("k%05d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Rollback()
	// Small commits: each writes its ops and a segment of the state and
	// frees runs the reader's version needs; more commits reuse what they
	// freed.
	for i := 0; i < 300; i++ {
		err := db.Update(func(tx *Tx) error {
			return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprintf("k%05d", 1+2*(i%700))), []byte{byte(i)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cp := copyOf(t, rd)
	cp.Close()
}
