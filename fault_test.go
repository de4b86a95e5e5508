package cowfile

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cowfile/cowfile/pager"
)

// faultFS fails the n-th write or sync (counting from 1) of every file it
// opens once armed.
type faultFS struct {
	armed       atomic.Bool
	writes, syn atomic.Int64
	failWrite   int64
	failSync    int64
	err         error
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (pager.File, error) {
	file, err := pager.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}
func (f *faultFS) Rename(a, b string) error { return pager.OSFS.Rename(a, b) }
func (f *faultFS) Remove(name string) error { return pager.OSFS.Remove(name) }
func (f *faultFS) SyncDir(dir string) error { return pager.OSFS.SyncDir(dir) }

type faultFile struct {
	pager.File
	fs *faultFS
}

func (f *faultFile) write() error {
	if f.fs.armed.Load() && f.fs.writes.Add(1) == f.fs.failWrite {
		return f.fs.err
	}
	return nil
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.write(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	if err := f.write(); err != nil {
		return 0, err
	}
	return f.File.WritevAt(bufs, off)
}

func (f *faultFile) Sync() error {
	if f.fs.armed.Load() && f.fs.syn.Add(1) == f.fs.failSync {
		return f.fs.err
	}
	return f.File.Sync()
}

// A failed write or sync: Commit returns the error, the DB refuses every
// later write, and a reopen finds the last acknowledged commit (or the one
// in flight) — never less.
func TestWriteErrorsAreSticky(t *testing.T) {
	for _, c := range []struct {
		name              string
		failWrite, failSy int64
		err               error
		maxChain          int
	}{
		{"first write EIO", 1, 0, syscall.EIO, 0},
		{"meta slot write ENOSPC", 2, 0, syscall.ENOSPC, -1},
		{"sync EIO", 0, 1, syscall.EIO, 0},
		{"sync EIO, meta slot commits", 0, 1, syscall.EIO, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := tempPath(t)
			fs := &faultFS{failWrite: c.failWrite, failSync: c.failSy, err: c.err}
			db := mustOpen(t, path, &Options{FS: fs, MaxChain: c.maxChain})
			put(t, db, "b", "k", "acknowledged")
			fs.armed.Store(true)
			err := db.Update(func(tx *Tx) error {
				return tx.Bucket([]byte("b")).Put([]byte("k"), []byte("in flight"))
			})
			if !errors.Is(err, c.err) || !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("commit: %v", err)
			}
			fs.armed.Store(false)
			if err := db.Update(func(tx *Tx) error { return nil }); !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("write after failure: %v", err)
			}
			if got := get(t, db, "b", "k"); string(got) != "acknowledged" {
				t.Fatalf("readers see %q after a failed commit", got)
			}
			db.Close()
			db = mustOpen(t, path, nil)
			defer db.Close()
			got := string(get(t, db, "b", "k"))
			if got != "acknowledged" && got != "in flight" {
				t.Fatalf("after reopen: %q", got)
			}
			if err := db.View(func(tx *Tx) error { return tx.Check() }); err != nil {
				t.Fatal(err)
			}
			put(t, db, "b", "k2", fmt.Sprint("works again"))
		})
	}
}
