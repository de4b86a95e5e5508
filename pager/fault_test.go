package pager

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// faultFS wraps a real FS, records every mutating call, and makes the
// failAt-th call of operation failOp (counted across all files) return err.
type faultFS struct {
	FS
	mu     sync.Mutex
	calls  map[string]int
	log    []string
	failOp string
	failAt int
	err    error
}

func newFaultFS() *faultFS {
	return &faultFS{FS: OSFS, calls: map[string]int{}, err: syscall.EIO}
}

// failNext arms the fault: the n-th call of op from now on fails.
func (f *faultFS) failNext(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOp = op
	f.failAt = f.calls[op] + n
}

// hit records a call and reports whether it must fail.
func (f *faultFS) hit(op, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	f.log = append(f.log, op+" "+detail)
	if op == f.failOp && f.calls[op] == f.failAt {
		return f.err
	}
	return nil
}

func (f *faultFS) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := f.hit("open", name); err != nil {
		return nil, err
	}
	inner, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: inner, fs: f, name: name}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.hit("rename", oldpath+" -> "+newpath); err != nil {
		return err
	}
	return f.FS.Rename(oldpath, newpath)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.hit("syncdir", dir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

// faultFile embeds the File interface, so it does not implement Allocator:
// Grow falls back to Truncate through it.
type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.hit("write", fmt.Sprintf("%s %d@%d", f.name, len(p), off)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	if err := f.fs.hit("writev", fmt.Sprintf("%s %d@%d", f.name, sumLen(bufs), off)); err != nil {
		return 0, err
	}
	return f.File.WritevAt(bufs, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.hit("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.hit("truncate", fmt.Sprintf("%s %d", f.name, size)); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Close() error {
	f.fs.hit("close", f.name)
	return f.File.Close()
}
