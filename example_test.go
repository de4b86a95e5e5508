package cowfile_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cowfile/cowfile"
)

func Example() {
	dir, _ := os.MkdirTemp("", "cowfile-example")
	defer os.RemoveAll(dir)

	db, err := cowfile.Open(filepath.Join(dir, "app.cow"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// A write transaction: committed, durably, when the function returns nil.
	err = db.Update(func(tx *cowfile.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("animals"))
		if err != nil {
			return err
		}
		b.Put([]byte("cow"), []byte("moo"))
		return b.Put([]byte("duck"), []byte("quack"))
	})
	if err != nil {
		log.Fatal(err)
	}

	// A read transaction sees one consistent version and never blocks the writer.
	db.View(func(tx *cowfile.Tx) error {
		c := tx.Bucket([]byte("animals")).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fmt.Printf("%s says %s\n", k, v)
		}
		return nil
	})
	// Output:
	// cow says moo
	// duck says quack
}

func ExampleDB_Batch() {
	dir, _ := os.MkdirTemp("", "cowfile-example")
	defer os.RemoveAll(dir)
	db, _ := cowfile.Open(filepath.Join(dir, "batch.cow"), nil)
	defer db.Close()

	// Concurrent callers of Batch share commits, so they share fsyncs.
	err := db.Batch(func(tx *cowfile.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("counters"))
		if err != nil {
			return err
		}
		n, err := b.NextSequence()
		fmt.Println("sequence", n)
		return err
	})
	fmt.Println(err)
	// Output:
	// sequence 1
	// <nil>
}

func ExampleTx_Check() {
	dir, _ := os.MkdirTemp("", "cowfile-example")
	defer os.RemoveAll(dir)
	db, _ := cowfile.Open(filepath.Join(dir, "check.cow"), nil)
	defer db.Close()
	db.Update(func(tx *cowfile.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	})
	err := db.View(func(tx *cowfile.Tx) error { return tx.Check() })
	fmt.Println("check:", err)
	// Output: check: <nil>
}
