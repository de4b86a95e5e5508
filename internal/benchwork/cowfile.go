package benchwork

import (
	"os"

	"github.com/cowfile/cowfile"
)

// bucketName is the one bucket the keyed engines (cowfile, bbolt) use.
var bucketName = []byte("bench")

// Cowfile is the cowfile engine with its defaults: Sync durability (one
// fdatasync per commit), 4 KiB pages.
type Cowfile struct {
	// Options, if set, replace the defaults (the free-list workload uses
	// small pages and a no-sync build phase).
	Options *cowfile.Options
}

func (Cowfile) Name() string { return "cowfile" }

func (e Cowfile) Create(path string) (Store, error) { return openCowfile(path, e.Options) }

func openCowfile(path string, opts *cowfile.Options) (*cowStore, error) {
	db, err := cowfile.Open(path, opts)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *cowfile.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &cowStore{db: db}, nil
}

type cowStore struct{ db *cowfile.DB }

func (s *cowStore) Update(fn func(Writer) error) error {
	return s.db.Update(func(tx *cowfile.Tx) error { return fn(tx.Bucket(bucketName)) })
}

func (s *cowStore) View(fn func(Reader) error) error {
	return s.db.View(func(tx *cowfile.Tx) error { return fn(cowReader{tx.Bucket(bucketName)}) })
}

func (s *cowStore) Size() (int64, error) { return fileSize(s.db.Path()) }
func (s *cowStore) Close() error         { return s.db.Close() }

type cowReader struct{ b *cowfile.Bucket }

func (r cowReader) Get(key []byte) []byte { return r.b.Get(key) }
func (r cowReader) Cursor() Cursor        { return r.b.Cursor() }

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
