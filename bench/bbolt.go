package main

import (
	"os"

	"github.com/cowfile/cowfile/internal/benchwork"
	bolt "go.etcd.io/bbolt"
)

// bboltEngine is bbolt with its defaults: fdatasync of the pages, then of
// the meta (two syncs per commit), array free list synced with every
// commit, fill percent 0.5.
type bboltEngine struct{}

var bucket = []byte("bench")

func (bboltEngine) Name() string { return "bbolt" }

func (bboltEngine) Create(path string) (benchwork.Store, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &bboltStore{db: db}, nil
}

type bboltStore struct{ db *bolt.DB }

func (s *bboltStore) Update(fn func(benchwork.Writer) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) })
}

func (s *bboltStore) View(fn func(benchwork.Reader) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(bboltReader{tx.Bucket(bucket)}) })
}

func (s *bboltStore) Size() (int64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *bboltStore) Close() error { return s.db.Close() }

type bboltReader struct{ b *bolt.Bucket }

func (r bboltReader) Get(key []byte) []byte    { return r.b.Get(key) }
func (r bboltReader) Cursor() benchwork.Cursor { return r.b.Cursor() }
