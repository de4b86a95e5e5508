package pager

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is the kernel's limit on buffers per pwritev (IOV_MAX).
const iovMax = 1024

// WritevAt writes bufs with pwritev, looping over short writes and over
// batches of at most IOV_MAX buffers.
func (o *osFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var werr error
	// Running inside rc.Write keeps the descriptor from being closed and
	// reused while the syscall uses it.
	cerr := rc.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			batch := bufs
			if len(batch) > iovMax {
				batch = batch[:iovMax]
			}
			n, err := unix.Pwritev(int(fd), batch, off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			if n == 0 && sumLen(batch) > 0 {
				werr = io.ErrShortWrite
				return true
			}
			total += n
			off += int64(n)
			bufs = advance(bufs, n)
		}
		return true
	})
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		return total, &os.PathError{Op: "pwritev", Path: o.f.Name(), Err: werr}
	}
	return total, nil
}

// advance drops the first n bytes from bufs. It copies the slice header
// array only when a buffer is split, never the data.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		rest := make([][]byte, len(bufs))
		copy(rest, bufs)
		rest[0] = rest[0][n:]
		bufs = rest
	}
	return bufs
}
