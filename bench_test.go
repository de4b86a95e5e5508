package cowfile

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

func benchKey(i uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k[8:], i)
	return k
}

func loadBench(b testing.TB, n int) *DB {
	db := mustOpen(b, tempPath(b), &Options{Durability: NoSync})
	val := make([]byte, 100)
	for i := 0; i < n; i += 10000 {
		db.Update(func(tx *Tx) error {
			bk, _ := tx.CreateBucketIfNotExists([]byte("bench"))
			for j := i; j < i+10000 && j < n; j++ {
				bk.Put(benchKey(uint64(j)), val)
			}
			return nil
		})
	}
	return db
}

// BenchmarkPut measures sequential puts, 10,000 per commit (NoSync, so it
// measures the engine, not the disk).
func BenchmarkPut(b *testing.B) {
	db := mustOpen(b, tempPath(b), &Options{Durability: NoSync})
	defer db.Close()
	val := make([]byte, 100)
	b.SetBytes(116)
	b.ResetTimer()
	for i := 0; i < b.N; i += 10000 {
		db.Update(func(tx *Tx) error {
			bk, _ := tx.CreateBucketIfNotExists([]byte("bench"))
			for j := i; j < i+10000 && j < b.N; j++ {
				bk.Put(benchKey(uint64(j)), val)
			}
			return nil
		})
	}
}

// BenchmarkPutRandom measures random inserts, 1000 per commit.
func BenchmarkPutRandom(b *testing.B) {
	db := mustOpen(b, tempPath(b), &Options{Durability: NoSync})
	defer db.Close()
	val := make([]byte, 100)
	r := rand.New(rand.NewSource(1))
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		db.Update(func(tx *Tx) error {
			bk, _ := tx.CreateBucketIfNotExists([]byte("bench"))
			for j := i; j < i+1000 && j < b.N; j++ {
				bk.Put(benchKey(r.Uint64()), val)
			}
			return nil
		})
	}
}

// BenchmarkGet measures random point reads in a 1M-key bucket.
func BenchmarkGet(b *testing.B) {
	const n = 1 << 20
	db := loadBench(b, n)
	defer db.Close()
	r := rand.New(rand.NewSource(2))
	tx, _ := db.Begin(false)
	defer tx.Rollback()
	bk := tx.Bucket([]byte("bench"))
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = benchKey(uint64(r.Intn(n)))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bk.Get(keys[i&4095]) == nil {
			b.Fatal("missing key")
		}
	}
}

// BenchmarkCursorScan measures a full scan, per key.
func BenchmarkCursorScan(b *testing.B) {
	const n = 1 << 20
	db := loadBench(b, n)
	defer db.Close()
	tx, _ := db.Begin(false)
	defer tx.Rollback()
	c := tx.Bucket([]byte("bench")).Cursor()
	b.ResetTimer()
	k, _ := c.First()
	for i := 0; i < b.N; i++ {
		if k == nil {
			k, _ = c.First()
		}
		k, _ = c.Next()
	}
}

// BenchmarkCommitDurable measures a 1-key commit with the default Sync
// durability: one fdatasync.
func BenchmarkCommitDurable(b *testing.B) { benchCommit(b, nil) }

// BenchmarkCommitNoSync measures the engine's own cost of a 1-key commit:
// BenchmarkCommitDurable without the fdatasync.
func BenchmarkCommitNoSync(b *testing.B) { benchCommit(b, &Options{Durability: NoSync}) }

func benchCommit(b *testing.B, opts *Options) {
	val := make([]byte, 100)
	benchCommits(b, opts, 1, val)
}

// BenchmarkPutLarge measures commits of ten 100 KiB values, the bench
// module's large-value row, without the fdatasync: the engine's own cost
// of copying, checksumming and writing 1 MB per commit. One op is one
// commit.
func BenchmarkPutLarge(b *testing.B) {
	val := make([]byte, 100<<10)
	rand.New(rand.NewSource(3)).Read(val)
	b.SetBytes(10 * int64(len(val)))
	benchCommits(b, &Options{Durability: NoSync}, 10, val)
}

// benchCommits runs b.N commits of perTx new keys holding val each.
func benchCommits(b *testing.B, opts *Options, perTx int, val []byte) {
	db := mustOpen(b, tempPath(b), opts)
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := db.Update(func(tx *Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("bench"))
			if err != nil {
				return err
			}
			for j := 0; j < perTx; j++ {
				if err := bk.Put(benchKey(uint64(i*perTx+j)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
