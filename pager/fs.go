package pager

import (
	"os"
)

// FS is the seam for every mutation of the file system. Reads of pages go
// through the real mmap; everything that changes bytes on disk goes through
// FS and File, so a test can wrap them to inject faults or record writes.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// SyncDir fsyncs a directory so that a rename or create in it is
	// durable. It is a no-op where that is unsupported (windows).
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// WritevAt writes bufs, which are contiguous in the file starting at
	// off, with one vectored write (pwritev on linux; a loop of WriteAt
	// elsewhere). It returns the number of bytes written; a short count
	// comes with an error.
	WritevAt(bufs [][]byte, off int64) (int, error)
	// Sync makes written data durable: fdatasync on linux, F_FULLFSYNC on
	// darwin (plain fsync does not flush the drive cache there),
	// FlushFileBuffers on windows, fsync elsewhere.
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	// Fd is the real descriptor (handle on windows), used for locking and
	// mapping. A wrapper must return the wrapped file's descriptor.
	Fd() uintptr
	Close() error
}

// Allocator is optionally implemented by a File that can reserve disk
// blocks when the file grows (fallocate on linux). The pager uses it in Grow
// when present and falls back to Truncate otherwise; the result is the same
// file size either way.
type Allocator interface {
	// Allocate makes the file at least off+n bytes long, reserving the
	// blocks of [off, off+n) where the platform can.
	Allocate(off, n int64) error
}

// WritebackStarter is optionally implemented by a File that can start
// writing a range of the file back to the disk without waiting for it
// (sync_file_range with SYNC_FILE_RANGE_WRITE on linux). The pager uses it
// in StartWriteback; a File without it simply gets no hint.
type WritebackStarter interface {
	StartWriteback(off, n int64) error
}

// OSFS is the real file system.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) SyncDir(dir string) error             { return syncDir(dir) }

// osFile is a File over an *os.File. Sync, WritevAt and Allocate have
// platform-specific implementations in the sync_*, writev_* and alloc_*
// files.
type osFile struct {
	f *os.File
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o *osFile) Fd() uintptr                              { return o.f.Fd() }
func (o *osFile) Close() error                             { return o.f.Close() }
func (o *osFile) Sync() error                              { return datasync(o.f) }

func (o *osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// writevLoop is the portable WritevAt: one WriteAt per buffer. os.File's
// WriteAt already retries short writes, so a short count means an error.
func writevLoop(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := f.WriteAt(b, off)
		total += n
		off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sumLen is the total length of bufs.
func sumLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
