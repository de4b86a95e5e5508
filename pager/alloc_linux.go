package pager

import (
	"os"

	"golang.org/x/sys/unix"
)

// Allocate extends the file to at least off+n bytes with fallocate, which
// reserves the blocks now (so a full disk shows up here, not in a later
// write) and keeps the file less fragmented. File systems without
// fallocate get ftruncate, which yields the same size as a sparse file.
func (o *osFile) Allocate(off, n int64) error {
	aerr := onFd(o.f, func(fd int) error { return unix.Fallocate(fd, 0, off, n) })
	switch aerr {
	case nil:
		return nil
	case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
		// Never let the fallback shrink a file that is already longer.
		if size, err := o.Size(); err != nil || size >= off+n {
			return err
		}
		return o.f.Truncate(off + n)
	}
	return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: aerr}
}
