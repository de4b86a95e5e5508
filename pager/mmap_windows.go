package pager

import (
	"os"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/windows"
)

// mapPastEOF: on windows a mapping longer than the file extends the file,
// so maps are exactly the file's size and growth remaps.
const mapPastEOF = false

// mapFile maps length bytes of the file behind handle fd, read-only.
// As on unix, the map is made through a duplicate handle so that no
// *os.File wrapper ever owns (and finalizes) the caller's handle.
func mapFile(fd uintptr, name string, length int) (mmap.MMap, error) {
	proc := windows.CurrentProcess()
	var dup windows.Handle
	err := windows.DuplicateHandle(proc, windows.Handle(fd), proc, &dup, 0, false, windows.DUPLICATE_SAME_ACCESS)
	if err != nil {
		return nil, &os.PathError{Op: "DuplicateHandle", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(dup), name)
	m, err := mmap.MapRegion(f, length, mmap.RDONLY, 0, 0)
	f.Close()
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: name, Err: err}
	}
	return m, nil
}
