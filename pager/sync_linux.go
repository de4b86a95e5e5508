package pager

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes the file's data, and the metadata needed to read it back
// (such as its size), but not timestamps: fdatasync.
func datasync(f *os.File) error {
	if err := onFd(f, unix.Fdatasync); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// onFd runs call on f's descriptor, kept open meanwhile, retrying it while
// it is interrupted (EINTR).
func onFd(f *os.File, call func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			if serr = call(int(fd)); serr != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// StartWriteback starts writing [off, off+n) back with
// sync_file_range(SYNC_FILE_RANGE_WRITE), which queues the dirty pages
// for the disk and returns. It makes nothing durable: fdatasync still
// waits for the data and flushes the metadata and the drive's cache.
func (o *osFile) StartWriteback(off, n int64) error {
	err := onFd(o.f, func(fd int) error {
		return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
	switch err {
	case nil, unix.ENOSYS, unix.EOPNOTSUPP, unix.ESPIPE:
		return nil // done, or not supported here: the hint is optional
	}
	return &os.PathError{Op: "sync_file_range", Path: o.f.Name(), Err: err}
}
