package main

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/cowfile/cowfile"
)

// makeChurned writes a file as an application might leave it: a bulk
// load, then rounds of random deletes and updates, large values, a
// snapshot that pins an old version, and a dropped bucket at the end of
// the file, so it has free holes, pending pages and a free tail.
func makeChurned(t *testing.T, path string) {
	t.Helper()
	db, err := cowfile.Open(path, &cowfile.Options{Durability: cowfile.NoSync})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewSource(3))
	val := func(n int) []byte { b := make([]byte, n); r.Read(b); return b }
	update := func(fn func(tx *cowfile.Tx) error) {
		t.Helper()
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	for batch := 0; batch < 4; batch++ {
		update(func(tx *cowfile.Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("events"))
			for i := 0; i < 5000; i++ {
				b.Put([]byte(fmt.Sprintf("ev%07d", batch*5000+i)), val(60+r.Intn(80)))
			}
			return nil
		})
	}
	update(func(tx *cowfile.Tx) error {
		b, _ := tx.CreateBucket([]byte("blobs"))
		for i := 0; i < 40; i++ {
			b.Put([]byte(fmt.Sprintf("blob%02d", i)), val(10000+r.Intn(20000)))
		}
		return nil
	})
	if err := db.CreateSnapshot("nightly"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 6; round++ {
		update(func(tx *cowfile.Tx) error {
			b := tx.Bucket([]byte("events"))
			for i := 0; i < 1500; i++ {
				k := []byte(fmt.Sprintf("ev%07d", r.Intn(20000)))
				if r.Intn(3) == 0 {
					b.Put(k, val(60+r.Intn(80)))
				} else {
					b.Delete(k)
				}
			}
			blobs := tx.Bucket([]byte("blobs"))
			blobs.Delete([]byte(fmt.Sprintf("blob%02d", r.Intn(40))))
			return nil
		})
	}
	update(func(tx *cowfile.Tx) error {
		b, _ := tx.CreateBucket([]byte("scratch"))
		for i := 0; i < 3000; i++ {
			b.Put([]byte(fmt.Sprintf("tmp%05d", i)), val(100))
		}
		return nil
	})
	update(func(tx *cowfile.Tx) error { return tx.DeleteBucket([]byte("scratch")) })
}

// TestDocsMap keeps docs/map.png, the picture in docs/CLI.md: with
// -update it draws it again from a churned file. Without, it checks that
// such a file draws and passes check.
func TestDocsMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.cow")
	makeChurned(t, path)
	want(t, 0, "check", path)
	out := filepath.Join(t.TempDir(), "map.png")
	if *update {
		out = filepath.Join(repoRoot, "docs", "map.png")
	}
	want(t, 0, "map", path, "-o", out)
}
