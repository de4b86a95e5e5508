//go:build unix

package pager

import (
	"os"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// mapPastEOF: unix lets a map extend past the end of the file, so the pager
// reserves room for growth; only touching those bytes would fault, which
// Mapping.Bytes prevents.
const mapPastEOF = true

// mapFile maps length bytes of the file behind fd, read-only and shared.
//
// mmap-go wants an *os.File; wrapping the caller's descriptor directly in
// one would let the wrapper's finalizer close it. So the map is made
// through a duplicate descriptor, closed right after: a mapping keeps its
// own reference to the file.
func mapFile(fd uintptr, name string, length int) (mmap.MMap, error) {
	dup, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(dup), name)
	m, err := mmap.MapRegion(f, length, mmap.RDONLY, 0, 0)
	f.Close()
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: name, Err: err}
	}
	return m, nil
}
