package main

import (
	"os"

	"github.com/PowerDNS/lmdb-go/lmdb"
	"github.com/cowfile/cowfile/internal/benchwork"
)

// lmdbEngine is LMDB through cgo with its durable defaults: no WRITEMAP,
// no NOSYNC, no NOMETASYNC — the pages are fdatasync'ed, then the meta is
// written through an O_DSYNC descriptor (two syncs per commit). The map
// size is only an address-space limit; the file grows as pages are used.
type lmdbEngine struct{}

const lmdbMapSize = 64 << 30

func (lmdbEngine) Name() string { return "lmdb" }

func (lmdbEngine) Create(path string) (benchwork.Store, error) {
	env, err := lmdb.NewEnv()
	if err != nil {
		return nil, err
	}
	s := &lmdbStore{env: env, path: path}
	if err := env.SetMapSize(lmdbMapSize); err != nil {
		env.Close()
		return nil, err
	}
	if err := env.Open(path, lmdb.NoSubdir, 0o600); err != nil {
		env.Close()
		return nil, err
	}
	err = env.Update(func(txn *lmdb.Txn) (err error) {
		s.dbi, err = txn.OpenRoot(0)
		return err
	})
	if err != nil {
		env.Close()
		return nil, err
	}
	return s, nil
}

type lmdbStore struct {
	env  *lmdb.Env
	dbi  lmdb.DBI
	path string
}

func (s *lmdbStore) Update(fn func(benchwork.Writer) error) error {
	return s.env.Update(func(txn *lmdb.Txn) error { return fn(lmdbWriter{txn, s.dbi}) })
}

func (s *lmdbStore) View(fn func(benchwork.Reader) error) error {
	return s.env.View(func(txn *lmdb.Txn) error {
		// Zero-copy reads, as the other engines give: values point into
		// the map for the life of the transaction.
		txn.RawRead = true
		r := &lmdbReader{txn: txn, dbi: s.dbi}
		defer r.close()
		return fn(r)
	})
}

func (s *lmdbStore) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *lmdbStore) Close() error {
	err := s.env.Close()
	os.Remove(s.path + "-lock")
	return err
}

type lmdbWriter struct {
	txn *lmdb.Txn
	dbi lmdb.DBI
}

func (w lmdbWriter) Put(key, value []byte) error { return w.txn.Put(w.dbi, key, value, 0) }

func (w lmdbWriter) Delete(key []byte) error {
	err := w.txn.Del(w.dbi, key, nil)
	if lmdb.IsNotFound(err) {
		return nil
	}
	return err
}

// lmdbReader reuses one cursor per transaction: a read-only transaction's
// cursors must be closed by hand, and every Cursor call starts with a
// positioning call anyway.
type lmdbReader struct {
	txn *lmdb.Txn
	dbi lmdb.DBI
	cur *lmdb.Cursor
}

func (r *lmdbReader) close() {
	if r.cur != nil {
		r.cur.Close()
	}
}

func (r *lmdbReader) Get(key []byte) []byte {
	v, err := r.txn.Get(r.dbi, key)
	if err != nil {
		return nil
	}
	return v
}

func (r *lmdbReader) Cursor() benchwork.Cursor {
	if r.cur == nil {
		c, err := r.txn.OpenCursor(r.dbi)
		if err != nil {
			return lmdbCursor{}
		}
		r.cur = c
	}
	return lmdbCursor{r.cur}
}

// lmdbCursor adapts an LMDB cursor; it is closed with its transaction.
type lmdbCursor struct{ c *lmdb.Cursor }

func (c lmdbCursor) get(key []byte, op uint) ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	k, v, err := c.c.Get(key, nil, op)
	if err != nil {
		return nil, nil
	}
	return k, v
}

func (c lmdbCursor) First() ([]byte, []byte)        { return c.get(nil, lmdb.First) }
func (c lmdbCursor) Seek(k []byte) ([]byte, []byte) { return c.get(k, lmdb.SetRange) }
func (c lmdbCursor) Next() ([]byte, []byte)         { return c.get(nil, lmdb.Next) }
